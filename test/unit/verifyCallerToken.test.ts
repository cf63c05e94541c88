/**
 * Entra ID access tokens of flow callers (src/auth/verifyCallerToken.ts), with a local key pair and
 * a local JWKS served through the real key cache (its fetch is a function here: no network). Each
 * check is violated on its own; the tokens otherwise look like Entra's app-only access tokens (see
 * learn.microsoft.com/entra/identity-platform/access-token-claims-reference).
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOpenIdKeyCache } from '../../src/auth/openIdKeys';
import {
  callerMetadataUrl,
  createCallerTokenVerifier,
  entraIssuers,
  type CallerTokenVerifier,
} from '../../src/auth/verifyCallerToken';
import { AuthError, ConfigError } from '../../src/errors';

const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
const OTHER_TENANT = '0b1d2c3e-0000-4000-8000-0000000000ee';
const API_URI = 'api://teams-courier';
const API_CLIENT_ID = '00000000-0000-4000-8000-0000000000a9';
const CALLER_APP = '00000000-0000-4000-8000-0000000000c7';
const CALLER_OID = '6f2c1a4e-1b7d-4c38-9d5e-0000000000f1';
const AUTHORITY = 'https://login.microsoftonline.com';
const KID = 'entra-test-key';
const now = (): number => Math.floor(Date.now() / 1000);

interface Keys {
  privateKey: CryptoKey;
  publicJwk: JWK;
}
let rsa: Keys;
let otherRsa: Keys;
let ec: Keys;
let fetched: string[];

async function rsaPair(): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

beforeAll(async () => {
  rsa = await rsaPair();
  otherRsa = await rsaPair();
  const pair = await generateKeyPair('ES256', { extractable: true });
  ec = { privateKey: pair.privateKey, publicJwk: await exportJWK(pair.publicKey) };
});

/** A verifier on a JWKS like Entra's (kty, use, kid, x5t, n, e), with an extra EC key for the matrix. */
function verifierFor(authorityHost = AUTHORITY, fetchFails = false): CallerTokenVerifier {
  fetched = [];
  const metadataUrl = callerMetadataUrl(authorityHost, TENANT);
  const jwksUri = `${new URL(authorityHost).origin}/${TENANT}/discovery/v2.0/keys`;
  return createCallerTokenVerifier({
    tenantId: TENANT,
    audiences: [API_URI, API_CLIENT_ID],
    authorityHost,
    keys: createOpenIdKeyCache({
      metadataUrl,
      fetchJson: async (url) => {
        fetched.push(url);
        if (fetchFails) throw new Error('connect ECONNREFUSED');
        if (url === metadataUrl) return { issuer: `${authorityHost}/${TENANT}/v2.0`, jwks_uri: jwksUri };
        if (url === jwksUri) {
          return {
            keys: [
              { ...rsa.publicJwk, kid: KID, x5t: KID, use: 'sig' },
              { ...ec.publicJwk, kid: 'ec-key', use: 'sig' },
            ],
          };
        }
        throw new Error(`unexpected ${url}`);
      },
    }),
  });
}

/** An app-only v1 access token (Entra's default version), as a managed identity gets for `api://teams-courier`. */
function v1Claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const t = now();
  const claims: Record<string, unknown> = {
    aud: API_URI,
    iss: `https://sts.windows.net/${TENANT}/`,
    iat: t,
    nbf: t,
    exp: t + 3600,
    aio: 'opaque',
    appid: CALLER_APP,
    appidacr: '2',
    idp: `https://sts.windows.net/${TENANT}/`,
    idtyp: 'app',
    oid: CALLER_OID,
    rh: 'opaque',
    sub: CALLER_OID,
    tid: TENANT,
    uti: 'abc',
    ver: '1.0',
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete claims[name];
    else claims[name] = value;
  }
  return claims;
}

/** An app-only v2 access token (accessTokenAcceptedVersion 2): aud is the client id, azp the caller; no idtyp unless asked for. */
function v2Claims(overrides: Record<string, unknown> = {}): JWTPayload {
  return v1Claims({
    aud: API_CLIENT_ID,
    iss: `${AUTHORITY}/${TENANT}/v2.0`,
    appid: undefined,
    appidacr: undefined,
    idp: undefined,
    idtyp: undefined,
    azp: CALLER_APP,
    azpacr: '1',
    ver: '2.0',
    ...overrides,
  });
}

async function sign(
  claims: JWTPayload,
  options: { alg?: string; kid?: string | null; key?: CryptoKey | Uint8Array } = {},
): Promise<string> {
  const kid = options.kid === undefined ? KID : options.kid;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'RS256', typ: 'JWT', ...(kid === null ? {} : { kid }) })
    .sign(options.key ?? rsa.privateKey);
}

async function reasonFor(verifier: CallerTokenVerifier, authorization: string | undefined): Promise<AuthError> {
  const err = await verifier.verify(authorization).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return err as AuthError;
}

describe('createCallerTokenVerifier: accepted tokens', () => {
  it('accepts an app-only v1 token and returns oid, appid and tenant', async () => {
    const identity = await verifierFor().verify(`Bearer ${await sign(v1Claims())}`);
    expect(identity).toEqual({ objectId: CALLER_OID, appId: CALLER_APP, tenantId: TENANT });
    // One fetch of the tenant's v2 metadata and one of its keys.
    expect(fetched).toEqual([
      `${AUTHORITY}/${TENANT}/v2.0/.well-known/openid-configuration`,
      `${AUTHORITY}/${TENANT}/discovery/v2.0/keys`,
    ]);
  });

  it('accepts an app-only v2 token (aud = client id, azp, no idtyp) and takes appId from azp', async () => {
    expect(await verifierFor().verify(`Bearer ${await sign(v2Claims())}`)).toEqual({
      objectId: CALLER_OID,
      appId: CALLER_APP,
      tenantId: TENANT,
    });
  });

  it.each([
    ['a v1 token requested by client id (aud = client id)', () => v1Claims({ aud: API_CLIENT_ID })],
    ['a v1 token without idtyp (an optional claim)', () => v1Claims({ idtyp: undefined })],
    ['a v2 token with idtyp app', () => v2Claims({ idtyp: 'app' })],
    ['a token with app roles', () => v1Claims({ roles: ['Notify.Send'] })],
    ['a token without appid (appId is then undefined)', () => v1Claims({ appid: undefined })],
    ['a token expired 4 minutes ago (within the 5 minute skew)', () => v1Claims({ exp: now() - 240 })],
    ['a token valid from 4 minutes from now (within the skew)', () => v1Claims({ nbf: now() + 240 })],
    ['an upper-case oid (returned lower-case)', () => v1Claims({ oid: CALLER_OID.toUpperCase() })],
  ])('accepts %s', async (_label, claims) => {
    expect((await verifierFor().verify(`Bearer ${await sign(claims())}`)).objectId).toBe(CALLER_OID);
  });

  it('accepts the scheme in any case ("bearer"), as RFC 9110 says', async () => {
    expect((await verifierFor().verify(`bearer ${await sign(v1Claims())}`)).objectId).toBe(CALLER_OID);
  });
});

describe('createCallerTokenVerifier: rejected tokens', () => {
  it.each([
    ['no Authorization header', async () => undefined, 'AUTH_MISSING'],
    ['an empty header', async () => '  ', 'AUTH_MISSING'],
    ['a Basic header', async () => 'Basic dXNlcjpwYXNz', 'AUTH_MISSING'],
    ['"Bearer" alone', async () => 'Bearer', 'AUTH_MISSING'],
    ['"Bearer a b"', async () => 'Bearer a b', 'AUTH_MISSING'],
    ['a token that is not a JWT', async () => 'Bearer not-a-jwt', 'AUTH_INVALID'],
  ])('rejects %s', async (_label, header, code) => {
    expect((await reasonFor(verifierFor(), await header())).code).toBe(code);
  });

  it.each([
    // Issuer: exactly the configured tenant's v1 or v2 issuer.
    [
      "another tenant's v1 issuer (tid ours)",
      () => sign(v1Claims({ iss: `https://sts.windows.net/${OTHER_TENANT}/` })),
      /"iss"/,
    ],
    ["another tenant's v2 issuer", () => sign(v2Claims({ iss: `${AUTHORITY}/${OTHER_TENANT}/v2.0` })), /"iss"/],
    ['the v2 issuer with a trailing slash', () => sign(v2Claims({ iss: `${AUTHORITY}/${TENANT}/v2.0/` })), /"iss"/],
    [
      "the v1 form on the authority host (not the public cloud's v1 issuer)",
      () => sign(v1Claims({ iss: `${AUTHORITY}/${TENANT}/` })),
      /"iss"/,
    ],
    [
      'the US Government v1 issuer in the public cloud',
      () => sign(v1Claims({ iss: `https://login.microsoftonline.us/${TENANT}/` })),
      /"iss"/,
    ],
    ['the multi-tenant template issuer', () => sign(v2Claims({ iss: `${AUTHORITY}/{tenantid}/v2.0` })), /"iss"/],
    ['the Bot Framework issuer', () => sign(v1Claims({ iss: 'https://api.botframework.com' })), /"iss"/],
    // Tenant, audience, version.
    ['a tid that is not the configured tenant', () => sign(v1Claims({ tid: OTHER_TENANT })), /"tid"/],
    ['no tid', () => sign(v1Claims({ tid: undefined })), /"tid"/],
    ['an audience that is not configured', () => sign(v1Claims({ aud: 'api://someone-else' })), /"aud"/],
    ['the Bot Framework audience', () => sign(v1Claims({ aud: 'https://api.botframework.com' })), /"aud"/],
    ['a v1 issuer with ver 2.0', () => sign(v1Claims({ ver: '2.0' })), /"ver"/],
    ['a v2 issuer with ver 1.0', () => sign(v2Claims({ ver: '1.0' })), /"ver"/],
    ['no ver', () => sign(v1Claims({ ver: undefined })), /"ver"/],
    // Lifetime.
    ['expired beyond the skew', () => sign(v1Claims({ exp: now() - 600 })), /expired/],
    ['not valid yet beyond the skew', () => sign(v1Claims({ nbf: now() + 900 })), /"nbf"/],
    ['no exp', () => sign(v1Claims({ exp: undefined })), /"exp"/],
    ['no nbf', () => sign(v1Claims({ nbf: undefined })), /"nbf"/],
    ['an nbf that is not a number', () => sign(v1Claims({ nbf: String(now()) })), /"nbf"/],
    // Subject: an object id, app-only.
    ['no oid', () => sign(v1Claims({ oid: undefined })), /"oid"/],
    ['an oid that is not a GUID', () => sign(v1Claims({ oid: 'not-a-guid' })), /"oid"/],
    ['a delegated (user) token with scp', () => sign(v1Claims({ scp: 'Notify.Send', idtyp: undefined })), /delegated/],
    [
      'a delegated token with scp and roles',
      () => sign(v2Claims({ scp: 'user_impersonation', roles: ['Notify.Send'] })),
      /delegated/,
    ],
    ['idtyp user', () => sign(v1Claims({ idtyp: 'user' })), /"idtyp"/],
    ['an appid that is not a string', () => sign(v1Claims({ appid: 42 })), /"appid"/],
    // Signature and algorithm: RS256 with a key from the tenant's JWKS, nothing else.
    ['RS384', async () => sign(v1Claims(), { alg: 'RS384', key: await importFor(rsa, 'RS384') }), /algorithm/],
    ['RS512', async () => sign(v1Claims(), { alg: 'RS512', key: await importFor(rsa, 'RS512') }), /algorithm/],
    ['PS256', async () => sign(v1Claims(), { alg: 'PS256', key: await importFor(rsa, 'PS256') }), /algorithm/],
    [
      "ES256 with the JWKS's EC key",
      () => sign(v1Claims(), { alg: 'ES256', kid: 'ec-key', key: ec.privateKey }),
      /algorithm/,
    ],
    ["RS256 naming the EC key's kid", () => sign(v1Claims(), { kid: 'ec-key' }), /not an RSA key/],
    [
      'HS256 keyed with the RSA public key (algorithm confusion)',
      () => sign(v1Claims(), { alg: 'HS256', key: publicPem(rsa) }),
      /algorithm/,
    ],
    ['alg none', async () => unsigned(v1Claims()), /algorithm|malformed/],
    ['no kid', () => sign(v1Claims(), { kid: null }), /kid/],
    ['an unknown kid', () => sign(v1Claims(), { kid: 'no-such-kid' }), /unknown key id/],
    [
      'a signature by another key under the published kid',
      () => sign(v1Claims(), { key: otherRsa.privateKey }),
      /signature/,
    ],
  ])('rejects %s (401)', async (_label, makeToken, reason) => {
    const token = await makeToken();
    const err = await reasonFor(verifierFor(), `Bearer ${token}`);
    expect(err).toMatchObject({ code: 'AUTH_INVALID', status: 401 });
    expect(err.message).toMatch(reason);
    // The reason is logged: it must never carry the token or its parts.
    for (const part of token.split('.')) if (part.length > 8) expect(err.message).not.toContain(part);
  });

  it('reports unreachable keys as AUTH_METADATA_UNAVAILABLE (503 upstream), not as a bad token', async () => {
    const err = await verifierFor(AUTHORITY, true)
      .verify(`Bearer ${await sign(v1Claims())}`)
      .catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: 'AUTH_METADATA_UNAVAILABLE' });
  });
});

describe('issuers per cloud', () => {
  it.each([
    [
      'https://login.microsoftonline.com',
      `https://login.microsoftonline.com/${TENANT}/v2.0`,
      [`https://sts.windows.net/${TENANT}/`],
    ],
    [
      'https://login.microsoftonline.com/',
      `https://login.microsoftonline.com/${TENANT}/v2.0`,
      [`https://sts.windows.net/${TENANT}/`],
    ],
    [
      'https://login.windows.net',
      `https://login.microsoftonline.com/${TENANT}/v2.0`,
      [`https://sts.windows.net/${TENANT}/`],
    ],
    [
      'https://login.microsoftonline.us',
      `https://login.microsoftonline.us/${TENANT}/v2.0`,
      [`https://login.microsoftonline.us/${TENANT}/`, `https://sts.windows.net/${TENANT}/`],
    ],
    [
      'https://login.partner.microsoftonline.cn',
      `https://login.partner.microsoftonline.cn/${TENANT}/v2.0`,
      [`https://sts.chinacloudapi.cn/${TENANT}/`],
    ],
    ['https://127.0.0.1:4443', `https://127.0.0.1:4443/${TENANT}/v2.0`, [`https://sts.windows.net/${TENANT}/`]],
  ])('%s', (authorityHost, v2, v1) => {
    expect(entraIssuers(authorityHost, TENANT.toUpperCase())).toEqual({ v2, v1 });
  });

  it("names a known cloud's own issuers, not the authority URL's origin, even when that URL carries a port", () => {
    // Entra's issuers never carry a port; the issuer follows the cloud the host belongs to.
    for (const host of ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net']) {
      expect(entraIssuers(`https://${host}:8443`, TENANT), host).toEqual({
        v2: `https://login.microsoftonline.com/${TENANT}/v2.0`,
        v1: [`https://sts.windows.net/${TENANT}/`],
      });
    }
    expect(entraIssuers('https://login.microsoftonline.us:8443', TENANT).v2).toBe(
      `https://login.microsoftonline.us/${TENANT}/v2.0`,
    );
    // A host that is no Entra cloud's keeps its origin, port included.
    expect(entraIssuers('https://127.0.0.1:8443', TENANT).v2).toBe(`https://127.0.0.1:8443/${TENANT}/v2.0`);
  });

  it('accepts both v1 issuer spellings in the US Government cloud, and its v2 issuer', async () => {
    const gov = 'https://login.microsoftonline.us';
    for (const iss of [`${gov}/${TENANT}/`, `https://sts.windows.net/${TENANT}/`]) {
      expect((await verifierFor(gov).verify(`Bearer ${await sign(v1Claims({ iss, idp: iss }))}`)).objectId).toBe(
        CALLER_OID,
      );
    }
    expect(
      (await verifierFor(gov).verify(`Bearer ${await sign(v2Claims({ iss: `${gov}/${TENANT}/v2.0` }))}`)).objectId,
    ).toBe(CALLER_OID);
    expect(fetched[0]).toBe(`${gov}/${TENANT}/v2.0/.well-known/openid-configuration`);
    // ...and not the public cloud's v2 issuer.
    expect((await reasonFor(verifierFor(gov), `Bearer ${await sign(v2Claims())}`)).message).toMatch(/"iss"/);
  });

  it('refuses a configuration it cannot enforce', () => {
    const keys = createOpenIdKeyCache({ metadataUrl: 'https://x.example/m', fetchJson: async () => ({}) });
    expect(() =>
      createCallerTokenVerifier({
        tenantId: 'contoso.onmicrosoft.com',
        audiences: [API_URI],
        authorityHost: AUTHORITY,
        keys,
      }),
    ).toThrow(ConfigError);
    expect(() =>
      createCallerTokenVerifier({ tenantId: TENANT, audiences: [' '], authorityHost: AUTHORITY, keys }),
    ).toThrow(ConfigError);
    expect(() =>
      createCallerTokenVerifier({
        tenantId: TENANT,
        audiences: [API_URI],
        authorityHost: 'http://login.microsoftonline.com',
        keys,
      }),
    ).toThrow(ConfigError);
    expect(() =>
      createCallerTokenVerifier({
        tenantId: TENANT,
        audiences: [API_URI],
        authorityHost: `${AUTHORITY}/${TENANT}`,
        keys,
      }),
    ).toThrow(ConfigError);
  });
});

async function importFor(keys: Keys, alg: string): Promise<CryptoKey> {
  const { importJWK } = await import('jose');
  const jwk = await exportJWK(keys.privateKey);
  return (await importJWK({ ...jwk, alg: undefined }, alg)) as CryptoKey;
}

function publicPem(keys: Keys): Uint8Array {
  const pem = createPublicKey({ key: keys.publicJwk as JsonWebKey, format: 'jwk' }).export({
    type: 'spki',
    format: 'pem',
  });
  return new Uint8Array(Buffer.from(pem));
}

function unsigned(claims: JWTPayload): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT', kid: KID })}.${encode(claims)}.`;
}
