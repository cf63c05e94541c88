/**
 * Proactive installation end to end (docs/graph-install.md): the compiled app (`node
 * dist/host/main.js`, what `npm start` runs) with TEAMS_APP_CATALOG_ID, against Azurite and the stub
 * world with Microsoft Graph. A job through POST /api/notify to a user who never installed the app:
 * Graph installs it (a Graph token from the user's tenant, the permission checked), Teams tells the
 * app (a signed installationUpdate to /api/messages), the sender creates the chat and sends, and
 * GET /api/notify/{id} says `installed: new`. A broadcast counts `installedByUs`; a tenant without
 * admin consent fails with the reason.
 */
import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteInstance } from '../../host/azurite';
import { GRAPH_INSTALL_PERMISSION, type StubWorld } from '../../host/emulator';
import { createConversationStore } from '../../src/store/conversationStore';
import { startAppWorld, type AppWorld } from './appWorld';

const APP_ID = '00000000-0000-4000-8000-0000000e2ea1';
const TENANT = '00000000-0000-4000-8000-0000000b07e0';
const SECRET = 'graph-install-e2e-secret';
const user = (n: number) => `40000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const U = { newcomer: user(1), bc1: user(2), bc2: user(3), noConsent: user(4) };

let azurite: AzuriteInstance;
let world: StubWorld;
let e2e: AppWorld;

beforeAll(async () => {
  e2e = await startAppWorld({
    name: 'graph',
    world: (appUrl) => ({
      bot: { appId: APP_ID, tenantId: TENANT, secret: SECRET },
      graph: {
        users: [
          { aadObjectId: U.newcomer, name: 'Nia Newcomer' },
          { aadObjectId: U.bc1 },
          { aadObjectId: U.bc2 },
          { aadObjectId: U.noConsent, scenario: 'consentMissing' },
        ],
        // Teams tells the app about each installation, as it does after a Graph install.
        appBaseUrl: appUrl,
      },
    }),
  });
  ({ azurite, world } = e2e);
  expect(e2e.env).toMatchObject({
    TEAMS_APP_CATALOG_ID: world.graph!.catalogId,
    GRAPH_BASE_URL: world.graph!.server.baseUrl,
  });
}, 180_000);

afterAll(() => e2e?.close(), 60_000);

const http = (method: 'GET' | 'POST', route: string, body?: unknown) => e2e.api(method, route, body);
const statusOf = (id: string) => e2e.statusOf(id);

const installs = (userId: string) =>
  world.graph!.server.requests.filter((r) => r.userId === userId && r.operation === 'install');

describe('proactive installation through the running app', () => {
  it('a job to a user who never installed the app: installed, Teams tells the app, delivered, recorded', async () => {
    const graph = world.graph!;
    const accepted = await http('POST', 'notify', {
      id: 'e2e-welcome',
      to: { aadObjectId: U.newcomer, tenantId: TENANT },
      text: 'Welcome to the team',
    });
    expect(accepted.status).toBe(202);
    const done = await statusOf('e2e-welcome');
    const conversationId = world.connector.personalConversationId(APP_ID, TENANT, graph.teamsUserId(U.newcomer));
    expect(done).toMatchObject({ status: 'sent', installed: 'new', conversationId, attempts: 1 });

    const [install] = installs(U.newcomer);
    expect(installs(U.newcomer)).toHaveLength(1);
    expect(install).toMatchObject({ status: 201 });
    expect(install!.claims).toMatchObject({ aud: 'https://graph.microsoft.com', appid: APP_ID, tid: TENANT });
    expect(install!.claims?.roles).toContain(GRAPH_INSTALL_PERMISSION);
    expect(graph.server.installations(U.newcomer)).toHaveLength(1);

    const sent = world.connector.delivered.filter((d) => d.conversationId === conversationId);
    expect(sent.map((d) => d.activity?.text)).toEqual(['Welcome to the team']);
    // The Bot Connector only ever saw the bot's tokens.
    for (const r of world.connector.requests) expect(r.tokenClaims?.aud).toBe('https://api.botframework.com');

    // Teams' installationUpdate reached the app, which accepted it (signed, verified).
    await graph.settled();
    expect(graph.notifications).toContainEqual({ userId: U.newcomer, conversationId, status: 200 });
    const store = createConversationStore({
      conversations: TableClient.fromConnectionString(azurite.connectionString, 'conversations', {
        allowInsecureConnection: true,
      }),
      userChats: TableClient.fromConnectionString(azurite.connectionString, 'userchats', {
        allowInsecureConnection: true,
      }),
    });
    expect(await store.findPersonalChat(U.newcomer, TENANT)).toMatchObject({
      kind: 'found',
      reference: { conversationId, installed: true },
    });
  });

  it('a broadcast to users without chats counts the installations it made', async () => {
    expect(
      (
        await http('POST', 'notify', {
          id: 'e2e-town-hall',
          to: { aadObjectIds: [U.bc1, U.bc2], tenantId: TENANT },
          text: 'Town hall at 10',
        })
      ).status,
    ).toBe(202);
    const done = await statusOf('e2e-town-hall');
    expect(done).toMatchObject({ status: 'sent', total: 2, sent: 2, failed: 0, installedByUs: 2 });
    expect(installs(U.bc1)).toHaveLength(1);
    expect(installs(U.bc2)).toHaveLength(1);
  });

  it('a tenant whose admin never consented: failed with the reason, nothing sent', async () => {
    expect(
      (
        await http('POST', 'notify', {
          id: 'e2e-no-consent',
          to: { aadObjectId: U.noConsent, tenantId: TENANT },
          text: 'hi',
        })
      ).status,
    ).toBe(202);
    const done = await statusOf('e2e-no-consent');
    expect(done).toMatchObject({ status: 'failed', error: { code: 'GraphConsentMissing' } });
    expect((done.error as { reason: string }).reason).toContain(
      'admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All',
    );
    expect(done.installed).toBeUndefined();
    expect(world.connector.delivered.filter((d) => d.activity?.text === 'hi')).toEqual([]);
  });
});
