/**
 * The channel's key cache (src/auth/openIdKeys.ts, bot-connector.md §1.4) on a frozen clock, over
 * an endpoint that a function plays (no network): what it refuses in the OpenID metadata and JWKS,
 * each with its reason; when it fetches again (24 hours, an unknown kid at most once per 5 minutes,
 * a failed refresh retried at that pace while the cached keys keep being served); and the imported
 * RSA keys it hands jose (cached by material, bounded, a failure not kept).
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOpenIdKeyCache, createRsaKeyImporter, type BotJwk } from '../../src/auth/openIdKeys';
import { createChannelTokenVerifier } from '../../src/auth/verifyChannelToken';
import { AuthError, CourierError } from '../../src/errors';

const METADATA_URL = 'https://login.botframework.com/v1/.well-known/openidconfiguration';
const JWKS_URL = 'https://login.botframework.com/v1/.well-known/keys';
const t0 = Date.parse('2026-12-01T09:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A published key; only `kid` and the material (`n`) matter to the cache. */
const jwk = (kid: string, n = `modulus-of-${kid}`): BotJwk => ({ kty: 'RSA', kid, n, e: 'AQAB', use: 'sig' });

/** The metadata endpoint and its JWKS, as the test sets them, with a clock the test moves. */
function endpoint(keys: unknown[] = [jwk('k1')]) {
  const state = {
    metadata: { issuer: 'https://api.botframework.com', jwks_uri: JWKS_URL } as unknown,
    jwks: { keys } as unknown,
    down: undefined as Error | undefined,
    requested: [] as string[],
    now: t0,
  };
  const cache = createOpenIdKeyCache({
    metadataUrl: METADATA_URL,
    now: () => state.now,
    fetchJson: async (url) => {
      state.requested.push(url);
      if (state.down !== undefined) throw state.down;
      if (url === METADATA_URL) return state.metadata;
      if (url === JWKS_URL) return state.jwks;
      throw new Error(`unexpected ${url}`);
    },
  });
  return { state, cache };
}

async function unavailable(promise: Promise<unknown>): Promise<CourierError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected AUTH_METADATA_UNAVAILABLE').toBeInstanceOf(CourierError);
  expect(err).toMatchObject({ code: 'AUTH_METADATA_UNAVAILABLE' });
  return err as CourierError;
}

describe('createOpenIdKeyCache: fetching', () => {
  it('fetches the metadata, then its jwks_uri, once; then serves every key from memory', async () => {
    const { state, cache } = endpoint([jwk('k1'), jwk('k2')]);
    expect(cache.fetchCount).toBe(0);
    expect(await cache.getKey('k1')).toMatchObject({ kid: 'k1', n: 'modulus-of-k1' });
    expect(await cache.getKey('k2')).toMatchObject({ kid: 'k2' });
    expect(await cache.getKey('k1')).toMatchObject({ kid: 'k1' });
    expect(state.requested).toEqual([METADATA_URL, JWKS_URL]);
    expect(cache.fetchCount).toBe(1);
  });

  it('reports a failed first fetch as AUTH_METADATA_UNAVAILABLE, keeping the cause, and tries again on the next request', async () => {
    const { state, cache } = endpoint();
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:443');
    state.down = refused;
    const err = await unavailable(cache.getKey('k1'));
    expect(err.message).toBe('OpenID metadata or keys could not be fetched');
    expect(err.cause).toBe(refused);
    // Nothing cached: the next request, at the same instant, does not wait for any pace.
    state.down = undefined;
    expect(await cache.getKey('k1')).toMatchObject({ kid: 'k1' });
    expect(cache.fetchCount).toBe(2);
  });

  it.each<[string, unknown, string]>([
    ['metadata without jwks_uri', { issuer: 'https://api.botframework.com' }, 'OpenID metadata has no jwks_uri'],
    ['a jwks_uri that is not a string', { jwks_uri: 42 }, 'OpenID metadata has no jwks_uri'],
    ['metadata that is JSON null', null, 'OpenID metadata has no jwks_uri'],
    ['metadata that is a list', [JWKS_URL], 'OpenID metadata has no jwks_uri'],
    ['metadata that is a string', JWKS_URL, 'OpenID metadata has no jwks_uri'],
    ['no metadata at all', undefined, 'OpenID metadata has no jwks_uri'],
    [
      'a plain-http jwks_uri',
      { jwks_uri: 'http://login.botframework.com/v1/.well-known/keys' },
      'OpenID metadata jwks_uri is not https',
    ],
  ])('refuses %s, saying so, and never asks for keys', async (_label, metadata, message) => {
    const { state, cache } = endpoint();
    state.metadata = metadata;
    const err = await unavailable(cache.getKey('k1'));
    expect(err.message).toBe(message);
    expect(state.requested).toEqual([METADATA_URL]);
  });

  it.each<[string, unknown, string]>([
    ['a JWKS without keys', {}, 'JWKS document has no keys array'],
    ['a JWKS whose keys are not a list', { keys: { k1: jwk('k1') } }, 'JWKS document has no keys array'],
    ['a JWKS that is JSON null', null, 'JWKS document has no keys array'],
    ['a JWKS that is a list', [jwk('k1')], 'JWKS document has no keys array'],
    ['an empty key list', { keys: [] }, 'JWKS document has no usable keys'],
    [
      'keys that are not objects, or lack a string kid or kty',
      {
        keys: [
          null,
          'k1',
          7,
          [jwk('k1')],
          { kty: 'RSA', n: 'x', e: 'AQAB' },
          { kid: 'k1', n: 'x', e: 'AQAB' },
          { kid: 5, kty: 'RSA' },
          { kid: 'k1', kty: 5 },
        ],
      },
      'JWKS document has no usable keys',
    ],
  ])('refuses %s, saying so', async (_label, jwks, message) => {
    const { state, cache } = endpoint();
    state.jwks = jwks;
    expect((await unavailable(cache.getKey('k1'))).message).toBe(message);
  });

  it('serves the usable keys of a JWKS and skips the others', async () => {
    const { cache } = endpoint([null, { kid: 'no-kty', n: 'x', e: 'AQAB' }, { kty: 'RSA', n: 'x' }, jwk('k1')]);
    expect(await cache.getKey('k1')).toMatchObject({ kid: 'k1' });
    expect(await cache.getKey('no-kty')).toBeUndefined();
  });
});

describe('createOpenIdKeyCache: when it fetches again (defaults: 24 hours, 5 minutes)', () => {
  it('refreshes known keys 24 hours after the last fetch, not before', async () => {
    const { state, cache } = endpoint([jwk('k1', 'old')]);
    expect(await cache.getKey('k1')).toMatchObject({ n: 'old' });
    // The publisher reuses the kid for new material.
    state.jwks = { keys: [jwk('k1', 'new')] };
    for (const at of [t0 + 10 * MINUTE, t0 + 23 * HOUR, t0 + 24 * HOUR - 1]) {
      state.now = at;
      expect(await cache.getKey('k1'), new Date(at).toISOString()).toMatchObject({ n: 'old' });
    }
    expect(cache.fetchCount).toBe(1);
    state.now = t0 + 24 * HOUR;
    expect(await cache.getKey('k1')).toMatchObject({ n: 'new' });
    expect(cache.fetchCount).toBe(2);
  });

  it('refetches for an unknown kid at most once per 5 minutes, and not for known ones', async () => {
    const { state, cache } = endpoint([jwk('k1')]);
    await cache.getKey('k1');
    state.jwks = { keys: [jwk('k1'), jwk('rotated-in')] };
    for (const at of [t0, t0 + MINUTE, t0 + 5 * MINUTE - 1]) {
      state.now = at;
      expect(await cache.getKey('rotated-in')).toBeUndefined();
    }
    expect(cache.fetchCount).toBe(1);
    state.now = t0 + 5 * MINUTE;
    expect(await cache.getKey('rotated-in')).toMatchObject({ kid: 'rotated-in' });
    expect(cache.fetchCount).toBe(2);
    // A known kid, long after the last fetch (but within 24 hours), fetches nothing.
    state.now = t0 + 3 * HOUR;
    expect(await cache.getKey('k1')).toMatchObject({ kid: 'k1' });
    expect(cache.fetchCount).toBe(2);
    // An unknown one does, once, and a second unknown one right after waits its turn.
    expect(await cache.getKey('nobody')).toBeUndefined();
    expect(await cache.getKey('nobody-else')).toBeUndefined();
    expect(cache.fetchCount).toBe(3);
  });

  it('keeps serving the cached keys when the 24-hour refresh fails, retrying every 5 minutes, not per request', async () => {
    const { state, cache } = endpoint([jwk('k1', 'old')]);
    await cache.getKey('k1');
    state.down = new Error('connect ETIMEDOUT');
    state.now = t0 + 24 * HOUR;
    expect(await cache.getKey('k1')).toMatchObject({ n: 'old' });
    expect(cache.fetchCount).toBe(2);
    for (const at of [t0 + 24 * HOUR + 1, t0 + 24 * HOUR + MINUTE, t0 + 24 * HOUR + 5 * MINUTE - 1]) {
      state.now = at;
      expect(await cache.getKey('k1')).toMatchObject({ n: 'old' });
    }
    expect(cache.fetchCount).toBe(2);
    state.now = t0 + 24 * HOUR + 5 * MINUTE;
    expect(await cache.getKey('k1')).toMatchObject({ n: 'old' });
    expect(cache.fetchCount).toBe(3);
    // Back up: the next retry, 5 minutes on, brings the new keys.
    state.down = undefined;
    state.jwks = { keys: [jwk('k1', 'new')] };
    state.now = t0 + 24 * HOUR + 10 * MINUTE;
    expect(await cache.getKey('k1')).toMatchObject({ n: 'new' });
    expect(cache.fetchCount).toBe(4);
  });
});

describe('createRsaKeyImporter', () => {
  /** Real RSA public keys (1024 bits: quick to make; the importer does not check length, jose's verify does). */
  const rsaJwks = (count: number): BotJwk[] =>
    Array.from({ length: count }, (_, i) => {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      return { ...(publicKey.export({ format: 'jwk' }) as { kty: string }), kid: `key-${i}` };
    });

  it('imports a key once and hands out the same key again; new material or another algorithm is imported anew', async () => {
    const [a, b] = rsaJwks(2) as [BotJwk, BotJwk];
    const importKey = createRsaKeyImporter();
    const first = await importKey(a, 'RS256');
    expect(await importKey(a, 'RS256')).toBe(first);
    expect(await importKey({ ...a, kid: 'renamed' }, 'RS256')).toBe(first);
    // The same kid with other material (a rotation that reuses the kid): not the old key.
    const rotated = await importKey({ ...b, kid: a.kid }, 'RS256');
    expect(rotated).not.toBe(first);
    expect(await importKey(a, 'RS384')).not.toBe(first);
    // Importing others did not push the first one out.
    expect(await importKey(a, 'RS256')).toBe(first);
    expect(await importKey({ ...b, kid: a.kid }, 'RS256')).toBe(rotated);
  });

  it('keeps at most 64 imported keys: the 65th starts the cache over', async () => {
    const jwks = rsaJwks(22);
    const entries = jwks.flatMap((key) => ['RS256', 'RS384', 'RS512'].map((alg) => [key, alg] as const));
    const importKey = createRsaKeyImporter();
    const [firstKey, firstAlg] = entries[0]!;
    const first = await importKey(firstKey, firstAlg);
    for (const [key, alg] of entries.slice(1, 64)) await importKey(key, alg);
    // 64 keys held: the first is still among them.
    expect(await importKey(firstKey, firstAlg)).toBe(first);
    const [key65, alg65] = entries[64]!;
    await importKey(key65, alg65);
    expect(await importKey(firstKey, firstAlg)).not.toBe(first);
  });

  it('does not keep a failed import: asked again, it makes a new attempt', async () => {
    const [key] = rsaJwks(1) as [BotJwk];
    const importKey = createRsaKeyImporter();
    // jose cannot import an RSA key for ES256: the one way an import of published material fails.
    const firstTry = importKey(key, 'ES256');
    await expect(firstTry).rejects.toThrow('Invalid or unsupported JWK "alg"');
    const secondTry = importKey(key, 'ES256');
    expect(secondTry).not.toBe(firstTry);
    await expect(secondTry).rejects.toThrow('Invalid or unsupported JWK "alg"');
  });
});

describe('published keys the channel verifier refuses to use', () => {
  const APP_ID = '00000000-0000-4000-8000-0000000000b0';
  const ISSUER = 'https://api.botframework.com';
  let pair: { privateKey: CryptoKey; publicJwk: JWK };

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    pair = { privateKey, publicJwk: await exportJWK(publicKey) };
  });

  /** Verifies a fresh RS256 token, signed with the pair, under a JWKS holding only `published` as kid "k". */
  async function verifyWith(published: Record<string, unknown>) {
    const verifier = createChannelTokenVerifier({
      appId: APP_ID,
      issuer: ISSUER,
      keys: createOpenIdKeyCache({
        metadataUrl: METADATA_URL,
        fetchJson: async (url) =>
          url === METADATA_URL
            ? { jwks_uri: JWKS_URL }
            : { keys: [{ kid: 'k', kty: 'RSA', endorsements: ['msteams'], ...published }] },
      }),
    });
    const at = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: ISSUER, aud: APP_ID, nbf: at - 10, exp: at + 600 })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .sign(pair.privateKey);
    return verifier.verify(`Bearer ${token}`);
  }

  it.each<[string, (k: JWK) => Record<string, unknown>, string]>([
    ['a key without a modulus', ({ e }) => ({ e }), 'signing key has no RSA modulus or exponent'],
    ['a key without an exponent', ({ n }) => ({ n }), 'signing key has no RSA modulus or exponent'],
    ['a key with an empty modulus', ({ e }) => ({ n: '', e }), 'signing key has no RSA modulus or exponent'],
    ['a key with an empty exponent', ({ n }) => ({ n, e: '' }), 'signing key has no RSA modulus or exponent'],
    ['a modulus that is not a string', ({ e }) => ({ n: 12345, e }), 'signing key has no RSA modulus or exponent'],
    [
      'a key published for encryption',
      ({ n, e }) => ({ n, e, use: 'enc' }),
      'signing key is not published for signatures',
    ],
  ])('refuses a token under %s, saying so', async (_label, published, message) => {
    const err = await verifyWith(published(pair.publicJwk)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: 'AUTH_INVALID', message });
  });

  it('accepts a key published without "use" (optional in a JWK) or with use "sig"', async () => {
    const { n, e } = pair.publicJwk;
    await expect(verifyWith({ n, e })).resolves.toMatchObject({ key: { kid: 'k' } });
    await expect(verifyWith({ n, e, use: 'sig' })).resolves.toMatchObject({ key: { kid: 'k' } });
  });
});
