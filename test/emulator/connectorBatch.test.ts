import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorServer } from '../../host/emulator/connectorServer';
import type { EntraServer } from '../../host/emulator/entraServer';
import { Faults, TEAMS_ERRORS } from '../../host/emulator/faults';
import {
  APP_ID,
  TENANT_ID,
  botToken,
  call,
  keepAliveAgent,
  startConnectorStub,
  type ConnectorStub,
  type HttpResult,
} from './helpers';

const OTHER_APP = '00000000-0000-4000-8000-0000000000b9';
const message = { type: 'message', text: 'Quarterly update' };
const users = (...ids: string[]) => ids.map((id) => ({ id }));

describe("Bot Connector stub: Teams' batch operations", () => {
  let stub: ConnectorStub;
  let entra: EntraServer;
  let connector: ConnectorServer;
  let token: string;
  const lines: string[] = [];
  const agent = keepAliveAgent();

  beforeAll(async () => {
    stub = await startConnectorStub({ log: (line) => lines.push(line) }, agent);
    ({ entra, connector, token } = stub);
  });
  afterAll(() => stub.close());
  beforeEach(() => {
    connector.reset();
    connector.clearFaults();
    connector.configure({ unknownConversations: 'accept', rateLimit: {} });
    connector.configureBatch({
      entriesPerPoll: 3,
      pageSize: 2,
      failMarker: 'fail',
      failureRate: 0,
      throttleMarker: 'throttle',
      minMembers: 5,
      maxMembers: 1000,
      rateLimit: [{ windowMs: 1_000, max: 50 }],
      retryAfterMs: 1_000,
      shapes: {
        sendResponse: 'object',
        statusMap: 'httpStatus',
        statusMapKey: 'statusMap',
        failedEntriesKey: 'failedEntries',
      },
    });
    lines.length = 0;
  });

  const base = (): string => `${connector.serviceUrl('amer')}v3/batch/conversation/`;
  const post = (kind: string, body: unknown, t = token): Promise<HttpResult> =>
    call(agent, `${base()}${kind}`, { token: t, body });
  const state = (id: string, t = token): Promise<HttpResult> =>
    call(agent, `${base()}${encodeURIComponent(id)}`, { method: 'GET', token: t });
  const failed = (id: string, continuationToken?: string): Promise<HttpResult> =>
    call(
      agent,
      `${base()}failedentries/${encodeURIComponent(id)}${continuationToken === undefined ? '' : `?continuationToken=${encodeURIComponent(continuationToken)}`}`,
      { method: 'GET', token },
    );
  const start = async (kind: string, body: unknown): Promise<string> => {
    const res = await post(kind, body);
    expect(res.status, res.text).toBe(201);
    return (res.json as { operationId: string }).operationId;
  };
  const pollToEnd = async (id: string): Promise<HttpResult[]> => {
    const answers: HttpResult[] = [];
    for (let i = 0; i < 50; i += 1) {
      const res = await state(id);
      answers.push(res);
      if ((res.json as { state: string }).state !== 'Ongoing') return answers;
    }
    throw new Error('operation never ended');
  };

  it('starts a users batch (201 {operationId}), records it, and moves a few entries on per state poll', async () => {
    const members = users('29:1a', '29:1b', '29:1c', '29:1d', '29:1e', '29:1f', '29:1g');
    const id = await start('users', { activity: message, members, tenantId: TENANT_ID });
    expect(id).toMatch(/^op-/);
    expect(connector.requests[0]).toMatchObject({
      operation: 'batchSend',
      operationId: id,
      tenantId: TENANT_ID,
      status: 201,
    });
    expect(connector.delivered).toHaveLength(0);

    const first = await state(id);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ state: 'Ongoing', statusMap: { '201': 3 }, totalEntriesCount: 7 });
    expect(Date.parse((first.json as { retryAfter: string }).retryAfter)).toBeGreaterThan(Date.now());
    expect(connector.requests.at(-1)).toMatchObject({ operation: 'batchState', operationId: id });

    const rest = await pollToEnd(id);
    expect(rest.at(-1)?.json).toEqual({ state: 'Completed', statusMap: { '201': 7 }, totalEntriesCount: 7 });
    expect(rest).toHaveLength(2);
    expect(connector.delivered).toHaveLength(7);
    const personal = connector.personalConversationId(APP_ID, TENANT_ID, '29:1a');
    expect(connector.delivered[0]).toMatchObject({
      operation: 'batchSend',
      conversationId: personal,
      activity: message,
    });
    expect(connector.conversation(personal)).toMatchObject({ type: 'personal', appId: APP_ID, members: ['29:1a'] });
    expect(lines).toContain(`[emulator] batch ${id} to users: 7 users`);
    expect(lines).toContain(`[emulator] message to ${personal} : Quarterly update`);
    expect(lines).toContain(`[emulator] batch ${id} completed: 7 of 7 sent`);
    expect(connector.batchOperations.map((op) => op.id)).toEqual([id]);
  });

  it('fails marked and uninstalled users, throttles marked ones once, and pages failed entries with a token', async () => {
    connector.registerUser({ id: '29:1off', tenantId: TENANT_ID, installed: false });
    const members = users(
      '29:1fail-1',
      '29:1ok-1',
      '29:1throttle',
      '29:1fail-2',
      '29:1off',
      '29:1fail-3',
      '29:1Bob-FAIL',
    );
    const id = await start('users', { activity: message, members, tenantId: TENANT_ID });
    const first = await state(id);
    expect(first.json).toMatchObject({ state: 'Ongoing', statusMap: { '201': 1, '403': 1, '429': 1 } });
    const answers = await pollToEnd(id);
    expect(answers.at(-1)?.json).toEqual({
      state: 'Completed',
      statusMap: { '201': 2, '403': 5 },
      totalEntriesCount: 7,
    });

    const page1 = await failed(id);
    expect(page1.json).toEqual({
      failedEntries: [
        { id: '29:1fail-1', error: 'BotNotInConversationRoster' },
        { id: '29:1fail-2', error: 'BotNotInConversationRoster' },
      ],
      continuationToken: expect.any(String),
    });
    const pages = [page1];
    for (let next = (page1.json as { continuationToken?: string }).continuationToken; next !== undefined;) {
      const page = await failed(id, next);
      expect(page.status).toBe(200);
      pages.push(page);
      next = (page.json as { continuationToken?: string }).continuationToken;
    }
    expect(pages).toHaveLength(3);
    expect(
      pages.flatMap((p) => (p.json as { failedEntries: { id: string }[] }).failedEntries.map((e) => e.id)),
    ).toEqual(['29:1fail-1', '29:1fail-2', '29:1off', '29:1fail-3', '29:1Bob-FAIL']);
    expect(connector.requests.at(-1)?.url).toContain('continuationToken=');

    const bad = await failed(id, 'not-a-token');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: 'BadArgument' } });
    const otherOps = await failed(id, Buffer.from('op-other|2').toString('base64url'));
    expect(otherOps.status).toBe(400);
  });

  it('cancels: later polls send nothing more; a repeated DELETE is answered the same', async () => {
    const id = await start('users', {
      activity: message,
      members: users(...'abcdefgh'.split('').map((c) => `29:1${c}`)),
      tenantId: TENANT_ID,
    });
    await state(id);
    const cancel = await call(agent, `${base()}${id}`, { method: 'DELETE', token });
    expect(cancel.status).toBe(200);
    expect(connector.requests.at(-1)).toMatchObject({ operation: 'batchCancel', operationId: id });
    const after = await state(id);
    expect(after.json).toEqual({ state: 'Cancelled', statusMap: { '201': 3 }, totalEntriesCount: 8 });
    expect(connector.delivered).toHaveLength(3);
    expect((await call(agent, `${base()}${id}`, { method: 'DELETE', token })).status).toBe(200);
    expect(lines).toContain(`[emulator] batch ${id} cancelled`);
  });

  it('sends to every installed user of a tenant, every member of a team, and a list of channels', async () => {
    const tenant = '11111111-0000-4000-8000-00000000beef';
    connector.registerUser({ id: '29:1t1', tenantId: tenant });
    connector.registerUser({ id: '29:1t2', tenantId: tenant });
    connector.registerUser({ id: '29:1t3', tenantId: tenant, installed: false });
    const tenantOp = await start('tenant', { activity: message, tenantId: tenant });
    await pollToEnd(tenantOp);
    expect(connector.delivered.map((d) => d.conversationId)).toEqual([
      connector.personalConversationId(APP_ID, tenant, '29:1t1'),
      connector.personalConversationId(APP_ID, tenant, '29:1t2'),
    ]);

    connector.registerConversation({
      id: '19:team@thread.tacv2',
      tenantId: TENANT_ID,
      type: 'channel',
      members: ['29:1m1', '29:1m2'],
    });
    const teamOp = await start('team', { activity: message, tenantId: TENANT_ID, teamId: '19:team@thread.tacv2' });
    expect((await pollToEnd(teamOp)).at(-1)?.json).toMatchObject({ state: 'Completed', totalEntriesCount: 2 });
    const unknownTeam = await post('team', { activity: message, tenantId: TENANT_ID, teamId: '19:nope@thread.tacv2' });
    expect(unknownTeam.status).toBe(404);
    expect(unknownTeam.json).toEqual(TEAMS_ERRORS.ConversationNotFound.body);

    connector.blockConversation('19:c3@thread.tacv2', 'BotNotInConversationRoster');
    const channels = users(
      '19:c1@thread.tacv2',
      '19:c2@thread.tacv2',
      '19:c3@thread.tacv2',
      '19:c4@thread.tacv2',
      '19:c5@thread.tacv2',
    );
    const channelOp = await start('channels/', { Activity: message, TenantId: TENANT_ID, Members: channels });
    expect((await pollToEnd(channelOp)).at(-1)?.json).toMatchObject({
      state: 'Completed',
      statusMap: { '201': 4, '403': 1 },
    });
    expect(connector.delivered.slice(-4).map((d) => d.conversationId)).toEqual([
      '19:c1@thread.tacv2',
      '19:c2@thread.tacv2',
      '19:c4@thread.tacv2',
      '19:c5@thread.tacv2',
    ]);
  });

  it('validates auth, routes and bodies as the other routes do', async () => {
    const ok = { activity: message, members: users('a', 'b', 'c', 'd', 'e'), tenantId: TENANT_ID };
    expect((await post('users', ok, 'not-a-token')).status).toBe(401);
    const cases: [string, unknown, RegExp][] = [
      ['users', { ...ok, tenantId: undefined }, /tenantId is required/],
      ['users', { ...ok, members: users('a', 'b') }, /between 5 and 1000 entries \(got 2\)/],
      ['users', { ...ok, members: [{ id: '' }, 'b'] }, /members must be an array/],
      ['channels', { activity: message, tenantId: TENANT_ID }, /members must be an array/],
      ['users', { ...ok, activity: { type: 'typing' } }, /only message activities/],
      ['users', { ...ok, activity: { text: 'no type' } }, /activity.type is required/],
      ['team', { activity: message, tenantId: TENANT_ID }, /teamId is required/],
      ['tenant', ['x'], /batch request object/],
    ];
    for (const [kind, body, problem] of cases) {
      const res = await post(kind, body);
      expect(res.status, `${kind} ${JSON.stringify(body)}`).toBe(400);
      expect((res.json as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'BadArgument',
        message: expect.stringMatching(problem),
      });
    }
    connector.configureBatch({ maxMembers: 6 });
    expect((await post('users', { ...ok, members: users(...'abcdefg'.split('')) })).status).toBe(400);
    expect((await post('everyone', ok)).status).toBe(404);
    expect((await call(agent, `${base()}users`, { method: 'PUT', token, body: ok })).status).toBe(405);
    expect((await state('op-unknown')).status).toBe(404);
    expect((await failed('op-unknown')).status).toBe(404);
    expect(connector.batchOperations).toHaveLength(0);

    const id = await start('users', ok);
    const otherBot = await botToken(entra, OTHER_APP);
    const foreign = await state(id, otherBot);
    expect(foreign.status).toBe(404);
    expect(foreign.json).toEqual({ error: { code: 'NotFound', message: 'Operation not found.' } });
  });

  it('answers in each shape the SDKs disagree on', async () => {
    connector.configureBatch({
      entriesPerPoll: 100,
      shapes: {
        sendResponse: 'string',
        statusMap: 'named',
        statusMapKey: 'stateMap',
        failedEntriesKey: 'failedEntryResponses',
      },
    });
    const res = await post('users', {
      activity: message,
      members: users('29:1a', '29:1b', '29:1fail', '29:1c', '29:1d'),
      tenantId: TENANT_ID,
    });
    expect(res.status).toBe(201);
    expect(res.text).toMatch(/^"op-[0-9a-f-]+"$/);
    const id = res.json as string;
    expect((await state(id)).json).toEqual({
      state: 'Completed',
      stateMap: { success: 4, failed: 1, throttled: 0, pending: 0 },
      totalEntriesCount: 5,
    });
    expect((await failed(id)).json).toEqual({
      failedEntryResponses: [{ id: '29:1fail', error: 'BotNotInConversationRoster' }],
    });
  });

  it('ends Failed when every entry failed; fails entries at a seeded rate', async () => {
    const allFail = await start('users', {
      activity: message,
      members: users('f1-fail', 'f2-fail', 'f3-fail', 'f4-fail', 'f5-fail'),
      tenantId: TENANT_ID,
    });
    expect((await pollToEnd(allFail)).at(-1)?.json).toMatchObject({ state: 'Failed', statusMap: { '403': 5 } });

    connector.configureBatch({ failureRate: 0.5, seed: 7, entriesPerPoll: 1000 });
    const members = users(...Array.from({ length: 40 }, (_, i) => `29:1r${i}`));
    const first = await start('users', { activity: message, members, tenantId: TENANT_ID });
    const a = (await state(first)).json as { statusMap: Record<string, number> };
    expect(a.statusMap['403']).toBeGreaterThan(5);
    expect(a.statusMap['201']).toBeGreaterThan(5);
    connector.configureBatch({ seed: 7 });
    const second = await start('users', { activity: message, members, tenantId: TENANT_ID });
    expect((await state(second)).json).toMatchObject({ statusMap: a.statusMap });
  });

  it('429s with Retry-After over its per-tenant limit, and takes injected faults like every route', async () => {
    connector.configureBatch({ rateLimit: [{ windowMs: 60_000, max: 2 }] });
    const body = { activity: message, members: users('a', 'b', 'c', 'd', 'e'), tenantId: TENANT_ID };
    const id = await start('users', body);
    expect((await state(id)).status).toBe(200);
    const throttled = await state(id);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(throttled.json).toEqual(TEAMS_ERRORS.Throttled.body);
    expect(connector.requests.at(-1)).toMatchObject({ throttled: 'tenant', operationId: id });
    connector.configure({ rateLimit: false });
    expect((await state(id)).status).toBe(200);

    connector.configure({ rateLimit: {} });
    connector.configureBatch({ rateLimit: false });
    connector.injectFault(Faults.throttle(3), { match: { operation: 'batchState' } });
    connector.injectFault(Faults.error('ServiceUnavailable'), { match: { operation: 'batchSend' } });
    expect((await post('users', body)).status).toBe(503);
    const faulted = await state(id);
    expect(faulted.status).toBe(429);
    expect(faulted.headers['retry-after']).toBe('3');
    expect((await state(id)).status).toBe(200);
  });
});
