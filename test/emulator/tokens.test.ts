import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenIdServer, type OpenIdServer } from '../../host/emulator/openIdServer';
import {
  BOT_FRAMEWORK_ISSUER,
  generateSigningKey,
  nowSeconds,
  type MintChannelTokenOptions,
  type PublishedJwks,
} from '../../host/emulator/tokens';
import { APP_ID, call, keepAliveAgent } from './helpers';

const SERVICE_URL = 'https://127.0.0.1:1/amer/';

/**
 * A reference validator with the rules of bot-connector.md §1.2/§1.3, used only to prove that each
 * mint option breaks exactly one rule. Returns 'ok' or the name of the failed check.
 */
async function check(token: string, jwks: PublishedJwks, activityServiceUrl = SERVICE_URL): Promise<string> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: BOT_FRAMEWORK_ISSUER,
      audience: APP_ID,
      algorithms: ['RS256'],
      clockTolerance: 300,
    }));
  } catch (err) {
    const { code, claim } = err as { code?: string; claim?: string };
    return claim === undefined ? (code ?? 'error') : `${code ?? 'error'}:${claim}`;
  }
  const kid = decodeProtectedHeader(token).kid;
  const key = jwks.keys.find((k) => k.kid === kid);
  if (key && key.endorsements.length > 0 && !key.endorsements.includes('msteams')) return 'endorsement';
  if (payload.serviceurl !== activityServiceUrl) return 'serviceurl';
  return 'ok';
}

describe('tokens', () => {
  let openId: OpenIdServer;
  const agent = keepAliveAgent();

  beforeAll(async () => {
    openId = await startOpenIdServer();
  });
  afterAll(async () => {
    await openId.close();
    await agent.close();
  });

  it('publishes RSA keys with kid, use and the msteams endorsement, and no private parts', async () => {
    const res = await call(agent, openId.jwksUrl, { method: 'GET' });
    expect(res.status).toBe(200);
    const jwks = res.json as PublishedJwks;
    expect(jwks.keys).toHaveLength(1);
    const [key] = jwks.keys;
    expect(key).toMatchObject({ kty: 'RSA', use: 'sig', kid: openId.issuer.currentKey.kid, endorsements: ['msteams'] });
    expect(key?.n).toBeTypeOf('string');
    expect(key).not.toHaveProperty('d');
    expect(key).not.toHaveProperty('p');
  });

  it('mints Bot Framework shaped tokens that verify against the published JWKS', async () => {
    const token = await openId.issuer.mintChannelToken({ appId: APP_ID, serviceUrl: SERVICE_URL });
    const jwks = (await call(agent, openId.jwksUrl, { method: 'GET' })).json as PublishedJwks;
    expect(await check(token, jwks)).toBe('ok');

    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg: 'RS256', typ: 'JWT', kid: openId.issuer.currentKey.kid });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'https://api.botframework.com', aud: APP_ID, serviceurl: SERVICE_URL });
    expect((claims.exp ?? 0) - (claims.nbf ?? 0)).toBe(3600);
    // As observed from Teams (§1.2): no tid, no iat.
    expect(claims).not.toHaveProperty('tid');
    expect(claims).not.toHaveProperty('iat');
  });

  it('accepts the cty: JWT / x5t header variant (§1.5)', async () => {
    const kid = openId.issuer.currentKey.kid;
    const token = await openId.issuer.mintChannelToken({
      appId: APP_ID,
      serviceUrl: SERVICE_URL,
      extraHeader: { cty: 'JWT', x5t: kid },
    });
    expect(decodeProtectedHeader(token)).toMatchObject({ cty: 'JWT', x5t: kid, typ: 'JWT' });
    expect(await check(token, openId.issuer.jwks())).toBe('ok');
  });

  it('each option violates exactly one check', async () => {
    const issuer = openId.issuer;
    const rogue = await generateSigningKey();
    const unendorsed = await issuer.addKey({ endorsements: ['skype'] });
    const base = { appId: APP_ID, serviceUrl: SERVICE_URL };
    const cases: [string, Partial<MintChannelTokenOptions>, string][] = [
      [
        'wrong issuer',
        { issuer: 'https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/' },
        'ERR_JWT_CLAIM_VALIDATION_FAILED:iss',
      ],
      ['wrong audience', { audience: 'someone-else' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED:aud'],
      ['expired beyond skew', { expiresInSeconds: -600 }, 'ERR_JWT_EXPIRED:exp'],
      ['nbf in the future', { notBefore: nowSeconds() + 900 }, 'ERR_JWT_CLAIM_VALIDATION_FAILED:nbf'],
      ['signed by another key', { key: rogue, kid: issuer.currentKey.kid }, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['unknown kid', { kid: 'no-such-kid' }, 'ERR_JWKS_NO_MATCHING_KEY'],
      ['HS256', { alg: 'HS256' }, 'ERR_JOSE_ALG_NOT_ALLOWED'],
      ['PS256', { alg: 'PS256' }, 'ERR_JOSE_ALG_NOT_ALLOWED'],
      ['RS384', { alg: 'RS384' }, 'ERR_JOSE_ALG_NOT_ALLOWED'],
      ['alg none', { alg: 'none' }, 'ERR_JOSE_ALG_NOT_ALLOWED'],
      ['key without msteams endorsement', { key: unendorsed }, 'endorsement'],
      ['serviceurl mismatch', { serviceUrl: 'https://127.0.0.1:1/emea/' }, 'serviceurl'],
      ['no serviceurl claim', { claims: { serviceurl: undefined } }, 'serviceurl'],
    ];
    try {
      for (const [name, options, expected] of cases) {
        const token = await issuer.mintChannelToken({ ...base, ...options });
        expect(await check(token, issuer.jwks()), name).toBe(expected);
      }
      // Within the 5 minute skew still passes.
      expect(await check(await issuer.mintChannelToken({ ...base, expiresInSeconds: -60 }), issuer.jwks())).toBe('ok');
    } finally {
      issuer.removeKey(unendorsed.kid);
    }
  });

  it('PS256 / RS384 variants are real signatures by the same key (only the alg is wrong)', async () => {
    const issuer = openId.issuer;
    for (const alg of ['PS256', 'RS384'] as const) {
      const token = await issuer.mintChannelToken({ appId: APP_ID, serviceUrl: SERVICE_URL, alg });
      const { payload } = await jwtVerify(token, createLocalJWKSet(issuer.jwks()), { algorithms: [alg] });
      expect(payload.aud).toBe(APP_ID);
    }
  });
});
