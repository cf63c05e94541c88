/**
 * End to end: a flow caller gets a real access token for the API through @azure/identity against
 * the local Entra stub (client credentials, and the App Service managed-identity endpoint), and the
 * caller verifier checks it with keys fetched over HTTPS from the stub's v2 OpenID metadata, as it
 * would against login.microsoftonline.com.
 */
import { ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';
import { createOpenIdKeyCache, fetchJsonDocument } from '../../src/auth/openIdKeys';
import {
  callerMetadataUrl,
  createCallerTokenVerifier,
  type CallerTokenVerifier,
} from '../../src/auth/verifyCallerToken';

const TENANT = '00000000-0000-4000-8000-00000000e0de';
const API_URI = 'api://teams-courier';
const API_CLIENT_ID = '00000000-0000-4000-8000-0000000000a9';
const API_V2_URI = 'api://teams-courier-v2';
const API_V2_CLIENT_ID = '00000000-0000-4000-8000-0000000000aa';
const FLOW_APP = '00000000-0000-4000-8000-0000000000f1';
const FLOW_APP_OID = '6f2c1a4e-1b7d-4c38-9d5e-0000000000f1';
const MI_CLIENT_ID = '00000000-0000-4000-8000-0000000000d2';
const SECRET = 'flow-secret';

let entra: EntraServer;
let verifier: CallerTokenVerifier;
const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

beforeAll(async () => {
  entra = await startEntraServer({
    apps: [
      { clientId: FLOW_APP, tenantId: TENANT, clientSecret: SECRET, objectId: FLOW_APP_OID },
      { clientId: MI_CLIENT_ID, tenantId: TENANT, managedIdentity: true },
    ],
    apis: [
      { identifierUri: API_URI, clientId: API_CLIENT_ID, appRoles: { [FLOW_APP]: ['Notify.Send'] } },
      { identifierUri: API_V2_URI, clientId: API_V2_CLIENT_ID, tokenVersion: 2 },
    ],
  });
  verifier = createCallerTokenVerifier({
    tenantId: TENANT,
    audiences: [API_URI, API_CLIENT_ID, API_V2_CLIENT_ID],
    authorityHost: entra.authorityHost,
    keys: createOpenIdKeyCache({
      metadataUrl: callerMetadataUrl(entra.authorityHost, TENANT),
      fetchJson: fetchJsonDocument,
    }),
  });
  process.env.IDENTITY_ENDPOINT = entra.msiEndpoint;
  process.env.IDENTITY_HEADER = entra.msiHeader;
});
afterAll(async () => {
  if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
  else process.env.IDENTITY_ENDPOINT = saved.endpoint;
  if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
  else process.env.IDENTITY_HEADER = saved.header;
  await entra?.close();
});

const secretCredential = (): ClientSecretCredential =>
  new ClientSecretCredential(TENANT, FLOW_APP, SECRET, {
    authorityHost: entra.authorityHost,
    disableInstanceDiscovery: true,
  });

describe('caller tokens from @azure/identity against the Entra stub', () => {
  it('ClientSecretCredential, scope api://teams-courier/.default: a v1 app-only token the verifier accepts', async () => {
    const { token } = await secretCredential().getToken(`${API_URI}/.default`);
    expect(decodeJwt(token)).toMatchObject({
      aud: API_URI,
      iss: `https://sts.windows.net/${TENANT}/`,
      appid: FLOW_APP,
      oid: FLOW_APP_OID,
      idtyp: 'app',
      roles: ['Notify.Send'],
      ver: '1.0',
    });
    expect(await verifier.verify(`Bearer ${token}`)).toEqual({
      objectId: FLOW_APP_OID,
      appId: FLOW_APP,
      tenantId: TENANT,
    });
    // The keys came from the tenant's v2 metadata on the stub, over HTTPS.
    expect(entra.requests.filter((r) => r.kind === 'keys').map((r) => r.path)).toEqual([
      `/${TENANT}/discovery/v2.0/keys`,
    ]);
  });

  it('an API that accepts v2 tokens: aud is its client id, iss the v2 issuer, azp the caller', async () => {
    const { token } = await secretCredential().getToken(`${API_V2_URI}/.default`);
    expect(decodeJwt(token)).toMatchObject({
      aud: API_V2_CLIENT_ID,
      iss: `${entra.authorityHost}/${TENANT}/v2.0`,
      azp: FLOW_APP,
      oid: FLOW_APP_OID,
      ver: '2.0',
    });
    expect(await verifier.verify(`Bearer ${token}`)).toEqual({
      objectId: FLOW_APP_OID,
      appId: FLOW_APP,
      tenantId: TENANT,
    });
  });

  it("ManagedIdentityCredential (a Logic App's identity): the same oid on every token", async () => {
    const credential = new ManagedIdentityCredential({ clientId: MI_CLIENT_ID });
    const { token } = await credential.getToken(`${API_URI}/.default`);
    const identity = await verifier.verify(`Bearer ${token}`);
    expect(identity).toEqual({
      objectId: entra.objectIdOf(MI_CLIENT_ID, TENANT),
      appId: MI_CLIENT_ID,
      tenantId: TENANT,
    });
    const again = await entra.issueToken({ clientId: MI_CLIENT_ID, tenantId: TENANT, resource: API_URI });
    expect((await verifier.verify(`Bearer ${again}`)).objectId).toBe(identity.objectId);
  });

  it("refuses the same caller's token for another resource (the Bot Framework)", async () => {
    const { token } = await secretCredential().getToken('https://api.botframework.com/.default');
    await expect(verifier.verify(`Bearer ${token}`)).rejects.toMatchObject({
      code: 'AUTH_INVALID',
      message: expect.stringMatching(/"aud"/),
    });
  });
});
