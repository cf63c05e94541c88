import { ClientCertificateCredential, ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureLocalCertificate } from '../../host/emulator/certificate';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';
import { APP_ID, call, keepAliveAgent } from './helpers';

const SINGLE_TENANT = '00000000-0000-4000-8000-00000000e0de';
const MULTI_APP = '00000000-0000-4000-8000-0000000000c1';
const CERT_APP = '00000000-0000-4000-8000-0000000000c2';
const SECRET = 'emulator-secret';
const SCOPE = 'https://api.botframework.com/.default';
const { cert: certPem, key: keyPem } = ensureLocalCertificate();

describe('Entra stub with real @azure/identity credentials', () => {
  let entra: EntraServer;
  const agent = keepAliveAgent();

  beforeAll(async () => {
    entra = await startEntraServer({
      apps: [
        { clientId: APP_ID, tenantId: SINGLE_TENANT, clientSecret: SECRET },
        { clientId: MULTI_APP, tenantId: SINGLE_TENANT, clientSecret: SECRET, extraTenants: ['botframework.com'] },
        { clientId: CERT_APP, tenantId: SINGLE_TENANT, certificatePem: certPem },
      ],
    });
  });
  afterAll(async () => {
    await entra.close();
    await agent.close();
  });
  beforeEach(() => {
    entra.clearFailures();
    entra.resetCounters();
  });

  const secretCredential = (tenant = SINGLE_TENANT, clientId = APP_ID, secret = SECRET): ClientSecretCredential =>
    new ClientSecretCredential(tenant, clientId, secret, {
      authorityHost: entra.authorityHost,
      disableInstanceDiscovery: true,
    });

  it('ClientSecretCredential gets a Bot Framework token; MSAL hits the metadata and token URLs', async () => {
    const credential = secretCredential();
    const token = await credential.getToken(SCOPE);
    expect(token.token).toBeTruthy();
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 50 * 60_000);

    const claims = await entra.verifyAccessToken(token.token);
    expect(claims).toMatchObject({
      aud: 'https://api.botframework.com',
      appid: APP_ID,
      tid: SINGLE_TENANT,
      iss: `https://sts.windows.net/${SINGLE_TENANT}/`,
      ver: '1.0',
    });
    expect(entra.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /${SINGLE_TENANT}/v2.0/.well-known/openid-configuration`,
      `POST /${SINGLE_TENANT}/oauth2/v2.0/token`,
    ]);
    expect(entra.requests[1]).toMatchObject({
      grantType: 'client_credentials',
      scope: SCOPE,
      clientId: APP_ID,
      credential: 'secret',
      status: 200,
    });

    // MSAL caches the token: a second getToken is not a network call.
    await credential.getToken(SCOPE);
    expect(entra.tokenRequests(SINGLE_TENANT)).toBe(1);
    expect(entra.tokensIssued()).toBe(1);
  });

  it('MultiTenant-style authority botframework.com works for an app registered there', async () => {
    const token = await secretCredential('botframework.com', MULTI_APP).getToken(SCOPE);
    const claims = await entra.verifyAccessToken(token.token);
    expect(claims.tid).toBe('d6d49420-f39b-4df7-a1dc-d59a935871db');
    expect(entra.tokenRequests('botframework.com')).toBe(1);
  });

  it('a SingleTenant app asking botframework.com gets AADSTS700016 (§2.3)', async () => {
    await expect(secretCredential('botframework.com').getToken(SCOPE)).rejects.toThrow(/AADSTS700016/);
    expect(entra.requests.find((r) => r.kind === 'token')).toMatchObject({ status: 400, error: 'unauthorized_client' });
  });

  it('a wrong secret gets 401 invalid_client AADSTS7000215', async () => {
    await expect(secretCredential(SINGLE_TENANT, APP_ID, 'wrong').getToken(SCOPE)).rejects.toThrow(/AADSTS7000215/);
    expect(entra.tokensIssued()).toBe(0);
  });

  it('injected failures: 401 then success; 500 is reported per request', async () => {
    entra.failNext({ status: 401 });
    await expect(secretCredential().getToken(SCOPE)).rejects.toThrow(/invalid_client/);
    expect(entra.requests.filter((r) => r.kind === 'token').map((r) => r.status)).toEqual([401]);

    entra.failNext({ status: 500, times: Infinity, tenant: SINGLE_TENANT });
    const noRetries = new ClientSecretCredential(SINGLE_TENANT, APP_ID, SECRET, {
      authorityHost: entra.authorityHost,
      disableInstanceDiscovery: true,
      retryOptions: { maxRetries: 0 },
    });
    await expect(noRetries.getToken(SCOPE)).rejects.toThrow();
    // With the pipeline's retries off, one 500 reaches the credential as a failure.
    expect(entra.requests.filter((r) => r.kind === 'token').map((r) => r.status)).toEqual([401, 500]);
    expect(entra.tokenRequests(SINGLE_TENANT)).toBe(2);

    entra.clearFailures();
    expect((await secretCredential().getToken(SCOPE)).token).toBeTruthy();
  });

  it('rejects an unknown scope with invalid_scope', async () => {
    const res = await call(agent, `${entra.origin}/${SINGLE_TENANT}/oauth2/v2.0/token`, {
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: APP_ID,
        client_secret: SECRET,
        scope: 'https://graph.microsoft.com',
      }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: 'invalid_scope' });
  });

  it('ClientCertificateCredential: the client assertion is verified against the registered certificate', async () => {
    const credential = new ClientCertificateCredential(
      SINGLE_TENANT,
      CERT_APP,
      { certificate: `${certPem}\n${keyPem}` },
      { authorityHost: entra.authorityHost, disableInstanceDiscovery: true },
    );
    const token = await credential.getToken(SCOPE);
    expect((await entra.verifyAccessToken(token.token)).appidacr).toBe('2');
    expect(entra.requests.find((r) => r.kind === 'token')).toMatchObject({ credential: 'assertion', status: 200 });
  });
});

describe('Entra stub: app-only tokens for a registered API (what flows present to /api/notify)', () => {
  const TENANT = '00000000-0000-4000-8000-00000000e0df';
  const CALLER = '00000000-0000-4000-8000-0000000000c3';
  const CALLER_OID = '6f2c1a4e-1b7d-4c38-9d5e-0000000000c3';
  const API_V1 = {
    identifierUri: 'api://teams-courier',
    clientId: '00000000-0000-4000-8000-0000000000a1',
    appRoles: { [CALLER]: ['Notify.Send'] },
  };
  const API_V2 = {
    identifierUri: 'api://teams-courier-v2',
    clientId: '00000000-0000-4000-8000-0000000000a2',
    tokenVersion: 2 as const,
  };
  let entra: EntraServer;

  beforeAll(async () => {
    entra = await startEntraServer({
      apps: [{ clientId: CALLER, tenantId: TENANT, clientSecret: SECRET, objectId: CALLER_OID }],
      apis: [API_V1, API_V2],
    });
  });
  afterAll(async () => entra.close());

  const credential = (): ClientSecretCredential =>
    new ClientSecretCredential(TENANT, CALLER, SECRET, {
      authorityHost: entra.authorityHost,
      disableInstanceDiscovery: true,
    });

  it("v1 (Entra's default): aud is the resource as requested, sts.windows.net issuer, appid, oid = sub, idtyp app, roles, no scp", async () => {
    const claims = await entra.verifyAccessToken((await credential().getToken('api://teams-courier/.default')).token);
    expect(claims).toMatchObject({
      aud: 'api://teams-courier',
      iss: `https://sts.windows.net/${TENANT}/`,
      appid: CALLER,
      appidacr: '1',
      oid: CALLER_OID,
      sub: CALLER_OID,
      tid: TENANT,
      idtyp: 'app',
      roles: ['Notify.Send'],
      ver: '1.0',
    });
    expect(claims).not.toHaveProperty('scp');
    expect(claims).not.toHaveProperty('azp');
    // Requested by client id, a v1 token names the client id.
    expect(
      (await entra.verifyAccessToken((await credential().getToken(`${API_V1.clientId}/.default`)).token)).aud,
    ).toBe(API_V1.clientId);
  });

  it("v2 (accessTokenAcceptedVersion 2): aud is the API client id, the authority's v2 issuer, azp", async () => {
    const claims = await entra.verifyAccessToken(
      (await credential().getToken('api://teams-courier-v2/.default')).token,
    );
    expect(claims).toMatchObject({
      aud: API_V2.clientId,
      iss: `${entra.authorityHost}/${TENANT}/v2.0`,
      azp: CALLER,
      azpacr: '1',
      oid: CALLER_OID,
      sub: CALLER_OID,
      tid: TENANT,
      ver: '2.0',
    });
    expect(claims).not.toHaveProperty('appid');
    expect(claims).not.toHaveProperty('roles');
  });

  it("the oid is the app's service principal: stable across tokens, and derived when not configured", async () => {
    const first = await entra.verifyAccessToken(
      await entra.issueToken({ clientId: CALLER, tenantId: TENANT, resource: 'api://teams-courier' }),
    );
    expect(first.oid).toBe(CALLER_OID);
    const other = '00000000-0000-4000-8000-0000000000c4';
    const a = await entra.verifyAccessToken(
      await entra.issueToken({ clientId: other, tenantId: TENANT, resource: 'api://teams-courier' }),
    );
    const b = await entra.verifyAccessToken(
      await entra.issueToken({ clientId: other, tenantId: TENANT, resource: 'api://teams-courier' }),
    );
    expect(a.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.oid).toBe(a.oid);
    expect(entra.objectIdOf(other, TENANT)).toBe(a.oid);
  });

  it('an unregistered API is invalid_scope', async () => {
    await expect(credential().getToken('api://not-registered/.default')).rejects.toThrow(/invalid_scope|AADSTS1002012/);
  });
});
