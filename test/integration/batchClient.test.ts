/**
 * The batch client against the emulator's Connector over HTTPS: send, poll, page every failed entry
 * (the continuation token travels), cancel, and each answer the outcome rules map (429, 5xx, 401,
 * GCC, trust, unreadable bodies).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorServer } from '../../host/emulator/connectorServer';
import type { EntraServer } from '../../host/emulator/entraServer';
import { Faults } from '../../host/emulator/faults';
import { createBatchClient, type BatchClient, type BatchOutcome } from '../../src/connector/batchClient';
import { batchRequestBody, chunkMembers } from '../../src/core/batch';
import {
  nextContinuationToken,
  sumProgress,
  toProgress,
  type FailedEntry,
  type OperationState,
} from '../../src/core/batchState';
import { CourierError } from '../../src/errors';
import { startConnectorStub, type ConnectorStub } from '../emulator/helpers';

const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';
const activity = { type: 'message', text: 'Maintenance tonight at 22:00' };

function ok<T>(outcome: BatchOutcome<T>): T {
  if (outcome.kind !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(outcome)}`);
  return outcome.value;
}

describe('batch client against the emulator Connector', () => {
  let stub: ConnectorStub;
  let entra: EntraServer;
  let connector: ConnectorServer;
  let client: BatchClient;
  let serviceUrl: string;
  let tokenCalls = 0;
  let invalidations = 0;

  beforeAll(async () => {
    stub = await startConnectorStub();
    ({ entra, connector } = stub);
    serviceUrl = connector.serviceUrl('amer');
    client = createBatchClient({
      trust: { trustedHosts: [], trustedOrigins: [connector.origin] },
      getToken: () => {
        tokenCalls += 1;
        return entra.issueToken({ clientId: APP_ID, tenantId: TENANT_ID });
      },
      invalidateToken: () => {
        invalidations += 1;
      },
      gccServiceUrl: connector.serviceUrl('gcc'),
      timeoutMs: 2_000,
    });
  });
  afterAll(async () => {
    await client.close();
    await stub.close();
  });
  beforeEach(() => {
    connector.reset();
    connector.clearFaults();
    connector.configure({ rateLimit: {} });
    connector.configureBatch({
      entriesPerPoll: 4,
      pageSize: 2,
      rateLimit: [{ windowMs: 1_000, max: 50 }],
      shapes: {
        sendResponse: 'object',
        statusMap: 'httpStatus',
        statusMapKey: 'statusMap',
        failedEntriesKey: 'failedEntries',
      },
    });
    tokenCalls = 0;
    invalidations = 0;
  });

  const members = (n: number, failEvery = 0): string[] =>
    Array.from({ length: n }, (_, i) => (failEvery > 0 && i % failEvery === 0 ? `29:1fail${i}` : `29:1user${i}`));

  async function pollToEnd(url: string, operationId: string): Promise<OperationState[]> {
    const states: OperationState[] = [];
    for (let i = 0; i < 100; i += 1) {
      const state = ok(await client.getOperation(url, operationId));
      states.push(state);
      if (state.finished) return states;
    }
    throw new Error('operation never finished');
  }

  async function allFailedEntries(
    url: string,
    operationId: string,
  ): Promise<{ entries: FailedEntry[]; pages: number }> {
    const entries: FailedEntry[] = [];
    const followed = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    do {
      const page = ok(await client.getFailedEntries(url, operationId, token));
      pages += 1;
      entries.push(...page.entries);
      token = nextContinuationToken(page, followed);
      if (token !== undefined) followed.add(token);
    } while (token !== undefined);
    return { entries, pages };
  }

  it('sends chunked user lists, polls each operation to the end and pages past several pages of failures', async () => {
    const list = members(23, 3);
    const chunks = chunkMembers(list, { maxPerRequest: 10 });
    expect(chunks.map((c) => c.length)).toEqual([8, 8, 7]);
    const ids: string[] = [];
    for (const chunk of chunks) {
      const body = batchRequestBody({ kind: 'users', tenantId: TENANT_ID, activity, members: chunk });
      const sent = await client.sendBatch('users', serviceUrl, body);
      expect(sent).toMatchObject({ kind: 'ok', status: 201, serviceUrl });
      ids.push(ok(sent));
    }
    expect(connector.requests.filter((r) => r.operation === 'batchSend').map((r) => r.path)).toEqual(
      Array(3).fill('/amer/v3/batch/conversation/users'),
    );
    expect(connector.requests[0]?.body).toEqual({
      activity,
      members: chunks[0]!.map((id) => ({ id })),
      tenantId: TENANT_ID,
    });

    const progress = [];
    for (const id of ids) {
      const states = await pollToEnd(serviceUrl, id);
      expect(states.length).toBeGreaterThan(1);
      expect(states[0]).toMatchObject({ state: 'Ongoing', finished: false });
      expect(states[0]!.retryAfterMs).toBeGreaterThan(0);
      expect(toProgress(states[0]!).pending).toBeGreaterThan(0);
      progress.push(toProgress(states.at(-1)!));
    }
    expect(sumProgress(progress)).toEqual({
      total: 23,
      sent: 15,
      failed: 8,
      throttled: 0,
      pending: 0,
      skipped: 0,
      finished: true,
    });

    const first = await allFailedEntries(serviceUrl, ids[0]!);
    expect(first.pages).toBe(2);
    const all = [first, ...(await Promise.all(ids.slice(1).map((id) => allFailedEntries(serviceUrl, id))))];
    expect(all.flatMap((r) => r.entries.map((e) => e.id)).sort()).toEqual(
      list.filter((id) => id.includes('fail')).sort(),
    );
    expect(all.flatMap((r) => r.entries.map((e) => e.error))).toEqual(Array(8).fill('BotNotInConversationRoster'));
    const paged = connector.requests.filter((r) => r.operation === 'batchFailedEntries');
    expect(paged.filter((r) => r.url.includes('?continuationToken=')).length).toBe(paged.length - 3);
    expect(connector.delivered).toHaveLength(15);
  });

  it('reads the other SDK shapes the same way: bare id, named stateMap, failedEntryResponses', async () => {
    connector.configureBatch({
      pageSize: 1,
      shapes: {
        sendResponse: 'string',
        statusMap: 'named',
        statusMapKey: 'stateMap',
        failedEntriesKey: 'failedEntryResponses',
      },
    });
    const id = ok(
      await client.sendBatch(
        'users',
        serviceUrl,
        batchRequestBody({ kind: 'users', tenantId: TENANT_ID, activity, members: members(6, 2) }),
      ),
    );
    expect(id).toMatch(/^op-/);
    const states = await pollToEnd(serviceUrl, id);
    expect(states[0]).toMatchObject({ sent: 2, failed: 2, throttled: 0, pending: 2, totalEntries: 6 });
    expect(toProgress(states.at(-1)!)).toMatchObject({ total: 6, sent: 3, failed: 3, finished: true });
    expect(await allFailedEntries(serviceUrl, id)).toMatchObject({ pages: 3 });
  });

  it('sends to a tenant, a team and channels', async () => {
    // A tenant-wide batch reaches every user the stub knows in that tenant (earlier batches add theirs).
    const tenantId = '22222222-0000-4000-8000-00000000beef';
    connector.registerUser({ id: '29:1tenantUser', tenantId });
    const tenantOp = ok(
      await client.sendBatch('tenant', serviceUrl, batchRequestBody({ kind: 'tenant', tenantId, activity })),
    );
    expect(ok(await client.getOperation(serviceUrl, tenantOp))).toMatchObject({
      finished: true,
      sent: 1,
      totalEntries: 1,
    });

    connector.registerConversation({ id: '19:team@thread.tacv2', tenantId: TENANT_ID, members: ['29:1m1', '29:1m2'] });
    const teamBody = batchRequestBody({ kind: 'team', tenantId: TENANT_ID, activity, teamId: '19:team@thread.tacv2' });
    const teamOp = ok(await client.sendBatch('team', serviceUrl, teamBody));
    expect(ok(await client.getOperation(serviceUrl, teamOp))).toMatchObject({ finished: true, sent: 2 });

    const channels = [
      '19:a@thread.tacv2',
      '19:b@thread.tacv2',
      '19:c@thread.tacv2',
      '19:d@thread.tacv2',
      '19:e@thread.tacv2',
    ];
    const channelOp = ok(
      await client.sendBatch(
        'channels',
        serviceUrl,
        batchRequestBody({ kind: 'channels', tenantId: TENANT_ID, activity, members: channels }),
      ),
    );
    await pollToEnd(serviceUrl, channelOp);
    expect(connector.delivered.slice(-5).map((d) => d.conversationId)).toEqual(channels);
  });

  it('cancels a running operation: nothing more is sent, the rest is skipped', async () => {
    const id = ok(
      await client.sendBatch(
        'users',
        serviceUrl,
        batchRequestBody({ kind: 'users', tenantId: TENANT_ID, activity, members: members(10) }),
      ),
    );
    ok(await client.getOperation(serviceUrl, id));
    expect(await client.cancelOperation(serviceUrl, id)).toMatchObject({ kind: 'ok', value: true, status: 200 });
    const after = ok(await client.getOperation(serviceUrl, id));
    expect(after).toMatchObject({ state: 'Cancelled', finished: true });
    expect(toProgress(after)).toMatchObject({ total: 10, sent: 4, skipped: 6, pending: 0 });
    expect(connector.delivered).toHaveLength(4);
    expect(await client.cancelOperation(serviceUrl, 'op-unknown')).toMatchObject({
      kind: 'fail',
      code: 'NotFound',
      status: 404,
    });
  });

  it('429: retry after Retry-After, from the per-tenant limit and from injected faults', async () => {
    const body = batchRequestBody({ kind: 'users', tenantId: TENANT_ID, activity, members: members(5) });
    const id = ok(await client.sendBatch('users', serviceUrl, body));
    connector.configureBatch({ rateLimit: [{ windowMs: 30_000, max: 1 }] });
    expect(await client.getOperation(serviceUrl, id)).toMatchObject({ kind: 'ok' });
    const limited = await client.getOperation(serviceUrl, id);
    expect(limited).toMatchObject({ kind: 'retry', code: 'Throttled', throttled: true, status: 429 });
    expect((limited as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(25_000);
    expect(await client.sendBatch('users', serviceUrl, body)).toMatchObject({
      kind: 'retry',
      throttled: true,
      status: 429,
    });
    expect((await client.sendBatch('users', serviceUrl, body)) as object).not.toHaveProperty('ambiguous');

    connector.configureBatch({ rateLimit: false });
    connector.injectFault(Faults.throttleHttpDate(4), { match: { operation: 'batchFailedEntries' } });
    const faulted = await client.getFailedEntries(serviceUrl, id);
    expect(faulted).toMatchObject({ kind: 'retry', code: 'Throttled', throttled: true });
    expect((faulted as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(2_000);
    expect(await client.getFailedEntries(serviceUrl, id)).toMatchObject({ kind: 'ok', value: { entries: [] } });
  });

  it('5xx and network failures: reads retry; a send retries only where Teams allows, marked ambiguous', async () => {
    const body = batchRequestBody({ kind: 'users', tenantId: TENANT_ID, activity, members: members(5) });
    const id = ok(await client.sendBatch('users', serviceUrl, body));
    connector.injectFault(Faults.error('ServiceError'), { match: { operation: 'batchState' } });
    expect(await client.getOperation(serviceUrl, id)).toMatchObject({ kind: 'retry', status: 500, throttled: false });
    connector.injectFault(Faults.error('ServiceError'), { match: { operation: 'batchSend' } });
    expect(await client.sendBatch('users', serviceUrl, body)).toMatchObject({
      kind: 'fail',
      code: 'ServiceError',
      status: 500,
    });
    connector.injectFault(Faults.error('ServiceUnavailable'), { match: { operation: 'batchSend' } });
    expect(await client.sendBatch('users', serviceUrl, body)).toMatchObject({
      kind: 'retry',
      status: 503,
      ambiguous: true,
    });
    connector.injectFault(Faults.drop(), { match: { operation: 'batchSend' } });
    expect(await client.sendBatch('users', serviceUrl, body)).toMatchObject({
      kind: 'retry',
      code: 'NetworkReset',
      ambiguous: true,
    });
    connector.injectFault(Faults.drop(), { match: { operation: 'batchCancel' } });
    const dropped = await client.cancelOperation(serviceUrl, id);
    expect(dropped).toMatchObject({ kind: 'retry', code: 'NetworkReset' });
    expect(dropped).not.toHaveProperty('ambiguous');
  });

  it('refuses for good what Teams refuses: 400, 403, an unknown operation', async () => {
    expect(
      await client.sendBatch('users', serviceUrl, { activity, tenantId: TENANT_ID, members: [{ id: 'a' }] }),
    ).toMatchObject({ kind: 'fail', code: 'BadArgument', status: 400 });
    connector.injectFault(Faults.error('BotDisabledByAdmin'), { match: { operation: 'batchSend' } });
    expect(await client.sendBatch('tenant', serviceUrl, { activity, tenantId: TENANT_ID })).toMatchObject({
      kind: 'fail',
      code: 'BotDisabledByAdmin',
      status: 403,
    });
    expect(await client.getOperation(serviceUrl, 'op-gone')).toMatchObject({
      kind: 'fail',
      code: 'NotFound',
      status: 404,
    });
    connector.injectFault(Faults.status(404, ''), { match: { operation: 'batchState' } });
    expect(await client.getOperation(serviceUrl, 'op-gone')).toMatchObject({
      kind: 'fail',
      code: 'BatchOperationNotFound',
    });
  });

  it('401 refreshes the token once; InvalidBotApiHost moves to the GCC host once', async () => {
    const body = batchRequestBody({ kind: 'tenant', tenantId: TENANT_ID, activity });
    connector.injectFault(Faults.status(401, { message: 'Authorization has been denied for this request.' }));
    expect(await client.sendBatch('tenant', serviceUrl, body)).toMatchObject({ kind: 'ok', status: 201 });
    expect(invalidations).toBe(1);
    connector.injectFault(Faults.status(401, { message: 'denied' }), { times: 2 });
    expect(await client.sendBatch('tenant', serviceUrl, body)).toMatchObject({
      kind: 'fail',
      code: 'Unauthorized',
      status: 401,
    });

    connector.injectFault(Faults.error('InvalidBotApiHost'), { match: { servicePrefix: '/amer/' } });
    const moved = await client.sendBatch('tenant', serviceUrl, body);
    expect(moved).toMatchObject({ kind: 'ok', serviceUrl: connector.serviceUrl('gcc') });
    expect(connector.requests.at(-1)?.path).toBe('/gcc/v3/batch/conversation/tenant');
  });

  it('never sends the token to an untrusted host, refuses path-changing ids, and reads what it cannot parse safely', async () => {
    expect(await client.getOperation('https://evil.example.com/', 'op-1')).toMatchObject({
      kind: 'fail',
      code: 'UntrustedServiceUrl',
    });
    expect(await client.getOperation(serviceUrl, '..')).toMatchObject({ kind: 'fail', code: 'InvalidOperationId' });
    expect(tokenCalls).toBe(0);
    expect(connector.requests).toHaveLength(0);

    const body = batchRequestBody({ kind: 'tenant', tenantId: TENANT_ID, activity });
    connector.injectFault(Faults.status(201, {}), { match: { operation: 'batchSend' } });
    expect(await client.sendBatch('tenant', serviceUrl, body)).toMatchObject({
      kind: 'fail',
      code: 'BatchNoOperationId',
      status: 201,
    });
    connector.injectFault(Faults.status(200, ['not', 'a', 'state']), { match: { operation: 'batchState' } });
    expect(await client.getOperation(serviceUrl, 'op-x')).toMatchObject({
      kind: 'retry',
      code: 'BatchAnswerUnreadable',
    });

    const failing = createBatchClient({
      trust: { trustedHosts: [], trustedOrigins: [connector.origin] },
      getToken: () => Promise.reject(new CourierError('TOKEN_UNAVAILABLE', 'no token')),
      timeoutMs: 1_000,
    });
    expect(await failing.getOperation(serviceUrl, 'op-1')).toMatchObject({ kind: 'retry', code: 'TokenUnavailable' });
    await failing.close();
  });
});
