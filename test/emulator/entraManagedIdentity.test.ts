/**
 * App Service managed identity shape (IDENTITY_ENDPOINT + IDENTITY_HEADER). Own file: the variables
 * are process-wide and @azure/identity reads them when the credential is used.
 */
import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';
import { call, keepAliveAgent } from './helpers';

const MI_CLIENT_ID = '00000000-0000-4000-8000-0000000000d1';
const TENANT = '00000000-0000-4000-8000-00000000e0de';

describe('Entra stub: managed identity endpoint', () => {
  let entra: EntraServer;
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
  const agent = keepAliveAgent();

  beforeAll(async () => {
    entra = await startEntraServer({ apps: [{ clientId: MI_CLIENT_ID, tenantId: TENANT, managedIdentity: true }] });
    process.env.IDENTITY_ENDPOINT = entra.msiEndpoint;
    process.env.IDENTITY_HEADER = entra.msiHeader;
  });
  afterAll(async () => {
    if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
    else process.env.IDENTITY_ENDPOINT = saved.endpoint;
    if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
    else process.env.IDENTITY_HEADER = saved.header;
    await entra.close();
    await agent.close();
  });

  it('ManagedIdentityCredential({clientId}) gets a token for https://api.botframework.com', async () => {
    const credential = new ManagedIdentityCredential({ clientId: MI_CLIENT_ID });
    const token = await credential.getToken('https://api.botframework.com/.default');
    const claims = await entra.verifyAccessToken(token.token);
    expect(claims).toMatchObject({ appid: MI_CLIENT_ID, tid: TENANT, aud: 'https://api.botframework.com' });
    const msi = entra.requests.filter((r) => r.kind === 'msi');
    expect(msi).toHaveLength(1);
    expect(msi[0]).toMatchObject({
      method: 'GET',
      clientId: MI_CLIENT_ID,
      scope: 'https://api.botframework.com',
      status: 200,
    });
    expect(entra.tokenRequests(TENANT)).toBe(1);
  });

  it('rejects a missing X-IDENTITY-HEADER', async () => {
    const url = `${entra.msiEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent('https://api.botframework.com')}&client_id=${MI_CLIENT_ID}`;
    expect((await call(agent, url, { method: 'GET' })).status).toBe(401);
    expect((await call(agent, url, { method: 'GET', headers: { 'x-identity-header': entra.msiHeader } })).status).toBe(
      200,
    );
  });
});
