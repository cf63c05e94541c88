/**
 * The two token checks, each rule on its own with the exact answer it gives: the Bot Framework
 * channel token (src/auth/verifyChannelToken.ts, docs/authentication.md checks 1-9) and the Entra
 * token of a flow caller (src/auth/verifyCallerToken.ts). Local key pairs, and the real key cache
 * over a JWKS that a function serves (no network); the clock is the real one or a fixed date.
 */
import * as jose from 'jose';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOpenIdKeyCache } from '../../src/auth/openIdKeys';
import { callerMetadataUrl, createCallerTokenVerifier, entraIssuers } from '../../src/auth/verifyCallerToken';
import {
  ALLOWED_ALGORITHMS,
  assertActivityMatchesToken,
  CLOCK_TOLERANCE_SECONDS,
  createChannelTokenVerifier,
  describeJoseError,
  type VerifiedChannelToken,
} from '../../src/auth/verifyChannelToken';
import { AuthError, ConfigError, CourierError } from '../../src/errors';

const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const BF_ISSUER = 'https://api.botframework.com';
const SERVICE_URL = 'https://smba.trafficmanager.net/amer/';
const KID = 'bf-key';
const seconds = (): number => Math.floor(Date.now() / 1000);

let rsa: { privateKey: CryptoKey; publicJwk: JWK };
let other: { privateKey: CryptoKey; publicJwk: JWK };
let ec: { privateKey: CryptoKey; publicJwk: JWK };
let pss: { privateKey: CryptoKey; publicJwk: JWK };
let rsa384: { privateKey: CryptoKey; publicJwk: JWK };
let rsa512: { privateKey: CryptoKey; publicJwk: JWK };

beforeAll(async () => {
  const pair = async (alg: string) => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    return { privateKey, publicJwk: await exportJWK(publicKey) };
  };
  [rsa, other, ec, pss, rsa384, rsa512] = await Promise.all([
    pair('RS256'),
    pair('RS256'),
    pair('ES256'),
    pair('PS256'),
    pair('RS384'),
    pair('RS512'),
  ]);
});

/** The key cache on a JWKS like the Bot Framework's: RSA keys with endorsements. */
function keyCache(fail = false) {
  const metadataUrl = 'https://login.botframework.com/v1/.well-known/openidconfiguration';
  const jwksUri = 'https://login.botframework.com/v1/.well-known/keys';
  return createOpenIdKeyCache({
    metadataUrl,
    fetchJson: async (url) => {
      if (fail) throw new Error('connect ECONNREFUSED');
      if (url === metadataUrl) return { issuer: BF_ISSUER, jwks_uri: jwksUri };
      return {
        keys: [
          { ...rsa.publicJwk, kid: KID, use: 'sig', endorsements: ['msteams', 'webchat'] },
          { ...rsa384.publicJwk, kid: 'bf-RS384', use: 'sig', endorsements: ['msteams', 'webchat'] },
          { ...rsa512.publicJwk, kid: 'bf-RS512', use: 'sig', endorsements: ['msteams', 'webchat'] },
          { ...ec.publicJwk, kid: 'ec-key', use: 'sig', endorsements: ['msteams'] },
          { ...pss.publicJwk, kty: 'RSA', kid: 'pss-key', use: 'sig', endorsements: ['msteams'] },
        ],
      };
    },
  });
}

const channelVerifier = (options: { currentDate?: () => Date; fail?: boolean } = {}) =>
  createChannelTokenVerifier({
    appId: APP_ID,
    issuer: BF_ISSUER,
    keys: keyCache(options.fail),
    ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate }),
  });

function channelClaims(overrides: Record<string, unknown> = {}, at = seconds()): JWTPayload {
  const claims: Record<string, unknown> = {
    iss: BF_ISSUER,
    aud: APP_ID,
    serviceurl: SERVICE_URL,
    nbf: at - 10,
    exp: at + 3600,
    iat: at - 10,
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete claims[name];
    else claims[name] = value;
  }
  return claims;
}

async function sign(
  claims: JWTPayload,
  options: { alg?: string; kid?: string | null; key?: CryptoKey | Uint8Array; cty?: string } = {},
): Promise<string> {
  const kid = options.kid === undefined ? KID : options.kid;
  return new SignJWT(claims)
    .setProtectedHeader({
      alg: options.alg ?? 'RS256',
      typ: 'JWT',
      ...(kid === null ? {} : { kid }),
      ...(options.cty === undefined ? {} : { cty: options.cty }),
    })
    .sign(options.key ?? rsa.privateKey);
}

async function refusal(
  verify: () => Promise<unknown>,
): Promise<{ code: string; message: string; cause?: unknown; name: string }> {
  const err = await verify().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a refusal').toBeInstanceOf(CourierError);
  return err as { code: string; message: string; cause?: unknown; name: string };
}

describe('channel tokens (Bot Framework -> bot)', () => {
  it('accepts RS256, RS384 and RS512 from the published keys, and returns the claims, header and key', async () => {
    const keys = { RS256: [KID, rsa], RS384: ['bf-RS384', rsa384], RS512: ['bf-RS512', rsa512] } as const;
    for (const alg of ALLOWED_ALGORITHMS) {
      const [kid, pair] = keys[alg as keyof typeof keys];
      const token = await sign(channelClaims(), { alg, kid, key: pair.privateKey });
      const verified = await channelVerifier().verify(`Bearer ${token}`);
      expect(verified.claims).toMatchObject({ iss: BF_ISSUER, aud: APP_ID, serviceurl: SERVICE_URL });
      expect(verified.header).toMatchObject({ alg, kid });
      expect(verified.key).toMatchObject({ kid, endorsements: ['msteams', 'webchat'] });
    }
    expect(ALLOWED_ALGORITHMS).toEqual(['RS256', 'RS384', 'RS512']);
  });

  it('takes the header with blanks around it and between its two parts, and a cty: JWT header', async () => {
    const token = await sign(channelClaims(), { cty: 'JWT' });
    for (const header of [`Bearer ${token}`, `  Bearer ${token}  `, `Bearer  ${token}`, `Bearer\t${token}`]) {
      await expect(channelVerifier().verify(header), JSON.stringify(header.slice(0, 12))).resolves.toMatchObject({
        claims: { aud: APP_ID },
      });
    }
  });

  it('refuses a missing header, and any other shape than "Bearer <token>" (even around a valid token)', async () => {
    const token = await sign(channelClaims());
    for (const header of [undefined, null, '', '   ']) {
      expect(await refusal(() => channelVerifier().verify(header))).toMatchObject({
        code: 'AUTH_MISSING',
        message: 'no Authorization header',
      });
    }
    for (const header of [
      'Bearer',
      `Basic ${token}`,
      `bearer ${token}`,
      `Bearer ${token} extra`,
      `${token}`,
      `Bearer: ${token}`,
    ]) {
      expect(await refusal(() => channelVerifier().verify(header)), header.slice(0, 10)).toMatchObject({
        code: 'AUTH_MISSING',
        message: 'Authorization header is not "Bearer <token>"',
      });
    }
  });

  it.each<[string, () => Promise<string>, string]>([
    ['a token without kid', () => sign(channelClaims(), { kid: null }), 'token header has no kid'],
    [
      'a key id nobody published',
      () => sign(channelClaims(), { kid: 'nobody' }),
      'token signed with an unknown key id',
    ],
    [
      'HS256',
      () => sign(channelClaims(), { alg: 'HS256', key: new TextEncoder().encode('a shared secret of 32 bytes!!!!!') }),
      'signing algorithm not allowed',
    ],
    [
      'ES256 (an EC key)',
      () => sign(channelClaims(), { alg: 'ES256', kid: 'ec-key', key: ec.privateKey }),
      'signing algorithm not allowed',
    ],
    [
      'PS256',
      () => sign(channelClaims(), { alg: 'PS256', kid: 'pss-key', key: pss.privateKey }),
      'signing algorithm not allowed',
    ],
    [
      "another key's signature",
      () => sign(channelClaims(), { key: other.privateKey }),
      'signature verification failed',
    ],
    [
      'an expired token',
      () => sign(channelClaims({ exp: seconds() - CLOCK_TOLERANCE_SECONDS - 5 })),
      'token has expired',
    ],
    [
      'a token not valid yet',
      () => sign(channelClaims({ nbf: seconds() + CLOCK_TOLERANCE_SECONDS + 60 })),
      'claim "nbf" failed: check_failed',
    ],
    ['no exp', () => sign(channelClaims({ exp: undefined })), 'claim "exp" failed: missing'],
    ['no nbf', () => sign(channelClaims({ nbf: undefined })), 'claim "nbf" failed: missing'],
    ['another audience', () => sign(channelClaims({ aud: 'someone-else' })), 'claim "aud" failed: check_failed'],
    [
      'another issuer',
      () => sign(channelClaims({ iss: 'https://api.botframework.us' })),
      'claim "iss" failed: check_failed',
    ],
    [
      'an issuer that only contains an Entra one',
      () => sign(channelClaims({ iss: 'https://evil.example/https://sts.windows.net/' })),
      'claim "iss" failed: check_failed',
    ],
    [
      'an Entra token',
      () => sign(channelClaims({ iss: 'https://sts.windows.net/72f988bf-0000-4000-8000-00000000c0de/' })),
      'entra_issuer: token issued by https://sts.windows.net is not accepted (only https://api.botframework.com); see docs/authentication.md',
    ],
    [
      'an Entra v2 token',
      () => sign(channelClaims({ iss: 'https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/v2.0' })),
      'entra_issuer: token issued by https://login.microsoftonline.com is not accepted (only https://api.botframework.com); see docs/authentication.md',
    ],
    [
      'an Entra US gov token with a bad signature',
      () => sign(channelClaims({ iss: 'https://login.microsoftonline.us/t/v2.0' }), { key: other.privateKey }),
      'entra_issuer: token issued by https://login.microsoftonline.us is not accepted (only https://api.botframework.com); see docs/authentication.md',
    ],
    ['not a JWT', async () => 'not-a-jwt', 'token is malformed'],
    ['three parts of nothing', async () => 'a.b.c', 'token is malformed'],
  ])('refuses %s, saying so', async (_label, token, message) => {
    const err = await refusal(async () => channelVerifier().verify(`Bearer ${await token()}`));
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: 'AUTH_INVALID', message });
  });

  it('keeps the underlying failure as the cause of an entra_issuer refusal', async () => {
    const entraIssuer = 'https://sts.windows.net/72f988bf-0000-4000-8000-00000000c0de/';
    const wrongIssuer = await refusal(async () =>
      channelVerifier().verify(`Bearer ${await sign(channelClaims({ iss: entraIssuer }))}`),
    );
    expect(wrongIssuer.message).toMatch(/^entra_issuer: /);
    expect(wrongIssuer.cause).toBeInstanceOf(jose.errors.JWTClaimValidationFailed);
    expect(wrongIssuer.cause).toMatchObject({ claim: 'iss', reason: 'check_failed' });
    const badSignature = await refusal(async () =>
      channelVerifier().verify(`Bearer ${await sign(channelClaims({ iss: entraIssuer }), { key: other.privateKey })}`),
    );
    expect(badSignature.message).toMatch(/^entra_issuer: /);
    expect(badSignature.cause).toBeInstanceOf(jose.errors.JWSSignatureVerificationFailed);
  });

  it('allows 5 minutes of clock skew on exp and nbf', async () => {
    expect(CLOCK_TOLERANCE_SECONDS).toBe(300);
    await expect(
      channelVerifier().verify(
        `Bearer ${await sign(channelClaims({ exp: seconds() - CLOCK_TOLERANCE_SECONDS + 30 }))}`,
      ),
    ).resolves.toBeDefined();
    await expect(
      channelVerifier().verify(
        `Bearer ${await sign(channelClaims({ nbf: seconds() + CLOCK_TOLERANCE_SECONDS - 30 }))}`,
      ),
    ).resolves.toBeDefined();
  });

  it("keeps jose's error as the cause, and never the token in the reason", async () => {
    const token = await sign(channelClaims({ exp: seconds() - 3600 }));
    const err = await refusal(() => channelVerifier().verify(`Bearer ${token}`));
    expect(err.cause).toBeInstanceOf(jose.errors.JWTExpired);
    for (const part of token.split('.')) expect(err.message).not.toContain(part);
  });

  it('checks the time against currentDate when given one', async () => {
    const at = seconds() - 10 * 24 * 3600;
    const token = await sign(channelClaims({}, at));
    await expect(channelVerifier().verify(`Bearer ${token}`)).rejects.toMatchObject({ message: 'token has expired' });
    await expect(
      channelVerifier({ currentDate: () => new Date(at * 1000) }).verify(`Bearer ${token}`),
    ).resolves.toMatchObject({ claims: { aud: APP_ID } });
  });

  it('passes "keys unreachable" on as it is (a 503), not as a bad token', async () => {
    const err = await refusal(async () =>
      channelVerifier({ fail: true }).verify(`Bearer ${await sign(channelClaims())}`),
    );
    expect(err).not.toBeInstanceOf(AuthError);
    expect(err.code).toBe('AUTH_METADATA_UNAVAILABLE');
  });

  describe('the activity against its token', () => {
    const token = (claims: Record<string, unknown>, endorsements?: unknown): VerifiedChannelToken => ({
      claims,
      header: { alg: 'RS256' },
      key: { kty: 'RSA', ...(endorsements === undefined ? {} : { endorsements }) } as never,
    });
    const activity = { channelId: 'msteams', serviceUrl: SERVICE_URL };

    it('passes an endorsed key and a matching serviceurl, a trailing slash aside', () => {
      expect(() => assertActivityMatchesToken(token({ serviceurl: SERVICE_URL }, ['msteams']), activity)).not.toThrow();
      expect(() =>
        assertActivityMatchesToken(
          token({ serviceurl: 'https://smba.trafficmanager.net/amer' }, ['msteams']),
          activity,
        ),
      ).not.toThrow();
      expect(() =>
        assertActivityMatchesToken(token({ serviceurl: SERVICE_URL }, ['msteams']), {
          ...activity,
          serviceUrl: 'https://smba.trafficmanager.net/amer',
        }),
      ).not.toThrow();
    });

    it.each<[string, VerifiedChannelToken, { channelId: string; serviceUrl: string }, string, string]>([
      [
        'an activity without channelId',
        token({ serviceurl: SERVICE_URL }, ['msteams', '']),
        { ...activity, channelId: '' },
        'AUTH_ENDORSEMENT',
        "activity has no channelId to check the signing key's endorsements against",
      ],
      [
        'a key not endorsed for the channel',
        token({ serviceurl: SERVICE_URL }, ['webchat']),
        activity,
        'AUTH_ENDORSEMENT',
        'signing key is not endorsed for channel "msteams"',
      ],
      [
        'a key without endorsements',
        token({ serviceurl: SERVICE_URL }),
        activity,
        'AUTH_ENDORSEMENT',
        'signing key is not endorsed for channel "msteams"',
      ],
      [
        'endorsements that are not a list',
        token({ serviceurl: SERVICE_URL }, 'msteams'),
        activity,
        'AUTH_ENDORSEMENT',
        'signing key is not endorsed for channel "msteams"',
      ],
      ['no serviceurl claim', token({}, ['msteams']), activity, 'AUTH_INVALID', 'token has no serviceurl claim'],
      [
        'an empty serviceurl claim',
        token({ serviceurl: '' }, ['msteams']),
        activity,
        'AUTH_INVALID',
        'token has no serviceurl claim',
      ],
      [
        'a serviceurl claim that is not a string',
        token({ serviceurl: ['x'] }, ['msteams']),
        activity,
        'AUTH_INVALID',
        'token has no serviceurl claim',
      ],
      [
        'another serviceurl',
        token({ serviceurl: 'https://smba.trafficmanager.net/emea/' }, ['msteams']),
        activity,
        'AUTH_INVALID',
        'serviceurl claim does not match the activity serviceUrl',
      ],
      [
        'a serviceurl with two trailing slashes',
        token({ serviceurl: `${SERVICE_URL}/` }, ['msteams']),
        activity,
        'AUTH_INVALID',
        'serviceurl claim does not match the activity serviceUrl',
      ],
    ])('refuses %s', (_label, verified, act, code, message) => {
      let err: unknown;
      try {
        assertActivityMatchesToken(verified, act);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthError);
      expect(err).toMatchObject({ code, message });
    });
  });

  it('describes each jose failure in words that never hold the token', () => {
    const { errors } = jose;
    expect(describeJoseError(new errors.JWTExpired('x', {}), jose)).toBe('token has expired');
    expect(describeJoseError(new errors.JWTClaimValidationFailed('x', {}, 'aud', 'check_failed'), jose)).toBe(
      'claim "aud" failed: check_failed',
    );
    expect(describeJoseError(new errors.JWSSignatureVerificationFailed(), jose)).toBe('signature verification failed');
    expect(describeJoseError(new errors.JOSEAlgNotAllowed('x'), jose)).toBe('signing algorithm not allowed');
    expect(describeJoseError(new errors.JWSInvalid('x'), jose)).toBe('token is malformed');
    expect(describeJoseError(new errors.JWTInvalid('x'), jose)).toBe('token is malformed');
    expect(describeJoseError(new errors.JOSENotSupported('x'), jose)).toBe(
      'token uses an unsupported algorithm or key',
    );
    expect(describeJoseError(new Error('eyJhbGciOi...'), jose)).toBe('token could not be verified');
    expect(describeJoseError('x', jose)).toBe('token could not be verified');
  });
});

describe('caller tokens (flows -> /api/notify): the rules the other file leaves', () => {
  const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
  const OID = '6f2c1a4e-1b7d-4c38-9d5e-0000000000f1';
  const AUTHORITY = 'https://login.microsoftonline.com';

  function callerVerifier(options: { currentDate?: () => Date; fail?: boolean; authorityHost?: string } = {}) {
    const authorityHost = options.authorityHost ?? AUTHORITY;
    const metadataUrl = callerMetadataUrl(authorityHost, TENANT);
    const jwksUri = `${new URL(authorityHost).origin}/${TENANT}/discovery/v2.0/keys`;
    return createCallerTokenVerifier({
      tenantId: TENANT,
      audiences: [' api://teams-courier ', ''],
      authorityHost,
      ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate }),
      keys: createOpenIdKeyCache({
        metadataUrl,
        fetchJson: async (url) => {
          if (options.fail) throw new Error('connect ECONNREFUSED');
          return url === metadataUrl
            ? { issuer: `${authorityHost}/${TENANT}/v2.0`, jwks_uri: jwksUri }
            : { keys: [{ ...rsa.publicJwk, kid: KID, use: 'sig' }] };
        },
      }),
    });
  }
  const claims = (overrides: Record<string, unknown> = {}, at = seconds()): JWTPayload => {
    const base: Record<string, unknown> = {
      aud: 'api://teams-courier',
      iss: `https://sts.windows.net/${TENANT}/`,
      nbf: at - 10,
      exp: at + 3600,
      iat: at - 10,
      appid: 'C0FFEE00-0000-4000-8000-000000000001',
      idtyp: 'app',
      oid: OID,
      tid: TENANT,
      ver: '1.0',
    };
    for (const [name, value] of Object.entries(overrides)) {
      if (value === undefined) delete base[name];
      else base[name] = value;
    }
    return base;
  };

  it('takes the scheme in any case, blanks around and between, and returns lower-case ids', async () => {
    const token = await sign(claims({ oid: OID.toUpperCase() }));
    for (const header of [`bearer ${token}`, `BEARER  ${token}`, ` Bearer\t${token} `]) {
      await expect(callerVerifier().verify(header)).resolves.toEqual({
        objectId: OID,
        appId: 'c0ffee00-0000-4000-8000-000000000001',
        tenantId: TENANT,
      });
    }
  });

  it('refuses a missing header and other shapes', async () => {
    const token = await sign(claims());
    for (const header of [undefined, '', '  '])
      expect(await refusal(() => callerVerifier().verify(header))).toMatchObject({
        code: 'AUTH_MISSING',
        message: 'no Authorization header',
      });
    for (const header of ['Bearer', `Basic ${token}`, `Bearer ${token} x`])
      expect(await refusal(() => callerVerifier().verify(header))).toMatchObject({
        code: 'AUTH_MISSING',
        message: 'Authorization header is not "Bearer <token>"',
      });
  });

  it.each<[string, () => Promise<string>, string]>([
    [
      'HS256',
      () => sign(claims(), { alg: 'HS256', key: new TextEncoder().encode('a shared secret of 32 bytes!!!!!') }),
      'signing algorithm not allowed',
    ],
    [
      'RS512 (only RS256 here)',
      () => sign(claims(), { alg: 'RS512', key: rsa512.privateKey }),
      'signing algorithm not allowed',
    ],
    ['an empty tid', () => sign(claims({ tid: '' })), 'claim "tid" is not a non-empty string'],
    ['a tid that is not a string', () => sign(claims({ tid: 5 })), 'claim "tid" is not a non-empty string'],
    ['a v1 token saying 2.0', () => sign(claims({ ver: '2.0' })), 'claim "ver" does not match a v1 issuer'],
    [
      'a v2 token saying 1.0',
      () => sign(claims({ iss: `${AUTHORITY}/${TENANT}/v2.0`, ver: '1.0' })),
      'claim "ver" does not match a v2 issuer',
    ],
    [
      'a long idtyp',
      () => sign(claims({ idtyp: 'user-and-a-much-longer-tail' })),
      'claim "idtyp" is "user-and-a-much-": only app-only tokens are accepted',
    ],
    ['no oid', () => sign(claims({ oid: undefined })), 'token has no "oid" claim'],
    ['an oid with more around a GUID', () => sign(claims({ oid: `x${OID}` })), 'claim "oid" is not a GUID'],
    ['an oid with a tail', () => sign(claims({ oid: `${OID}0` })), 'claim "oid" is not a GUID'],
    ['an expired token', () => sign(claims({ exp: seconds() - 3600 })), 'token has expired'],
  ])('refuses %s, saying so', async (_label, token, message) => {
    expect(await refusal(async () => callerVerifier().verify(`Bearer ${await token()}`))).toMatchObject({
      code: 'AUTH_INVALID',
      message,
    });
  });

  it('keeps jose\'s error as the cause, checks against currentDate, and passes "keys unreachable" on', async () => {
    const old = seconds() - 10 * 24 * 3600;
    const token = await sign(claims({}, old));
    const expired = await refusal(() => callerVerifier().verify(`Bearer ${token}`));
    expect(expired.cause).toBeInstanceOf(jose.errors.JWTExpired);
    await expect(
      callerVerifier({ currentDate: () => new Date(old * 1000) }).verify(`Bearer ${token}`),
    ).resolves.toMatchObject({ objectId: OID });
    const down = await refusal(async () => callerVerifier({ fail: true }).verify(`Bearer ${await sign(claims())}`));
    expect(down).not.toBeInstanceOf(AuthError);
    expect(down.code).toBe('AUTH_METADATA_UNAVAILABLE');
  });

  it('refuses a configuration it cannot enforce, naming the setting', () => {
    const options = {
      tenantId: TENANT,
      audiences: ['api://x'],
      authorityHost: AUTHORITY,
      keys: { getKey: async () => undefined, fetchCount: 0 },
    };
    const configError = (change: Record<string, unknown>) => {
      try {
        createCallerTokenVerifier({ ...options, ...change } as never);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
      return [];
    };
    expect(configError({ tenantId: `x${TENANT}` })).toEqual([
      { path: 'tenantId', message: 'must be a tenant id (a GUID)' },
    ]);
    expect(configError({ tenantId: `${TENANT}x` })).toEqual([
      { path: 'tenantId', message: 'must be a tenant id (a GUID)' },
    ]);
    expect(configError({ audiences: [' ', ''] })).toEqual([
      { path: 'audiences', message: 'must name at least one audience' },
    ]);
    expect(configError({ authorityHost: 'login.microsoftonline.com' })).toEqual([
      { path: 'authorityHost', message: 'must be an https URL' },
    ]);
    for (const authorityHost of [
      'http://login.microsoftonline.com',
      'https://login.microsoftonline.com/tenant',
      'https://login.microsoftonline.com/?x=1',
      'https://login.microsoftonline.com/#x',
    ]) {
      expect(configError({ authorityHost }), authorityHost).toEqual([
        {
          path: 'authorityHost',
          message: 'must be an https origin without a path, e.g. https://login.microsoftonline.com',
        },
      ]);
    }
    expect(configError({ authorityHost: 'https://login.microsoftonline.com/' })).toEqual([]);
    expect(configError({ tenantId: TENANT.toUpperCase() })).toEqual([]);
  });

  it('knows each Entra cloud by any of its hosts', () => {
    const tid = TENANT;
    for (const host of [
      'login.microsoftonline.com',
      'login.windows.net',
      'login.microsoft.com',
      'sts.windows.net',
      'LOGIN.MICROSOFTONLINE.COM',
    ]) {
      expect(entraIssuers(`https://${host}`, tid), host).toEqual({
        v2: `https://login.microsoftonline.com/${tid}/v2.0`,
        v1: [`https://sts.windows.net/${tid}/`],
      });
    }
    for (const host of ['login.microsoftonline.us', 'login.usgovcloudapi.net']) {
      expect(entraIssuers(`https://${host}`, tid), host).toEqual({
        v2: `https://login.microsoftonline.us/${tid}/v2.0`,
        v1: [`https://login.microsoftonline.us/${tid}/`, `https://sts.windows.net/${tid}/`],
      });
    }
    for (const host of ['login.partner.microsoftonline.cn', 'login.chinacloudapi.cn']) {
      expect(entraIssuers(`https://${host}`, tid), host).toEqual({
        v2: `https://login.partner.microsoftonline.cn/${tid}/v2.0`,
        v1: [`https://sts.chinacloudapi.cn/${tid}/`],
      });
    }
    expect(entraIssuers('https://127.0.0.1:8443/', tid.toUpperCase())).toEqual({
      v2: `https://127.0.0.1:8443/${tid}/v2.0`,
      v1: [`https://sts.windows.net/${tid}/`],
    });
    expect(callerMetadataUrl('https://login.microsoftonline.com/', tid.toUpperCase())).toBe(
      `https://login.microsoftonline.com/${tid}/v2.0/.well-known/openid-configuration`,
    );
  });
});
