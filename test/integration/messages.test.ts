/**
 * POST /api/messages through the real verifier (against the local OpenID/JWKS stub over HTTPS)
 * and the real store (Azurite). Each spec check violated on its own is rejected, and nothing is
 * stored; bad input gets a clear 4xx; outages get a 5xx so the Bot Connector retries.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChannelTokenIssuer,
  fixtureActivity,
  generateSigningKey,
  nowSeconds,
  startOpenIdServer,
  type OpenIdServer,
} from '../../host/emulator';
import type { PublishedJwk } from '../../host/emulator/tokens';
import { createOpenIdKeyCache, fetchJsonDocument } from '../../src/auth/openIdKeys';
import { createChannelTokenVerifier } from '../../src/auth/verifyChannelToken';
import { handleMessages, MAX_BODY_BYTES, type MessagesDeps } from '../../src/inbound/handleMessages';
import { createLogger } from '../../src/log';
import { createConversationStore } from '../../src/store/conversationStore';
import { createTableClient } from '../../src/store/tableClients';
import { storesFor, useAzurite } from '../helpers/storage';

const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const SERVICE_URL = 'https://smba.trafficmanager.net/amer/';
const storage = useAzurite();
let openId: OpenIdServer;
let issuer: ChannelTokenIssuer;
const lines: string[] = [];

beforeAll(async () => {
  issuer = await ChannelTokenIssuer.create();
  openId = await startOpenIdServer({ issuer });
});
afterAll(async () => openId?.close());

function deps(overrides: Partial<MessagesDeps> = {}, clock?: () => number): MessagesDeps {
  return {
    verifier: createChannelTokenVerifier({
      appId: APP_ID,
      issuer: 'https://api.botframework.com',
      keys: createOpenIdKeyCache({
        metadataUrl: openId.metadataUrl,
        fetchJson: fetchJsonDocument,
        ...(clock === undefined ? {} : { now: clock }),
      }),
    }),
    store: storesFor(storage()).conversations,
    now: () => new Date(),
    log: createLogger((_level, line) => lines.push(line)),
    ...overrides,
  };
}
let shared: MessagesDeps;
const sharedDeps = () => (shared ??= deps());

let n = 0;
/** A personal message with a conversation id unique to the call, so "nothing stored" is exact. */
function activity(patch: Record<string, unknown> = {}): Record<string, unknown> {
  n += 1;
  return {
    ...fixtureActivity('message.personal', { serviceUrl: SERVICE_URL, conversationId: `a:auth-matrix-${n}` }),
    ...patch,
  };
}

function request(body: unknown, headers: Record<string, string>, method = 'POST') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    method,
    headers: new Headers({ 'content-type': 'application/json; charset=utf-8', ...headers }),
    body: new Blob([text]).stream() as ReadableStream<Uint8Array>,
  };
}

async function post(body: Record<string, unknown>, token: string | undefined, d = sharedDeps()) {
  const response = await handleMessages(
    request(body, token === undefined ? {} : { authorization: `Bearer ${token}` }),
    d,
  );
  const stored = await d.store.get((body.conversation as { id: string }).id);
  return { status: response.status, body: response.jsonBody, stored };
}

const mint = (overrides: Partial<Parameters<ChannelTokenIssuer['mintChannelToken']>[0]> = {}) =>
  issuer.mintChannelToken({ appId: APP_ID, serviceUrl: SERVICE_URL, ...overrides });

describe('POST /api/messages: authentication (never optional)', () => {
  it('accepts a valid Bot Framework token and stores the conversation', async () => {
    const result = await post(activity(), await mint());
    expect(result.status).toBe(200);
    expect(result.stored).toMatchObject({ conversationType: 'personal', serviceUrl: SERVICE_URL });
  });

  it.each([
    ['cty: JWT header (bot-docs#2242)', { extraHeader: { cty: 'JWT' } }],
    ['RS384', { alg: 'RS384' as const }],
    ['RS512', { alg: 'RS512' as const }],
    ['expired 4 minutes ago (within the 5 minute skew)', { expiresInSeconds: -240 }],
    ['serviceurl claim without the trailing slash', { serviceUrl: SERVICE_URL.slice(0, -1) }],
  ])('accepts %s', async (_label, overrides) => {
    expect((await post(activity(), await mint(overrides))).status).toBe(200);
  });

  it.each([
    ['no Authorization header', async () => undefined, 401],
    ['wrong issuer', async () => mint({ issuer: 'https://api.botframework.us' }), 401],
    ['wrong audience', async () => mint({ audience: 'another-bot' }), 401],
    ['expired beyond the skew', async () => mint({ expiresInSeconds: -600 }), 401],
    ['not valid yet beyond the skew', async () => mint({ notBefore: nowSeconds() + 900 }), 401],
    ['no exp claim', async () => mint({ claims: { exp: undefined } }), 401],
    [
      'no nbf claim (docs/authentication.md check 8: both are required)',
      async () => mint({ claims: { nbf: undefined } }),
      401,
    ],
    ['an nbf that is not a number', async () => mint({ claims: { nbf: String(nowSeconds()) } }), 401],
    ['an exp that is not a number', async () => mint({ claims: { exp: String(nowSeconds() + 3600) } }), 401],
    [
      'signed by a key not in the JWKS (published kid)',
      async () => mint({ key: await generateSigningKey(), kid: issuer.currentKey.kid }),
      401,
    ],
    ['an unknown kid', async () => mint({ kid: 'no-such-kid' }), 401],
    ['no kid', async () => mint({ kid: null }), 401],
    ['HS256', async () => mint({ alg: 'HS256' }), 401],
    [
      'HS256 keyed with the published RSA public key (algorithm confusion)',
      async () => {
        const pem = createPublicKey({ key: { ...issuer.currentKey.publicJwk } as JsonWebKey, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        });
        return mint({ alg: 'HS256', hmacSecret: new Uint8Array(Buffer.from(pem)) });
      },
      401,
    ],
    ['PS256', async () => mint({ alg: 'PS256' }), 401],
    ['alg none', async () => mint({ alg: 'none' }), 401],
    [
      'serviceurl claim for another serviceUrl',
      async () => mint({ serviceUrl: 'https://smba.trafficmanager.net/emea/' }),
      401,
    ],
    ['no serviceurl claim', async () => mint({ claims: { serviceurl: undefined } }), 401],
    [
      'an Entra-issued token (sts.windows.net)',
      async () => mint({ issuer: 'https://sts.windows.net/72f988bf-0000-4000-8000-00000000c0de/' }),
      401,
    ],
  ])('rejects %s and stores nothing', async (_label, makeToken, status) => {
    const token = await makeToken();
    const body = activity();
    const result = await post(body, token);
    expect(result.status).toBe(status);
    expect(result.body).toEqual({ error: status === 403 ? 'Forbidden' : 'Unauthorized' });
    expect(result.stored).toBeUndefined();
  });

  it('rejects a key not endorsed for the activity channel with 403, and stores nothing', async () => {
    const key = await issuer.addKey({ endorsements: ['skype'] });
    const body = activity();
    const result = await post(body, await mint({ key }), deps());
    expect(result).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(result.stored).toBeUndefined();
  });

  // docs/authentication.md check 9: a key with no endorsements (missing or empty), or an activity with no channelId, fails.
  it.each([
    ['a key with an empty endorsements list', async () => issuer.addKey({ endorsements: [] })],
    [
      'a key without an endorsements member',
      async () => {
        const key = await generateSigningKey();
        delete (key.publicJwk as Partial<PublishedJwk>).endorsements;
        issuer.publishKey(key);
        return key;
      },
    ],
  ])('rejects %s with 403, and stores nothing', async (_label, makeKey) => {
    const key = await makeKey();
    const body = activity();
    const result = await post(body, await mint({ key }), deps());
    expect(result).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(result.stored).toBeUndefined();
    issuer.removeKey(key.kid);
  });

  it('rejects an activity without a channelId with 403 (nothing to check the endorsements against), and stores nothing', async () => {
    const body = activity({ channelId: undefined });
    const result = await post(body, await mint());
    expect(result).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(result.stored).toBeUndefined();
  });

  describe('non-RSA keys', () => {
    const ecKid = `ec-p256-${process.pid}`;
    let ecPrivate: CryptoKey;
    beforeAll(async () => {
      const pair = await generateKeyPair('ES256', { extractable: true });
      ecPrivate = pair.privateKey;
      // Published like a channel key (kid, use, msteams endorsement), so only the key type stops it.
      const publicJwk = {
        ...(await exportJWK(pair.publicKey)),
        kid: ecKid,
        use: 'sig',
        endorsements: ['msteams'],
      } as unknown as PublishedJwk;
      issuer.publishKey({ kid: ecKid, privateKey: ecPrivate, privateJwk: {}, publicJwk });
    });
    afterAll(() => void issuer.removeKey(ecKid));

    const claims = () => ({
      serviceurl: SERVICE_URL,
      iss: 'https://api.botframework.com',
      aud: APP_ID,
      nbf: nowSeconds(),
      exp: nowSeconds() + 3600,
    });
    it.each([
      [
        'ES256 signed with a published EC P-256 key',
        async () => new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: ecKid }).sign(ecPrivate),
      ],
      ["RS256 naming the EC key's kid", async () => mint({ kid: ecKid })],
    ])('rejects %s and stores nothing', async (_label, makeToken) => {
      const body = activity();
      const result = await post(body, await makeToken(), deps());
      expect(result).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
      expect(result.stored).toBeUndefined();
    });
  });

  it.each([['Basic abc'], ['Bearer'], ['bearer x.y.z'], ['Bearer a b'], ['Bearer not-a-jwt']])(
    'rejects Authorization "%s"',
    async (header) => {
      const body = activity();
      const response = await handleMessages(request(body, { authorization: header }), sharedDeps());
      expect(response.status).toBe(401);
      expect(await sharedDeps().store.get((body.conversation as { id: string }).id)).toBeUndefined();
    },
  );

  it('logs the reason (entra_issuer for Entra tokens) and never the token', async () => {
    lines.length = 0;
    const token = await mint({ issuer: 'https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/v2.0' });
    await post(activity(), token);
    const log = lines.join('\n');
    expect(log).toContain('entra_issuer');
    expect(log).not.toContain(token);
    expect(log).not.toContain(token.split('.')[1]);
  });
});

describe('POST /api/messages: key cache', () => {
  it('makes no network call per request once warm, and refetches once on an unknown kid', async () => {
    let clockMs = Date.now();
    const d = deps({}, () => clockMs);
    await post(activity(), await mint(), d);
    openId.resetCounters();
    for (let i = 0; i < 5; i += 1) expect((await post(activity(), await mint(), d)).status).toBe(200);
    expect(openId.counters).toMatchObject({ metadata: 0, keys: 0 });

    // Minutes later a rotated-in key is picked up by one refetch; a flood of forged kids right
    // after that costs no network call (refetches are rate limited).
    clockMs += 6 * 60 * 1000;
    const fresh = await issuer.addKey();
    expect((await post(activity(), await mint({ key: fresh }), d)).status).toBe(200);
    expect(openId.counters).toMatchObject({ metadata: 1, keys: 1 });
    for (let i = 0; i < 5; i += 1)
      expect((await post(activity(), await mint({ kid: `forged-${i}` }), d)).status).toBe(401);
    expect(openId.counters).toMatchObject({ metadata: 1, keys: 1 });

    // The scheduled refresh happens after 24 hours even when every kid is known.
    clockMs += 24 * 60 * 60 * 1000;
    expect((await post(activity(), await mint(), d)).status).toBe(200);
    expect(openId.counters).toMatchObject({ metadata: 2, keys: 2 });
  });

  it('verifies with the new material when a kid is reused for a new key, never with the cached import', async () => {
    let clockMs = Date.now();
    const d = deps({}, () => clockMs);
    const kid = `reused-kid-${process.pid}`;
    const before = await issuer.addKey({ kid });
    expect((await post(activity(), await mint({ key: before }), d)).status).toBe(200);

    // The publisher replaces the key but keeps its kid; the scheduled refresh picks up the change.
    issuer.removeKey(kid);
    const after = await generateSigningKey({ kid });
    issuer.publishKey(after);
    clockMs += 24 * 60 * 60 * 1000 + 1;
    expect((await post(activity(), await mint({ key: after }), d)).status).toBe(200);

    // The retired material no longer verifies under that kid.
    const body = activity();
    const stale = await post(body, await mint({ key: before }), d);
    expect(stale.status).toBe(401);
    expect(stale.stored).toBeUndefined();
    issuer.removeKey(kid);
  });

  it('answers 503 (so the Connector retries) when no keys can be fetched at all', async () => {
    openId.setOutage('status');
    try {
      const body = activity();
      const result = await post(body, await mint(), deps());
      expect(result.status).toBe(503);
      expect(result.stored).toBeUndefined();
    } finally {
      openId.setOutage(false);
    }
  });
});

describe('POST /api/messages: bad input', () => {
  const send = async (body: string, headers: Record<string, string> = {}, method = 'POST') => {
    const token = await mint();
    return handleMessages(request(body, { authorization: `Bearer ${token}`, ...headers }, method), sharedDeps());
  };

  it.each([
    ['not JSON', 400, '{"type":', 'not valid JSON'],
    ['an array', 400, '[1,2]', 'JSON object'],
    ['no type', 400, JSON.stringify({ serviceUrl: SERVICE_URL, conversation: { id: 'a:x' } }), '"type"'],
    [
      'no conversation.id',
      400,
      JSON.stringify({ type: 'message', serviceUrl: SERVICE_URL, conversation: {} }),
      '"conversation.id"',
    ],
    ['no serviceUrl', 400, JSON.stringify({ type: 'message', conversation: { id: 'a:x' } }), '"serviceUrl"'],
    ['an empty body', 400, '', 'empty'],
  ])('%s -> %i with a clear message', async (_label, status, body, message) => {
    const response = await send(body);
    expect(response.status).toBe(status);
    expect((response.jsonBody as { error: string }).error).toContain(message);
  });

  it('a non-JSON content type -> 400', async () => {
    expect((await send(JSON.stringify(activity()), { 'content-type': 'text/plain' })).status).toBe(400);
  });

  it('a body over 256 KB -> 413, by declared length or while streaming', async () => {
    const big = JSON.stringify(activity({ text: 'x'.repeat(MAX_BODY_BYTES) }));
    expect((await send(big, { 'content-length': String(Buffer.byteLength(big)) })).status).toBe(413);
    expect((await send(big)).status).toBe(413);
  });

  it('other methods -> 405 with Allow: POST', async () => {
    const response = await send('', {}, 'GET');
    expect(response).toMatchObject({ status: 405, headers: { Allow: 'POST' } });
  });

  it('other activity types and channels -> 200, nothing stored', async () => {
    // A channel other than msteams needs a key endorsed for it, as the real JWKS has.
    const d = deps();
    const key = await issuer.addKey({ endorsements: ['msteams', 'webchat'] });
    for (const patch of [
      { type: 'typing' },
      { type: 'invoke' },
      { type: 'messageReaction' },
      { channelId: 'webchat' },
    ]) {
      const body = activity(patch);
      const result = await post(body, await mint({ key }), d);
      expect(result.status).toBe(200);
      expect(result.stored).toBeUndefined();
    }
  });

  it('storage down -> 503 with a generic body, so the Bot Connector retries', async () => {
    const dead = createTableClient(
      {
        kind: 'connectionString',
        connectionString: storage().azurite.connectionString.replace(
          /TableEndpoint=http:\/\/127\.0\.0\.1:\d+/,
          'TableEndpoint=http://127.0.0.1:1',
        ),
      },
      'conversations',
    );
    const store = createConversationStore({ conversations: dead, userChats: dead });
    const response = await handleMessages(
      request(activity(), { authorization: `Bearer ${await mint()}` }),
      deps({ store }),
    );
    expect(response).toMatchObject({ status: 503, jsonBody: { error: 'Service unavailable' } });
  });
});
