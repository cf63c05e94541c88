/**
 * Proactive installation through the sender (docs/graph-install.md): a job to a user with no stored
 * personal chat, with TEAMS_APP_CATALOG_ID set, installs the app for the user through Graph, then
 * creates the chat at the Connector and sends. Against Azurite, the Entra stub (real @azure/identity
 * Graph tokens from the user's tenant), the Graph stub (tokens verified, roles checked) and the
 * Connector stub, which refuses a user's chat until the app is installed for them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPH_INSTALL_PERMISSION, startStubGraph, type StubGraph, type StubGraphUser } from '../../host/emulator';
import type { StatsOutcome } from '../../src/core/stats';
import { toStatusView } from '../../src/flows/statusView';
import { createGraphClient, type GraphClient, type GraphTokenSource } from '../../src/graph/graphClient';
import { graphScopeFor } from '../../src/graph/graphHosts';
import { createGraphTokenProvider } from '../../src/graph/graphToken';
import type { JobResult, SenderDeps } from '../../src/outbound/processJob';
import { APP_ID, BOT_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();

const user = (n: number) => `30000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const U = {
  fresh: user(1),
  already: user(2),
  consent: user(3),
  throttled: user(4),
  unknown: user(5),
  again: user(6),
  slowRoster: user(7),
  bc1: user(8),
  bc2: user(9),
  bc3: user(10),
  bcAlready: user(11),
  botToken: user(12),
  noGraph: user(13),
  stale: user(14),
  notManageable: user(15),
};

let graph: StubGraph;
/** A second Graph whose installations reach the Connector's roster only after a while. */
let slowGraph: StubGraph;
const clients: GraphClient[] = [];

function graphDeps(stub: StubGraph, tokens?: GraphTokenSource): NonNullable<SenderDeps['graph']> {
  const { config } = env();
  const client = createGraphClient({
    cloud: 'public',
    baseUrl: stub.server.baseUrl,
    // As src/runtime.ts builds them: the bot's own credential settings, the user's tenant.
    tokens:
      tokens ??
      createGraphTokenProvider({
        identity: {
          appId: config.appId,
          appType: config.appType,
          credential: config.credential,
          authorityHost: config.authorityHost,
          authorityOverridden: config.authorityOverridden,
          ...(config.homeTenantId === undefined ? {} : { homeTenantId: config.homeTenantId }),
        },
        scope: graphScopeFor('public'),
      }),
    timeoutMs: 5_000,
  });
  clients.push(client);
  return { client, catalogId: stub.catalogId };
}

let withGraph: NonNullable<SenderDeps['graph']>;

beforeAll(async () => {
  const e = env();
  const world = { bot: { appId: APP_ID, tenantId: BOT_TENANT }, entra: e.entra, connector: e.connector };
  const users: StubGraphUser[] = [
    { aadObjectId: U.fresh, name: 'Nia Newcomer' },
    { aadObjectId: U.already, scenario: 'alreadyInstalled' },
    { aadObjectId: U.consent, scenario: 'consentMissing' },
    { aadObjectId: U.throttled, scenario: 'throttled' },
    { aadObjectId: U.again },
    { aadObjectId: U.bc1 },
    { aadObjectId: U.bc2 },
    { aadObjectId: U.bc3 },
    { aadObjectId: U.bcAlready, scenario: 'alreadyInstalled' },
    { aadObjectId: U.botToken },
    { aadObjectId: U.noGraph },
    { aadObjectId: U.stale, scenario: 'alreadyInstalled' },
    { aadObjectId: U.notManageable, scenario: 'notManageable' },
  ];
  graph = await startStubGraph(world, { users, throttleSeconds: 1 });
  slowGraph = await startStubGraph(world, { users: [{ aadObjectId: U.slowRoster }], rosterDelayMs: 600 });
  withGraph = graphDeps(graph);
});

afterAll(async () => {
  for (const client of clients) await client.close();
  await graph?.close();
  await slowGraph?.close();
});

const job = (id: string, aadObjectId: string, text = `hello ${id}`) => ({
  id,
  to: { aadObjectId, tenantId: BOT_TENANT },
  text,
});
const installsOf = (stub: StubGraph, userId: string) =>
  stub.server.requests.filter((r) => r.userId === userId && r.operation === 'install');
const createsFor = (aadObjectId: string) =>
  env().connector.requests.filter(
    (r) =>
      r.operation === 'createConversation' &&
      (r.body as { members?: { id?: string }[] } | undefined)?.members?.[0]?.id === aadObjectId,
  );
const logged = (event: string) =>
  env()
    .logs.map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((l) => l.event === event);

async function send(id: string, aadObjectId: string, deps: Partial<SenderDeps> = { graph: withGraph }) {
  const e = env();
  await e.enqueue(job(id, aadObjectId));
  const results = await e.drain({ deps });
  await graph.settled();
  return { results: results.filter((r) => r.jobId === id), record: await e.deliveries.get(id) };
}

describe('a job to a user with no stored personal chat, with TEAMS_APP_CATALOG_ID', () => {
  it('installs the app through Graph, creates the chat, sends, and records installed: new', async () => {
    const e = env();
    const { results, record } = await send('gi-new', U.fresh);
    expect(results).toEqual([expect.objectContaining({ status: 'sent' })]);

    // Graph: one installation of the catalog app, with a Graph token from the user's tenant.
    const [install] = installsOf(graph, U.fresh);
    expect(installsOf(graph, U.fresh)).toHaveLength(1);
    expect(install).toMatchObject({ method: 'POST', status: 201 });
    expect(install!.body).toEqual({
      'teamsApp@odata.bind': `${graph.server.baseUrl}appCatalogs/teamsApps/${graph.catalogId}`,
    });
    expect(install!.claims).toMatchObject({ aud: 'https://graph.microsoft.com', appid: APP_ID, tid: BOT_TENANT });
    expect(install!.claims?.roles).toContain(GRAPH_INSTALL_PERMISSION);

    // Then the Connector: the chat created with the user's object id, and the message, with bot tokens only.
    const [create] = createsFor(U.fresh);
    expect(create).toMatchObject({ status: 201, tenantId: BOT_TENANT });
    expect(create!.time).toBeGreaterThanOrEqual(install!.time);
    const conversationId = e.connector.personalConversationId(APP_ID, BOT_TENANT, graph.teamsUserId(U.fresh));
    expect(create!.createdConversationId).toBe(conversationId);
    const sent = e.connector.delivered.filter((d) => d.conversationId === conversationId);
    expect(sent.map((d) => d.activity?.text)).toEqual(['hello gi-new']);
    for (const r of e.connector.requests) expect(r.tokenClaims?.aud).toBe('https://api.botframework.com');

    expect(record).toMatchObject({ status: 'sent', attempts: 1, conversationId, installed: 'new' });
    // GET /api/notify/{id} shows it.
    expect(toStatusView(record!, undefined, new Date()).body).toMatchObject({ status: 'sent', installed: 'new' });
    // The chat is stored like any created one: the next job goes straight to it.
    const lookup = await e.conversations.findPersonalChat(U.fresh, BOT_TENANT);
    expect(lookup).toMatchObject({ kind: 'found', reference: { conversationId, installed: true } });
    const next = await send('gi-new-2', U.fresh);
    expect(next.results).toEqual([expect.objectContaining({ status: 'sent', conversationId })]);
    expect(next.record?.installed).toBeUndefined();
    expect(installsOf(graph, U.fresh)).toHaveLength(1);
    expect(logged('graph.installed')).toContainEqual(expect.objectContaining({ jobId: 'gi-new', installed: 'new' }));
  });

  it('an app already installed (Graph 409) is fine: installed: already', async () => {
    const { results, record } = await send('gi-already', U.already);
    expect(results).toEqual([expect.objectContaining({ status: 'sent' })]);
    expect(installsOf(graph, U.already).map((r) => r.status)).toEqual([409]);
    expect(record).toMatchObject({ status: 'sent', installed: 'already' });
  });

  it('admin consent missing: failed GraphConsentMissing with the reason, nothing created, logged as an error', async () => {
    const e = env();
    const { results, record } = await send('gi-consent', U.consent);
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'GraphConsentMissing' })]);
    expect(record).toMatchObject({ status: 'failed', attempts: 1, lastErrorCode: 'GraphConsentMissing' });
    expect(record?.lastErrorReason).toContain(
      `admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All in tenant ${BOT_TENANT}`,
    );
    expect(record?.installed).toBeUndefined();
    expect(createsFor(U.consent)).toEqual([]);
    expect(await e.conversations.findPersonalChat(U.consent, BOT_TENANT)).toMatchObject({ kind: 'none' });
    const poisoned = (await e.poisoned()).find((p) => p.teamsCourier.jobId === 'gi-consent');
    expect(poisoned?.teamsCourier).toMatchObject({ code: 'GraphConsentMissing' });
    expect(logged('graph.install.refused')).toContainEqual(
      expect.objectContaining({ level: 'error', jobId: 'gi-consent', code: 'GraphConsentMissing' }),
    );
  });

  it("the manifest does not name the bot: failed GraphAppNotManageable, with Graph's message", async () => {
    const { results, record } = await send('gi-manage', U.notManageable);
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'GraphAppNotManageable' })]);
    expect(record?.lastErrorReason).toContain('is not allowed to manage the Teams App');
    expect(createsFor(U.notManageable)).toEqual([]);
  });

  it('Graph throttled: retried after its Retry-After, then sent; no Teams throttling recorded', async () => {
    const e = env();
    const outcomes: StatsOutcome[] = [];
    const throttledCalls: unknown[] = [];
    const budget = {
      ...e.budget,
      throttled: (...args: Parameters<typeof e.budget.throttled>) => {
        throttledCalls.push(args);
        return e.budget.throttled(...args);
      },
    };
    const connectorThrottled = e.connector.stats.throttled;
    const { results, record } = await send('gi-throttled', U.throttled, {
      graph: withGraph,
      budget,
      stats: { record: (o) => void outcomes.push(o) },
    });
    expect(results).toEqual([
      expect.objectContaining({ status: 'retrying', code: 'GraphThrottled', delayMs: 1_000 }),
      expect.objectContaining({ status: 'sent' }),
    ]);
    expect(installsOf(graph, U.throttled).map((r) => r.status)).toEqual([429, 201]);
    expect(record).toMatchObject({ status: 'sent', attempts: 2, installed: 'new' });
    expect(record?.history.map((h) => [h.outcome, h.code])).toEqual([
      ['retry', 'GraphThrottled'],
      ['sent', undefined],
    ]);
    // A Graph 429 is not Teams': no shared pause, no throttled count, no Connector 429.
    expect(throttledCalls).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'throttled')).toEqual([]);
    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'sent']);
    expect(e.connector.stats.throttled).toBe(connectorThrottled);
    expect(logged('job.retrying')).toContainEqual(
      expect.objectContaining({ jobId: 'gi-throttled', code: 'GraphThrottled', delayMs: 1_000 }),
    );
    expect(logged('job.retrying').find((l) => l.jobId === 'gi-throttled')?.throttled).toBeUndefined();
  });

  it('a user Graph does not know: failed GraphUserUnknown', async () => {
    const { results, record } = await send('gi-unknown', U.unknown);
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'GraphUserUnknown' })]);
    expect(record?.lastErrorReason).toContain(`user ${U.unknown} is unknown to Graph in tenant ${BOT_TENANT}`);
    expect(createsFor(U.unknown)).toEqual([]);
  });

  it('the same job again is skipped: Graph is not asked twice', async () => {
    const e = env();
    await send('gi-again', U.again);
    expect(installsOf(graph, U.again)).toHaveLength(1);
    const again = await send('gi-again', U.again);
    expect(again.results).toEqual([expect.objectContaining({ status: 'skipped', existing: 'sent' })]);
    expect(installsOf(graph, U.again)).toHaveLength(1);
    expect(createsFor(U.again)).toHaveLength(1);
    expect(e.connector.delivered.filter((d) => d.activity?.text === 'hello gi-again')).toHaveLength(1);
  });

  it('Teams refusing the chat right after our installation is GraphInstallationPending: retried without installing again', async () => {
    const e = env();
    const { results, record } = await send('gi-roster', U.slowRoster, { graph: graphDeps(slowGraph) });
    await slowGraph.settled();
    expect(results.at(0)).toMatchObject({ status: 'retrying', code: 'GraphInstallationPending' });
    expect(results.at(-1)).toMatchObject({ status: 'sent' });
    expect(installsOf(slowGraph, U.slowRoster)).toHaveLength(1);
    const creates = createsFor(U.slowRoster);
    expect(creates.length).toBeGreaterThanOrEqual(2);
    expect(creates.at(0)).toMatchObject({ status: 403 });
    expect(creates.at(-1)).toMatchObject({ status: 201 });
    expect(record).toMatchObject({ status: 'sent', installed: 'new' });
    expect(record?.history.at(0)).toMatchObject({ outcome: 'retry', code: 'GraphInstallationPending', status: 403 });
    // A chat we were creating is never marked undeliverable.
    const lookup = await e.conversations.findPersonalChat(U.slowRoster, BOT_TENANT);
    expect(lookup.kind === 'found' && lookup.reference.undeliverableReason).toBeFalsy();
  });

  it('Teams refusing the chat of a user who had the app already is a failure, not a wait', async () => {
    const e = env();
    // Graph says installed (409), yet Teams refuses the chat: nothing this job did can be pending.
    e.connector.registerUser({
      id: graph.teamsUserId(U.stale),
      tenantId: BOT_TENANT,
      aadObjectId: U.stale,
      installed: false,
    });
    const { results, record } = await send('gi-stale', U.stale);
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'ForbiddenOperationException' })]);
    expect(record).toMatchObject({ installed: 'already', attempts: 1 });
  });

  it('a Bot Connector token offered to Graph is refused before it leaves: failed, logged as an error', async () => {
    const e = env();
    const botTokens: GraphTokenSource = {
      getToken: (tenantId) => e.entra.issueToken({ clientId: APP_ID, tenantId }),
      invalidate: () => undefined,
    };
    const before = graph.server.requests.length;
    const { results, record } = await send('gi-bot-token', U.botToken, { graph: graphDeps(graph, botTokens) });
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'GraphRefused' })]);
    expect(record?.lastErrorReason).toContain('GRAPH_TOKEN_REFUSED');
    expect(graph.server.requests.length).toBe(before);
    expect(createsFor(U.botToken)).toEqual([]);
    expect(logged('graph.refused')).toContainEqual(
      expect.objectContaining({ level: 'error', jobId: 'gi-bot-token', code: 'GRAPH_TOKEN_REFUSED' }),
    );
  });

  it('without TEAMS_APP_CATALOG_ID nothing is installed: the chat is created directly, and Teams refuses it', async () => {
    const before = graph.server.requests.length;
    const { results, record } = await send('gi-no-graph', U.noGraph, {});
    expect(results).toEqual([expect.objectContaining({ status: 'failed', code: 'ForbiddenOperationException' })]);
    expect(record?.installed).toBeUndefined();
    expect(graph.server.requests.length).toBe(before);
    expect(createsFor(U.noGraph)).toHaveLength(1);
  });
});

describe('a broadcast to users without chats', () => {
  it('installs for each child and counts installedByUs on the broadcast', async () => {
    const e = env();
    await e.enqueue({
      id: 'gi-bc',
      to: { aadObjectIds: [U.bc1, U.bc2, U.bc3, U.bcAlready], tenantId: BOT_TENANT },
      text: 'Town hall at 10',
    });
    const results: JobResult[] = await e.drain({ deps: { graph: withGraph } });
    await graph.settled();
    expect(results.filter((r) => r.status === 'sent')).toHaveLength(4);
    const counts = await e.deliveries.countChildren('gi-bc');
    expect(counts).toEqual({ total: 4, pending: 0, sent: 4, failed: 0, installedByUs: 3 });
    const parent = await e.deliveries.get('gi-bc');
    expect(toStatusView(parent!, counts, new Date()).body).toMatchObject({ status: 'sent', installedByUs: 3 });
    expect(await e.deliveries.get('gi-bc~3')).toMatchObject({ installed: 'already' });
    for (const id of [U.bc1, U.bc2, U.bc3, U.bcAlready]) expect(installsOf(graph, id)).toHaveLength(1);
  });
});
