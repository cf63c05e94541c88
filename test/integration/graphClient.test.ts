/**
 * Proactive installation through Microsoft Graph, over HTTPS against the Graph stub, with real
 * @azure/identity credentials against the Entra stub (authorityHost + disableInstanceDiscovery).
 * Graph is registered in the Entra stub as an API with app roles, so a token carries `roles`
 * exactly when "admin consent" was given, and the Graph stub checks them (checkRoles).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';
import { startGraphServer, type GraphInstallEvent, type GraphServer } from '../../host/emulator/graphServer';
import { waitFor } from '../../host/emulator/waitFor';
import { createGraphClient, type GraphClient } from '../../src/graph/graphClient';
import { graphScopeFor } from '../../src/graph/graphHosts';
import { createGraphTokenProvider, type GraphIdentity, type GraphTokenProvider } from '../../src/graph/graphToken';
import { installAndGetChat } from '../../src/graph/installForUser';

const HOME = '00000000-0000-4000-8000-00000000f0de';
const CUSTOMER = '11111111-0000-4000-8000-0000000c0570';
const APP = '00000000-0000-4000-8000-0000000000f1';
const NO_ROLE_APP = '00000000-0000-4000-8000-0000000000f4';
const SINGLE_APP = '00000000-0000-4000-8000-0000000000f2';
const MI_APP = '00000000-0000-4000-8000-0000000000f3';
const SECRET = 'graph-client-test-secret';
const CATALOG = 'b1c5353a-7aca-41b3-830f-27d5218fe0e5';
const ROLE = 'TeamsAppInstallation.ReadWriteSelfForUser.All';
const user = (n: number) => `20000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const U = {
  fresh: user(1),
  already: user(2),
  consent: user(3),
  throttled: user(4),
  unknown: user(5),
  noApp: user(6),
  notManageable: user(7),
  home: user(8),
  noRole: user(9),
  refresh: user(10),
  flaky: user(11),
  mi: user(12),
};

let entra: EntraServer;
let graph: GraphServer;
const installs: GraphInstallEvent[] = [];
const open: GraphClient[] = [];
const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

function identity(appId: string, appType: GraphIdentity['appType'] = 'MultiTenant'): GraphIdentity {
  return {
    appId,
    appType,
    credential:
      appType === 'UserAssignedMSI'
        ? { kind: 'managedIdentity', clientId: appId }
        : { kind: 'secret', tenantId: appType === 'MultiTenant' ? 'botframework.com' : HOME, clientSecret: SECRET },
    authorityHost: entra.authorityHost,
    authorityOverridden: true,
    homeTenantId: HOME,
  };
}

function client(id: GraphIdentity): { graph: GraphClient; tokens: GraphTokenProvider } {
  const tokens = createGraphTokenProvider({ identity: id, scope: graphScopeFor('public') });
  const created = createGraphClient({ cloud: 'public', baseUrl: graph.baseUrl, tokens, timeoutMs: 5_000 });
  open.push(created);
  return { graph: created, tokens };
}

const requestsFor = (userId: string) => graph.requests.filter((r) => r.userId === userId);
const tokenRequests = (clientId: string, tenant: string) =>
  entra.requests.filter((r) => r.kind === 'token' && r.clientId === clientId && r.tenant === tenant);

beforeAll(async () => {
  entra = await startEntraServer({
    apps: [
      { clientId: APP, tenantId: HOME, clientSecret: SECRET, extraTenants: [CUSTOMER] },
      { clientId: NO_ROLE_APP, tenantId: HOME, clientSecret: SECRET, extraTenants: [CUSTOMER] },
      { clientId: SINGLE_APP, tenantId: HOME, clientSecret: SECRET },
      { clientId: MI_APP, tenantId: HOME, managedIdentity: true },
    ],
    apis: [
      {
        identifierUri: 'https://graph.microsoft.com',
        clientId: '00000003-0000-0000-c000-000000000000',
        appRoles: { [APP]: [ROLE], [SINGLE_APP]: [ROLE], [MI_APP]: [ROLE] },
      },
    ],
  });
  process.env.IDENTITY_ENDPOINT = entra.msiEndpoint;
  process.env.IDENTITY_HEADER = entra.msiHeader;
  graph = await startGraphServer({
    apps: [{ catalogId: CATALOG, botAppId: APP, externalId: '9d7a2c55-0000-4000-8000-000000000001' }],
    users: [
      { id: U.fresh, tenantId: CUSTOMER },
      { id: U.already, tenantId: CUSTOMER, scenario: 'alreadyInstalled' },
      { id: U.consent, tenantId: CUSTOMER, scenario: 'consentMissing' },
      { id: U.throttled, tenantId: CUSTOMER, scenario: 'throttled' },
      { id: U.unknown, tenantId: CUSTOMER, scenario: 'unknownUser' },
      { id: U.noApp, tenantId: CUSTOMER, scenario: 'unknownApp' },
      { id: U.notManageable, tenantId: CUSTOMER, scenario: 'notManageable' },
      { id: U.home, tenantId: HOME },
      { id: U.noRole, tenantId: CUSTOMER },
      { id: U.refresh, tenantId: CUSTOMER },
      { id: U.flaky, tenantId: CUSTOMER },
      { id: U.mi, tenantId: HOME },
    ],
    verifyToken: (token) => entra.verifyAccessToken(token),
    checkRoles: true,
    onInstall: (event) => void installs.push(event),
  });
});

afterAll(async () => {
  for (const c of open) await c.close();
  for (const [name, value] of [
    ['IDENTITY_ENDPOINT', saved.endpoint],
    ['IDENTITY_HEADER', saved.header],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await graph?.close();
  await entra?.close();
});

beforeEach(() => {
  graph.reset();
  entra.resetCounters();
  installs.length = 0;
});

describe('a MultiTenant bot installs itself for a user of another tenant', () => {
  it("with a Graph token from the user's tenant: install (201), find the installation, get its chat", async () => {
    const { graph: g, tokens } = client(identity(APP));
    const result = await installAndGetChat(g, CUSTOMER, U.fresh, CATALOG);
    expect(result).toEqual({
      ok: true,
      value: {
        installed: 'new',
        installationId: Buffer.from(`${U.fresh}##${CATALOG}`).toString('base64'),
        chatId: `19:${U.fresh}_${APP}@unq.gbl.spaces`,
      },
    });

    const seen = requestsFor(U.fresh);
    expect(seen.map((r) => [r.operation, r.status])).toEqual([
      ['install', 201],
      ['list', 200],
      ['chat', 200],
    ]);
    for (const r of seen)
      expect(r.claims).toMatchObject({ aud: 'https://graph.microsoft.com', tid: CUSTOMER, appid: APP, roles: [ROLE] });
    expect(seen[0]!.body).toEqual({ 'teamsApp@odata.bind': `${graph.baseUrl}appCatalogs/teamsApps/${CATALOG}` });
    expect(seen[1]!.query).toEqual({ $expand: 'teamsApp', $filter: `teamsApp/id eq '${CATALOG}'` });

    // One token for the three calls, from the customer's own authority, for Graph.
    expect(tokenRequests(APP, CUSTOMER).map((r) => [r.scope, r.status])).toEqual([
      ['https://graph.microsoft.com/.default', 200],
    ]);
    expect(entra.requests.some((r) => r.kind === 'token' && r.tenant === 'botframework.com')).toBe(false);
    expect(JSON.stringify(result)).not.toContain(await tokens.getToken(CUSTOMER));

    await waitFor('the install notification', 2_000, () => installs.length === 1);
    expect(installs[0]).toMatchObject({ userId: U.fresh, tenantId: CUSTOMER, catalogId: CATALOG, botAppId: APP });
    expect(graph.installations(U.fresh)).toHaveLength(1);
  });

  it('"already installed" (409) is success, for a second install and for a user who had the app', async () => {
    const { graph: g } = client(identity(APP));
    expect(await g.installAppForUser(CUSTOMER, U.fresh, CATALOG)).toEqual({ ok: true, value: { installed: 'new' } });
    expect(await g.installAppForUser(CUSTOMER, U.fresh, CATALOG)).toEqual({
      ok: true,
      value: { installed: 'already' },
    });
    expect(await g.installAppForUser(CUSTOMER, U.already, CATALOG)).toEqual({
      ok: true,
      value: { installed: 'already' },
    });
    expect(requestsFor(U.already).map((r) => r.status)).toEqual([409]);
    expect(await g.findInstallation(CUSTOMER, U.already, CATALOG)).toEqual({ ok: true, value: undefined });
  });
});

describe('each Graph failure, with its reason', () => {
  it("403 without consent is permanent and says which permission, with Graph's code", async () => {
    const { graph: g } = client(identity(APP));
    const scenario = await g.installAppForUser(CUSTOMER, U.consent, CATALOG);
    expect(scenario).toMatchObject({
      ok: false,
      failure: { code: 'GraphConsentMissing', retryable: false, status: 403 },
    });

    // The real thing: a token without the app role, because no admin consented.
    const { graph: noRole } = client(identity(NO_ROLE_APP));
    const real = await noRole.installAppForUser(CUSTOMER, U.noRole, CATALOG);
    expect(real).toMatchObject({ ok: false, failure: { code: 'GraphConsentMissing', graphCode: 'Forbidden' } });
    if (real.ok) throw new Error('unreachable');
    expect(real.failure.reason).toContain('admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All');
    expect(real.failure.reason).toContain("Roles on the request ''");
    expect(requestsFor(U.noRole)[0]!.claims?.roles).toBeUndefined();
  });

  it('429 is retryable after Retry-After; the next try installs', async () => {
    const { graph: g } = client(identity(APP));
    expect(await g.installAppForUser(CUSTOMER, U.throttled, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphThrottled', retryable: true, retryAfterMs: 1000, graphCode: 'TooManyRequests' },
    });
    expect(await g.installAppForUser(CUSTOMER, U.throttled, CATALOG)).toEqual({
      ok: true,
      value: { installed: 'new' },
    });
  });

  it('404 names the unknown user or the unknown app', async () => {
    const { graph: g } = client(identity(APP));
    expect(await g.installAppForUser(CUSTOMER, U.unknown, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUserUnknown', retryable: false },
    });
    // A user of another directory is unknown to a token from this one.
    expect(await g.installAppForUser(CUSTOMER, U.home, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUserUnknown' },
    });
    expect(await g.installAppForUser(CUSTOMER, U.noApp, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphAppUnknown', retryable: false },
    });
    expect(await g.installAppForUser(CUSTOMER, U.fresh, 'c0ffee00-0000-4000-8000-000000000000')).toMatchObject({
      ok: false,
      failure: { code: 'GraphAppUnknown' },
    });
    expect(await g.getInstallationChat(CUSTOMER, U.fresh, 'bm90LWluc3RhbGxlZA==')).toMatchObject({
      ok: false,
      failure: { code: 'GraphNotFound' },
    });
  });

  it('403 for an app whose manifest does not name the bot is GraphAppNotManageable', async () => {
    const { graph: g } = client(identity(APP));
    expect(await g.installAppForUser(CUSTOMER, U.notManageable, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphAppNotManageable', retryable: false },
    });
  });

  it('a 401 gets a fresh token and one more try; a second 401 is permanent', async () => {
    const { graph: g } = client(identity(APP));
    graph.failNext({ status: 401, code: 'InvalidAuthenticationToken', userId: U.refresh });
    expect(await g.installAppForUser(CUSTOMER, U.refresh, CATALOG)).toEqual({ ok: true, value: { installed: 'new' } });
    expect(tokenRequests(APP, CUSTOMER)).toHaveLength(2);
    graph.failNext({ status: 401, code: 'InvalidAuthenticationToken', userId: U.refresh, times: 2 });
    expect(await g.findInstallation(CUSTOMER, U.refresh, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUnauthorized', retryable: false, graphCode: 'InvalidAuthenticationToken' },
    });
  });

  it('5xx and a lost connection are retryable', async () => {
    const { graph: g } = client(identity(APP));
    graph.failNext({ status: 503, code: 'ServiceUnavailable', retryAfterSeconds: 3, userId: U.flaky });
    expect(await g.installAppForUser(CUSTOMER, U.flaky, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUnavailable', retryable: true, retryAfterMs: 3000 },
    });
    graph.failNext({ status: 500, userId: U.flaky });
    expect(await g.installAppForUser(CUSTOMER, U.flaky, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUnavailable', retryable: true },
    });
    graph.failNext({ status: 0, drop: true, userId: U.flaky });
    expect(await g.installAppForUser(CUSTOMER, U.flaky, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphNetwork', retryable: true },
    });
  });
});

describe('tenants and tokens', () => {
  it('a SingleTenant bot acts in its own tenant, and is refused elsewhere before any token request', async () => {
    const { graph: g } = client(identity(SINGLE_APP, 'SingleTenant'));
    const refused = await g.installAppForUser(CUSTOMER, U.fresh, CATALOG);
    expect(refused).toMatchObject({ ok: false, failure: { code: 'GraphTenantNotAllowed', retryable: false } });
    expect(entra.requests.filter((r) => r.clientId === SINGLE_APP)).toEqual([]);
    expect(graph.requests).toEqual([]);

    expect(await g.installAppForUser(HOME, U.home, CATALOG)).toEqual({ ok: true, value: { installed: 'new' } });
    expect(requestsFor(U.home)[0]!.claims).toMatchObject({ tid: HOME, appid: SINGLE_APP });
  });

  it("a managed identity gets its Graph token from its own tenant's endpoint", async () => {
    const { graph: g } = client(identity(MI_APP, 'UserAssignedMSI'));
    expect(await g.installAppForUser(HOME, U.mi, CATALOG)).toEqual({ ok: true, value: { installed: 'new' } });
    // The managed-identity endpoint takes the resource (MSAL drops `/.default`).
    expect(entra.requests.filter((r) => r.kind === 'msi').map((r) => r.scope)).toEqual(['https://graph.microsoft.com']);
    expect(requestsFor(U.mi)[0]!.claims).toMatchObject({
      aud: 'https://graph.microsoft.com',
      tid: HOME,
      appid: MI_APP,
    });
    expect(await g.installAppForUser(CUSTOMER, U.fresh, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphTenantNotAllowed' },
    });
  });

  it('a Bot Connector token is never sent to Graph, and Graph refuses a token for another audience', async () => {
    const botToken = await entra.issueToken({
      clientId: APP,
      tenantId: CUSTOMER,
      resource: 'https://api.botframework.com',
    });
    const withBotToken = createGraphClient({
      cloud: 'public',
      baseUrl: graph.baseUrl,
      tokens: { getToken: async () => botToken, invalidate: () => undefined },
      timeoutMs: 5_000,
    });
    open.push(withBotToken);
    await expect(withBotToken.installAppForUser(CUSTOMER, U.fresh, CATALOG)).rejects.toMatchObject({
      code: 'GRAPH_TOKEN_REFUSED',
    });
    expect(graph.requests).toEqual([]);

    const armToken = await entra.issueToken({
      clientId: APP,
      tenantId: CUSTOMER,
      resource: 'https://management.azure.com',
    });
    const withArmToken = createGraphClient({
      cloud: 'public',
      baseUrl: graph.baseUrl,
      tokens: { getToken: async () => armToken, invalidate: () => undefined },
      timeoutMs: 5_000,
    });
    open.push(withArmToken);
    expect(await withArmToken.installAppForUser(CUSTOMER, U.fresh, CATALOG)).toMatchObject({
      ok: false,
      failure: { code: 'GraphUnauthorized' },
    });
    expect(graph.requests.map((r) => [r.status, r.errorCode])).toEqual([
      [401, 'InvalidAuthenticationToken'],
      [401, 'InvalidAuthenticationToken'],
    ]);
  });

  it('sends nothing, and asks for no token, for ids Graph would not take or a base that is not https', async () => {
    let asked = 0;
    const g = createGraphClient({
      cloud: 'public',
      baseUrl: graph.baseUrl,
      tokens: {
        getToken: async () => {
          asked += 1;
          return 'x';
        },
        invalidate: () => undefined,
      },
      timeoutMs: 5_000,
    });
    open.push(g);
    for (const result of [
      await g.installAppForUser(CUSTOMER, '..', CATALOG),
      await g.installAppForUser(CUSTOMER, 'someone@contoso.com', CATALOG),
      await g.installAppForUser('botframework.com', U.fresh, CATALOG),
      await g.installAppForUser(CUSTOMER, U.fresh, "x' or 1 eq 1"),
      await g.getInstallationChat(CUSTOMER, U.fresh, '..'),
    ])
      expect(result).toMatchObject({ ok: false, failure: { code: 'GraphInvalidId', retryable: false } });
    expect(asked).toBe(0);
    expect(graph.requests).toEqual([]);
    expect(() =>
      createGraphClient({
        cloud: 'public',
        baseUrl: graph.baseUrl.replace('https:', 'http:'),
        tokens: { getToken: async () => 'x', invalidate: () => undefined },
        timeoutMs: 5_000,
      }),
    ).toThrow(expect.objectContaining({ code: 'GRAPH_BASE_INVALID' }));
  });
});
