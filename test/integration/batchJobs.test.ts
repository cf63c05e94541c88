/**
 * Batch jobs (`to.batch`) through the real path: Azurite, @azure/identity against the local Entra
 * authority, the batch client against the Connector stub's batch endpoints. Each test drives a
 * queue of its own, so what the sender puts back (retries, polls) is exactly what it sees.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Faults, fixtureActivity } from '../../host/emulator';
import { createBatchClient, type BatchClient } from '../../src/connector/batchClient';
import { handleNotify, type NotifyDeps } from '../../src/flows/notifyApi';
import { toStatusView } from '../../src/flows/statusView';
import type { TeamsBatchJob } from '../../src/core/job';
import { createLogger } from '../../src/log';
import { planBatch } from '../../src/outbound/batchPlan';
import { processJobMessage, type JobResult, type SenderDeps } from '../../src/outbound/processJob';
import { createJobQueue } from '../../src/store/jobQueue';
import { USER_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();
let batches: BatchClient;
let serviceUrl = '';
const TEAM = '19:batchTeamGeneralForTestsOnly@thread.tacv2';

beforeAll(async () => {
  const e = env();
  batches = createBatchClient({
    trust: { trustedHosts: e.config.trustedHosts, trustedOrigins: e.config.trustedOrigins },
    getToken: () => e.tokens.getToken(),
    invalidateToken: () => e.tokens.invalidate(),
    timeoutMs: e.config.connectorTimeoutMs,
  });
  serviceUrl = e.connector.serviceUrl('amer');
  // The tenant's serviceUrl comes from any activity in it.
  await e.capture(fixtureActivity('message.personal', { serviceUrl, conversationId: 'a:batch-tenant-chat' }));
});
afterAll(async () => {
  await batches.close();
});
beforeEach(() => {
  const { connector } = env();
  connector.reset();
  connector.clearFaults();
  connector.configureBatch({ entriesPerPoll: 1000, pageSize: 2, retryAfterMs: null, rateLimit: false, failureRate: 0 });
});

let queues = 0;
async function setup(overrides: Partial<SenderDeps> = {}) {
  const e = env();
  queues += 1;
  const name = `batch-${process.pid}-${queues}`;
  const jobs = e.storage.queue(name);
  const poison = e.storage.queue(`${name}-poison`);
  await Promise.all([jobs.createIfNotExists(), poison.createIfNotExists()]);
  const queue = createJobQueue({ jobs, poison });
  const deps = e.deps({
    queue,
    batches,
    config: { ...e.config, batch: { membersPerRequest: 100, pollIntervalMs: 200 } },
    ...overrides,
  });
  let n = 0;
  const run = (input: unknown, with_: SenderDeps = deps): Promise<JobResult> =>
    processJobMessage(input, { messageId: `m-${name}-${(n += 1)}`, dequeueCount: 1 }, with_);
  /** The next message, once visible: its parsed body (taken off the queue). */
  const next = async (timeoutMs = 10_000): Promise<unknown> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const {
        receivedMessageItems: [m],
      } = await jobs.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 });
      if (m !== undefined) {
        await jobs.deleteMessage(m.messageId, m.popReceipt);
        return JSON.parse(m.messageText) as unknown;
      }
      if (Date.now() > deadline) throw new Error('no message came');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Plays the Functions host on this queue until it is empty (visible or not). */
  const drain = async (with_: SenderDeps = deps, timeoutMs = 30_000): Promise<JobResult[]> => {
    const results: JobResult[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { receivedMessageItems } = await jobs.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 30 });
      if (receivedMessageItems.length === 0) {
        if (!(await jobs.getProperties()).approximateMessagesCount) return results;
        if (Date.now() > deadline) throw new Error('drain: messages still queued');
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const m of receivedMessageItems) {
        results.push(await run(JSON.parse(m.messageText), with_));
        await jobs.deleteMessage(m.messageId, m.popReceipt);
      }
    }
  };
  const poisoned = async () =>
    (await poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map(
      (m) => JSON.parse(m.messageText) as { teamsCourier: { jobId: string; code: string; reason: string } },
    );
  const count = async (): Promise<number> => (await jobs.getProperties()).approximateMessagesCount ?? 0;
  return { deps, run, next, drain, poisoned, count, queue };
}

const guid = (seed: number, i: number): string =>
  `00000000-0000-4000-8${String(seed).padStart(3, '0')}-${String(i).padStart(12, '0')}`;
const users = (seed: number, n: number): string[] => Array.from({ length: n }, (_, i) => guid(seed, i));
const usersJob = (id: string, list: readonly string[]): Record<string, unknown> => ({
  id,
  to: { batch: 'users', users: list, tenantId: USER_TENANT },
  text: `batch ${id}`,
});
const requestsOf = (operation: string) => env().connector.requests.filter((r) => r.operation === operation);

async function viewOf(id: string) {
  const record = await env().deliveries.get(id);
  if (record === undefined) throw new Error(`no record ${id}`);
  return toStatusView(record, undefined, new Date());
}

describe('a batch job to a list of users', () => {
  it('splits 250 users into 3 balanced requests, follows each operation and reports the counts', async () => {
    const t = await setup();
    const sent = await t.run(usersJob('tb-chunks', users(1, 250)));
    expect(sent).toMatchObject({ status: 'fannedOut', children: 3, complete: true });
    const posts = requestsOf('batchSend');
    expect(posts.map((r) => (r.body as { members: unknown[] }).members.length)).toEqual([84, 83, 83]);
    expect(posts[0]!.path).toBe('/amer/v3/batch/conversation/users');
    expect(posts[0]!.body).toMatchObject({
      tenantId: USER_TENANT,
      activity: { type: 'message', text: 'batch tb-chunks' },
    });
    expect((posts[0]!.body as { activity: Record<string, unknown> }).activity).not.toHaveProperty('conversation');

    await t.drain();
    const view = await viewOf('tb-chunks');
    expect(view.done).toBe(true);
    expect(view.body).toMatchObject({
      kind: 'teamsBatch',
      status: 'sent',
      target: 'users',
      total: 250,
      sent: 250,
      failed: 0,
      pending: 0,
    });
    const ops = env().connector.batchOperations.map((o) => o.id);
    expect((view.body.operations as { operationId: string }[]).map((o) => o.operationId)).toEqual(ops);
    expect(env().connector.delivered.length).toBe(250);
  });

  it('reports progress while operations run, polls with a growing interval and pages every failed entry', async () => {
    env().connector.configureBatch({ entriesPerPoll: 25 });
    const t = await setup();
    const list = [...users(2, 10), ...Array.from({ length: 50 }, (_, i) => `29:1fail-${i}`)];
    await t.run(usersJob('tb-paging', list));
    // The first poll: 25 of 60 processed.
    const first = await t.run(await t.next());
    expect(first).toMatchObject({ status: 'deferred', why: 'batch poll', delayMs: 300 });
    const midway = await viewOf('tb-paging');
    expect(midway).toMatchObject({
      done: false,
      body: { status: 'pending', total: 60, sent: 10, failed: 15, pending: 35 },
    });
    await t.drain();
    const view = await viewOf('tb-paging');
    expect(view.body).toMatchObject({ status: 'partial', total: 60, sent: 10, failed: 50, pending: 0 });
    // 50 failures at 2 a page: 25 pages over two polls (20 a poll), the token passed on each.
    const pages = requestsOf('batchFailedEntries');
    expect(pages).toHaveLength(25);
    expect(pages.filter((r) => r.url.includes('continuationToken='))).toHaveLength(24);
    const stored = await env().deliveries.listFailures('tb-paging', 100);
    expect(stored).toHaveLength(50);
    expect(new Set(stored.map((f) => f.id))).toEqual(new Set(list.slice(10)));
    expect(stored.every((f) => f.error === 'BotNotInConversationRoster' && f.chunk === 0)).toBe(true);
  });

  it('stops paging when Teams hands back a continuation token it gave before', async () => {
    const t = await setup();
    await t.run(usersJob('tb-loop', ['29:1fail-a', ...users(3, 5)]));
    let pages = 0;
    const looping: BatchClient = {
      ...batches,
      getFailedEntries: async (url, operationId, token) => {
        pages += 1;
        return {
          kind: 'ok',
          value: { entries: [{ id: `29:1fail-${token ?? 'first'}`, error: 'E' }], continuationToken: 'again' },
          status: 200,
          serviceUrl: url,
        };
      },
    };
    await t.drain({ ...t.deps, batches: looping });
    expect(pages).toBe(2);
    expect((await viewOf('tb-loop')).body).toMatchObject({ status: 'partial', sent: 5, failed: 1 });
  });

  it('refuses a tenant it has no serviceUrl for, and a caller limited to other tenants', async () => {
    const t = await setup();
    const unknownTenant = {
      ...usersJob('tb-no-url', users(4, 5)),
      to: { batch: 'users', users: users(4, 5), tenantId: 'tenant-never-seen' },
    };
    expect(await t.run(unknownTenant)).toMatchObject({ status: 'failed', code: 'BatchServiceUrlUnknown' });
    const callerTenants = new Map([['billing', ['some-other-tenant']]]);
    const limited = { ...t.deps, config: { ...t.deps.config, callerTenants } };
    const enveloped = {
      teamsCourier: { jobId: 'billing:tb-caller', deferrals: 0, caller: 'billing' },
      job: usersJob('tb-caller', users(5, 5)),
    };
    expect(await t.run(enveloped, limited)).toMatchObject({ status: 'failed', code: 'TenantNotAllowed' });
    expect(requestsOf('batchSend')).toHaveLength(0);
    expect((await t.poisoned()).map((p) => p.teamsCourier.code).sort()).toEqual([
      'BatchServiceUrlUnknown',
      'TenantNotAllowed',
    ]);
  });
});

describe('once only', () => {
  it('a redelivered send message never starts a second operation', async () => {
    const t = await setup();
    const job = usersJob('tb-redeliver', users(6, 150));
    expect(await t.run(job)).toMatchObject({ status: 'fannedOut', children: 2 });
    expect(await t.run(job)).toMatchObject({ status: 'skipped', existing: 'sent' });
    expect(requestsOf('batchSend')).toHaveLength(2);
    await t.drain();
    expect((await viewOf('tb-redeliver')).body).toMatchObject({ status: 'sent', sent: 150 });
    expect(requestsOf('batchSend')).toHaveLength(2);
  });

  it('a request whose POST went out without a recorded answer is failed as ambiguous, never sent again', async () => {
    const e = env();
    const t = await setup();
    const body = usersJob('tb-crashed', users(7, 250));
    // An earlier attempt claimed the job, planned it, wrote request 1 `posting`, and died.
    const claim = await e.deliveries.claim('tb-crashed', { now: new Date(Date.now() - 600_000), leaseMs: 1_000 });
    if (claim.kind !== 'claimed') throw new Error('not claimed');
    const job = {
      kind: 'teamsBatch',
      id: 'tb-crashed',
      to: body.to,
      textFormat: 'markdown',
      mentions: [],
    } as unknown as TeamsBatchJob;
    const plan = planBatch(job, { tenantId: USER_TENANT, serviceUrl }, 100, new Date());
    const chunks = plan.chunks.map((c, i) => (i === 0 ? { ...c, status: 'posting' as const } : c));
    await e.deliveries.write({ ...claim.record, kind: 'teamsBatch', batch: { ...plan, chunks } }, claim.etag);

    expect(await t.run(body)).toMatchObject({ status: 'fannedOut', children: 2 });
    expect(requestsOf('batchSend').map((r) => (r.body as { members: unknown[] }).members.length)).toEqual([83, 83]);
    await t.drain();
    const view = await viewOf('tb-crashed');
    expect(view.body).toMatchObject({ status: 'partial', sent: 166, notSent: 84, error: { code: 'BatchAmbiguous' } });
    expect((view.body.operations as { code?: string }[])[0]).toMatchObject({
      status: 'failed',
      code: 'BatchAmbiguous',
    });
  });

  it('a POST whose answer is lost (the connection drops after Teams accepted it) is not sent again', async () => {
    const t = await setup();
    let posts = 0;
    env().connector.injectFault(Faults.dropAfterAccept(), {
      match: (ctx) => ctx.operation === 'batchSend' && (posts += 1) === 2,
    });
    await t.run(usersJob('tb-dropped', users(8, 250)));
    await t.drain();
    expect(env().connector.batchOperations).toHaveLength(3);
    expect(requestsOf('batchSend')).toHaveLength(3);
    const view = await viewOf('tb-dropped');
    expect(view.body).toMatchObject({ status: 'partial', sent: 167, notSent: 83, error: { code: 'BatchAmbiguous' } });
  });

  it('a redelivered poll message polls once: the copy is dropped', async () => {
    env().connector.configureBatch({ entriesPerPoll: 4 });
    const t = await setup();
    await t.run(usersJob('tb-poll-twice', users(9, 12)));
    const poll = await t.next();
    expect(poll).toMatchObject({ teamsCourier: { jobId: 'tb-poll-twice', poll: 1 }, job: {} });
    expect(await t.run(poll)).toMatchObject({ status: 'deferred', why: 'batch poll' });
    expect(await t.run(poll)).toMatchObject({ status: 'skipped' });
    expect(requestsOf('batchState')).toHaveLength(1);
    expect(await t.count()).toBe(1);
    await t.drain();
    expect((await viewOf('tb-poll-twice')).body).toMatchObject({ status: 'sent', sent: 12 });
    expect(requestsOf('batchState')).toHaveLength(3);
  });
});

describe("Teams' answers", () => {
  it('a 429 on the send retries after Retry-After; a 429 on a poll moves the next poll', async () => {
    const e = env();
    const t = await setup();
    e.connector.injectFault(Faults.throttle(1), { match: { operation: 'batchSend' } });
    expect(await t.run(usersJob('tb-429', users(10, 120)))).toMatchObject({
      status: 'retrying',
      code: 'Throttled',
      delayMs: 1000,
    });
    expect(await e.deliveries.get('tb-429')).toMatchObject({ status: 'retrying', lastErrorCode: 'Throttled' });
    e.connector.injectFault(Faults.throttle(2), { match: { operation: 'batchState' } });
    const results = await t.drain();
    expect(results.find((r) => r.status === 'fannedOut')).toMatchObject({ children: 2 });
    const polls = results.filter((r) => r.status === 'deferred');
    expect(polls[0]).toMatchObject({ why: 'batch poll' });
    expect((polls[0] as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(2000);
    expect(e.connector.batchOperations).toHaveLength(2);
    expect((await viewOf('tb-429')).body).toMatchObject({ status: 'sent', sent: 120 });
  });

  it('a permanent 403 fails the job with the reason, and sends no further request', async () => {
    const t = await setup();
    env().connector.injectFault(Faults.error('BotDisabledByAdmin'), { match: { operation: 'batchSend' } });
    expect(await t.run(usersJob('tb-403', users(11, 250)))).toMatchObject({
      status: 'failed',
      code: 'BotDisabledByAdmin',
    });
    expect(requestsOf('batchSend')).toHaveLength(1);
    const view = await viewOf('tb-403');
    expect(view).toMatchObject({
      done: true,
      body: { status: 'failed', notSent: 250, error: { code: 'BotDisabledByAdmin' } },
    });
    expect((await t.poisoned())[0]!.teamsCourier).toMatchObject({ jobId: 'tb-403', code: 'BotDisabledByAdmin' });
    expect(await t.count()).toBe(0);
  });
});

describe('cancel', () => {
  const notify = (deps: SenderDeps): NotifyDeps => ({
    deliveries: deps.deliveries,
    queue: deps.queue,
    now: () => new Date(),
    log: createLogger(() => undefined),
    authenticate: async () => undefined,
  });
  const del = (deps: SenderDeps, id: string) =>
    handleNotify(
      { method: 'DELETE', headers: new Headers(), body: null, url: 'http://localhost/api/notify' } as never,
      id,
      notify(deps),
    );

  it('DELETE /api/notify/{id} cancels the running operations; the status says cancelled', async () => {
    env().connector.configureBatch({ entriesPerPoll: 2 });
    const t = await setup();
    await t.run(usersJob('tb-cancel', users(12, 30)));
    const first = await t.run(await t.next());
    expect(first).toMatchObject({ status: 'deferred' });
    const answer = await del(t.deps, 'tb-cancel');
    expect(answer).toMatchObject({ status: 202, jsonBody: { id: 'tb-cancel', status: 'pending', sent: 2 } });
    expect((answer.jsonBody as { cancelRequestedAt?: string }).cancelRequestedAt).toBeDefined();
    await t.drain();
    expect(requestsOf('batchCancel')).toHaveLength(1);
    expect(env().connector.batchOperations[0]!.state).toBe('Cancelled');
    const view = await viewOf('tb-cancel');
    expect(view).toMatchObject({ done: true, body: { status: 'cancelled', sent: 2, pending: 0 } });
    expect(view.body.skipped).toBeGreaterThan(0);
    // Again: it is over now.
    expect((await del(t.deps, 'tb-cancel')).status).toBe(409);
  });

  it('a batch job cancelled before it was sent never reaches Teams; other jobs cannot be cancelled', async () => {
    const e = env();
    const t = await setup();
    await e.deliveries.createPending('tb-early', { kind: 'teamsBatch' }, new Date());
    expect(await del(t.deps, 'tb-early')).toMatchObject({ status: 200, jsonBody: { status: 'cancelled' } });
    expect(await t.run(usersJob('tb-early', users(13, 5)))).toMatchObject({ status: 'skipped', existing: 'failed' });
    expect(requestsOf('batchSend')).toHaveLength(0);
    await e.deliveries.createPending('a-message', { kind: 'message' }, new Date());
    expect((await del(t.deps, 'a-message')).status).toBe(409);
    expect((await del(t.deps, 'no-such-job')).status).toBe(404);
    expect(await t.poisoned()).toEqual([]);
  });
});

describe('a tenant, a team, channels', () => {
  it('reaches every user of a tenant, every member of a team and a list of channels', async () => {
    const e = env();
    const t = await setup();
    // A tenant of its own: the other tests' deliveries made users known in USER_TENANT.
    const tenantB = '00000000-0000-4000-8000-00000000b0b0';
    await e.capture(
      fixtureActivity('message.personal', { serviceUrl, conversationId: 'a:tenant-b', tenantId: tenantB }),
    );
    for (let i = 0; i < 3; i += 1) e.connector.registerUser({ id: `29:1tenant-user-${i}`, tenantId: tenantB });
    e.connector.registerConversation({
      id: TEAM,
      tenantId: USER_TENANT,
      type: 'channel',
      members: Array.from({ length: 6 }, (_, i) => `29:1team-member-${i}`),
    });
    const channels = Array.from({ length: 5 }, (_, i) => (i === 0 ? TEAM : `19:batchChannel${i}@thread.tacv2`));
    for (const conversationId of channels) {
      const activity = fixtureActivity('conversationUpdate.channel.botAdded', { serviceUrl, conversationId });
      (activity.channelData as { team: { id: string } }).team.id = TEAM;
      await e.capture(activity);
    }

    await t.run({ id: 'tb-tenant', to: { batch: 'tenant', tenantId: tenantB }, text: 'to the tenant' });
    await t.run({ id: 'tb-team', to: { batch: 'team', teamId: TEAM }, text: 'to the team' });
    await t.run({ id: 'tb-channels', to: { batch: 'channels', channelIds: channels }, text: 'to the channels' });
    expect(
      await t.run({ id: 'tb-team-unknown', to: { batch: 'team', teamId: '19:nope@thread.tacv2' }, text: 'x' }),
    ).toMatchObject({
      status: 'failed',
      code: 'TeamUnknown',
    });
    expect(
      await t.run({
        id: 'tb-channels-unknown',
        to: { batch: 'channels', channelIds: [...channels.slice(1), '19:nope'] },
        text: 'x',
      }),
    ).toMatchObject({ status: 'failed', code: 'ChannelUnknown' });
    expect(requestsOf('batchSend').map((r) => r.path.split('/').at(-1))).toEqual(['tenant', 'team', 'channels']);
    expect(requestsOf('batchSend')[1]!.body).toMatchObject({ teamId: TEAM, tenantId: USER_TENANT });
    await t.drain();
    expect((await viewOf('tb-tenant')).body).toMatchObject({ status: 'sent', target: 'tenant', sent: 3 });
    expect((await viewOf('tb-team')).body).toMatchObject({ status: 'sent', target: 'team', sent: 6 });
    expect((await viewOf('tb-channels')).body).toMatchObject({ status: 'sent', target: 'channels', sent: 5 });
  });
});
