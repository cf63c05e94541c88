import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorServer } from '../../host/emulator/connectorServer';
import type { EntraServer } from '../../host/emulator/entraServer';
import { TEAMS_ERRORS } from '../../host/emulator/faults';
import { generateSigningKey } from '../../host/emulator/tokens';
import { APP_ID, TENANT_ID, call, keepAliveAgent, startConnectorStub, type ConnectorStub } from './helpers';

describe('Bot Connector stub', () => {
  let stub: ConnectorStub;
  let entra: EntraServer;
  let connector: ConnectorServer;
  let token: string;
  const lines: string[] = [];
  const agent = keepAliveAgent();

  beforeAll(async () => {
    stub = await startConnectorStub({ rateLimit: false, log: (line) => lines.push(line) }, agent);
    ({ entra, connector, token } = stub);
  });
  afterAll(() => stub.close());
  beforeEach(() => {
    connector.reset();
    connector.clearFaults();
    connector.configure({ unknownConversations: 'accept', strictActivities: true });
    lines.length = 0;
  });

  const send = (serviceUrl: string, rawConversationId: string, activity: unknown, t = token) =>
    call(agent, `${serviceUrl}v3/conversations/${rawConversationId}/activities`, { token: t, body: activity });

  it('records a send with the decoded conversation id, headers and body, and prints it', async () => {
    const res = await send(connector.serviceUrl('amer'), encodeURIComponent('a:1xyzPersonal'), {
      type: 'message',
      text: 'Hello',
    });
    expect(res.status).toBe(201);
    const id = (res.json as { id: string }).id;
    expect(id).toMatch(/^\d+$/);
    expect(res.headers['x-correlating-operationid']).toBeTypeOf('string');

    const [record] = connector.requests;
    expect(record).toMatchObject({
      method: 'POST',
      operation: 'sendToConversation',
      path: '/amer/v3/conversations/a%3A1xyzPersonal/activities',
      servicePrefix: '/amer/',
      serviceUrl: connector.serviceUrl('amer'),
      conversationId: 'a:1xyzPersonal',
      authorization: `Bearer ${token}`,
      body: { type: 'message', text: 'Hello' },
      appId: APP_ID,
      status: 201,
      outcome: 'responded',
      delivered: true,
      assignedActivityId: id,
    });
    expect(record?.headers['content-type']).toBe('application/json');
    expect(connector.delivered).toMatchObject([
      { conversationId: 'a:1xyzPersonal', activityId: id, operation: 'sendToConversation' },
    ]);
    expect(lines).toContain('[emulator] message to a:1xyzPersonal : Hello');
  });

  it('routes any serviceUrl prefix (regional, tenant-suffixed, global, none) and any id encoding', async () => {
    const thread = '19:opsChannel@thread.tacv2;messageid=1763660000000';
    const cases: [string, string, string][] = [
      [connector.serviceUrl('emea'), encodeURIComponent(thread), thread],
      [connector.serviceUrl(`amer/${TENANT_ID}`), encodeURIComponent('a:1x'), 'a:1x'],
      [connector.serviceUrl('teams'), 'a:raw;unencoded@id', 'a:raw;unencoded@id'],
      [connector.serviceUrl(''), encodeURIComponent('a:slash/inside'), 'a:slash/inside'],
      [connector.serviceUrl('apac'), 'a%3Amixed%3bcase%40x', 'a:mixed;case@x'],
    ];
    for (const [serviceUrl, raw, decoded] of cases) {
      const res = await send(serviceUrl, raw, { type: 'message', text: decoded });
      expect(res.status, decoded).toBe(201);
      expect(connector.requests.at(-1)).toMatchObject({ conversationId: decoded, serviceUrl });
    }
    expect(connector.requests.map((r) => r.servicePrefix)).toEqual([
      '/emea/',
      `/amer/${TENANT_ID}/`,
      '/teams/',
      '/',
      '/apac/',
    ]);
  });

  it('rejects missing, foreign-signed, wrong-audience and expired tokens with 401', async () => {
    const rogue = await generateSigningKey();
    const bad = [
      undefined,
      await entra.issueToken({ clientId: APP_ID, tenantId: TENANT_ID, key: rogue }),
      await entra.issueToken({ clientId: APP_ID, tenantId: TENANT_ID, resource: 'https://api.botframework.us' }),
      await entra.issueToken({ clientId: APP_ID, tenantId: TENANT_ID, lifetimeSeconds: -600 }),
    ];
    for (const t of bad) {
      const res = await call(agent, `${connector.serviceUrl('amer')}v3/conversations/a%3A1/activities`, {
        ...(t === undefined ? {} : { token: t }),
        body: { type: 'message', text: 'x' },
      });
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ message: 'Authorization has been denied for this request.' });
    }
    expect(connector.delivered).toHaveLength(0);
    expect(connector.stats.unauthorized).toBe(4);
    expect(connector.requests.map((r) => Boolean(r.authError))).toEqual([true, true, true, true]);
  });

  it('creates personal chats with deterministic ids (29: id or Entra object id)', async () => {
    const url = `${connector.serviceUrl('teams')}v3/conversations`;
    connector.registerUser({
      id: '29:1known',
      aadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
      tenantId: TENANT_ID,
    });
    const create = (memberId: string, extra: Record<string, unknown> = {}) =>
      call(agent, url, {
        token,
        body: {
          bot: { id: `28:${APP_ID}` },
          members: [{ id: memberId }],
          channelData: { tenant: { id: TENANT_ID } },
          ...extra,
        },
      });

    const first = await create('29:1known');
    expect(first.status).toBe(201);
    const id = (first.json as { id: string }).id;
    expect(id).toMatch(/^a:/);
    expect(first.json).toEqual({ id });
    expect((await create('29:1known')).json).toEqual({ id });
    expect((await create('6f2c1a4e-1b7d-4c38-9d5e-0000000000a1')).json).toEqual({ id });
    expect(id).toBe(connector.personalConversationId(APP_ID, TENANT_ID, '29:1known'));
    const other = (await create('29:1other')).json as { id: string };
    expect(other.id).not.toBe(id);

    const withActivity = await create('29:1known', { activity: { type: 'message', text: 'Welcome' } });
    expect(withActivity.json).toEqual({ id, activityId: expect.stringMatching(/^\d+$/) });
    expect(lines).toContain(`[emulator] message to ${id} : Welcome`);
    expect(connector.conversation(id)).toMatchObject({ tenantId: TENANT_ID, appId: APP_ID, type: 'personal' });
  });

  it('validates ConversationParameters', async () => {
    const url = `${connector.serviceUrl('teams')}v3/conversations`;
    const bad: unknown[] = [
      [],
      { members: 'x', tenantId: TENANT_ID },
      { members: [{ name: 'no id' }], tenantId: TENANT_ID },
      { members: [{ id: '29:1a' }] }, // no tenant
      { members: [{ id: 'someone@contoso.com' }], tenantId: TENANT_ID }, // §6: no UPN/email
      { members: [{ id: '29:1a' }, { id: '29:1b' }], tenantId: TENANT_ID },
      { isGroup: true, channelData: { channel: { id: '19:c@thread.tacv2' } }, tenantId: TENANT_ID }, // no activity
    ];
    for (const body of bad) {
      const res = await call(agent, url, { token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json).toMatchObject({ error: { code: 'BadArgument' } });
    }
    connector.registerUser({ id: '29:1uninstalled', tenantId: TENANT_ID, installed: false });
    const res = await call(agent, url, { token, body: { members: [{ id: '29:1uninstalled' }], tenantId: TENANT_ID } });
    expect(res.status).toBe(403);
    expect(res.json).toEqual(TEAMS_ERRORS.BotNotInConversationRoster.body);
  });

  it('starts a channel thread and then posts into it', async () => {
    const channel = '19:ops@thread.tacv2';
    const res = await call(agent, `${connector.serviceUrl('emea')}v3/conversations`, {
      token,
      body: {
        isGroup: true,
        activity: { type: 'message', text: 'New thread' },
        channelData: { channel: { id: channel }, tenant: { id: TENANT_ID } },
        tenantId: TENANT_ID,
      },
    });
    expect(res.status).toBe(201);
    const { id, activityId } = res.json as { id: string; activityId: string };
    expect(id).toBe(`${channel};messageid=${activityId}`);
    expect(
      (await send(connector.serviceUrl('emea'), encodeURIComponent(id), { type: 'message', text: 'in thread' })).status,
    ).toBe(201);
    expect(connector.delivered.map((d) => d.conversationId)).toEqual([id, id]);
  });

  it('reply, update and delete an activity it issued; 404 for one it did not', async () => {
    const base = `${connector.serviceUrl('amer')}v3/conversations/${encodeURIComponent('a:1upd')}/activities`;
    const sent = await call(agent, base, { token, body: { type: 'message', text: 'v1' } });
    const activityId = (sent.json as { id: string }).id;

    const reply = await call(agent, `${base}/${activityId}`, { token, body: { type: 'message', text: 'a reply' } });
    expect(reply.status).toBe(201);
    const update = await call(agent, `${base}/${activityId}`, {
      method: 'PUT',
      token,
      body: { type: 'message', text: 'v2' },
    });
    expect(update.status).toBe(200);
    expect(update.json).toEqual({ id: activityId });
    const del = await call(agent, `${base}/${activityId}`, { method: 'DELETE', token });
    expect(del.status).toBe(200);
    expect(connector.delivered.map((d) => d.operation)).toEqual([
      'sendToConversation',
      'replyToActivity',
      'updateActivity',
      'deleteActivity',
    ]);
    expect(lines).toContain(`[emulator] update a:1upd #${activityId} : v2`);

    const unknown = await call(agent, `${base}/999`, { method: 'PUT', token, body: { type: 'message', text: 'x' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual(TEAMS_ERRORS.ActivityNotFoundInConversation.body);
    // Deleted activities are gone too.
    expect((await call(agent, `${base}/${activityId}`, { method: 'DELETE', token })).status).toBe(404);
  });

  it('answers 413 above 100 KB (UTF-16) and 400 for invalid activities', async () => {
    const url = connector.serviceUrl('amer');
    const big = await send(url, 'a%3A1big', { type: 'message', text: 'x'.repeat(52 * 1024) });
    expect(big.status).toBe(413);
    expect(big.json).toEqual(TEAMS_ERRORS.MessageSizeTooBig.body);
    expect((await send(url, 'a%3A1big', { type: 'message', text: 'x'.repeat(40 * 1024) })).status).toBe(201);
    expect((await send(url, 'a%3A1big', { text: 'no type' })).status).toBe(400);
    expect((await send(url, 'a%3A1big', '{not json')).status).toBe(400);
    expect((await send(url, 'a%3A1big', { type: 'message', attachments: [{ content: {} }] })).status).toBe(400);
  });

  it('conversation state: blocked, bound to another bot, unknown when strict', async () => {
    const url = connector.serviceUrl('amer');
    connector.registerConversation({ id: 'a:1blocked', tenantId: TENANT_ID, appId: APP_ID });
    connector.blockConversation('a:1blocked', 'ConversationBlockedByUser');
    const blocked = await send(url, 'a%3A1blocked', { type: 'message', text: 'x' });
    expect(blocked.status).toBe(403);
    expect(blocked.json).toEqual({
      error: { code: 'ConversationBlockedByUser', message: 'User blocked the conversation with the bot.' },
    });
    connector.blockConversation('a:1blocked', undefined);
    expect((await send(url, 'a%3A1blocked', { type: 'message', text: 'x' })).status).toBe(201);

    const otherBot = await entra.issueToken({ clientId: '00000000-0000-4000-8000-0000000000ff', tenantId: TENANT_ID });
    const foreign = await send(url, 'a%3A1blocked', { type: 'message', text: 'x' }, otherBot);
    expect(foreign.status).toBe(403);
    expect(foreign.json).toEqual({ error: { code: 'BadArgument', message: 'Failed to decrypt conversation id' } });

    connector.configure({ unknownConversations: 'reject' });
    const unknown = await send(url, 'a%3A1never-seen', { type: 'message', text: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual(TEAMS_ERRORS.ConversationNotFound.body);
  });

  it('get member returns objectId (§6) or 404 MemberNotFoundInConversation', async () => {
    connector.registerUser({
      id: '29:1member',
      aadObjectId: '0b8e6f1d-2a3c-4d5e-8f90-0000000000a2',
      tenantId: TENANT_ID,
      name: 'Jonas',
    });
    const url = `${connector.serviceUrl('amer')}v3/conversations/a%3A1m/members/`;
    const byId = await call(agent, `${url}${encodeURIComponent('29:1member')}`, { method: 'GET', token });
    expect(byId.json).toMatchObject({
      id: '29:1member',
      objectId: '0b8e6f1d-2a3c-4d5e-8f90-0000000000a2',
      tenantId: TENANT_ID,
    });
    expect((await call(agent, `${url}0b8e6f1d-2a3c-4d5e-8f90-0000000000a2`, { method: 'GET', token })).status).toBe(
      200,
    );
    expect((await call(agent, `${url}29%3Anobody`, { method: 'GET', token })).status).toBe(404);
  });

  it('waitFor resolves for past and future requests and times out clearly', async () => {
    await send(connector.serviceUrl('amer'), 'a%3A1past', { type: 'message', text: 'past' });
    await expect(connector.waitFor((r) => r.conversationId === 'a:1past')).resolves.toMatchObject({ status: 201 });

    const pending = connector.waitFor((r) => r.conversationId === 'a:1future' && r.status === 201, 2_000);
    const delivery = connector.waitForDelivery((d) => d.conversationId === 'a:1future', 2_000);
    await send(connector.serviceUrl('amer'), 'a%3A1future', { type: 'message', text: 'future' });
    await expect(pending).resolves.toMatchObject({ delivered: true });
    await expect(delivery).resolves.toMatchObject({ activity: { text: 'future' } });

    await expect(connector.waitFor((r) => r.conversationId === 'a:1never', 50)).rejects.toThrow(
      /nothing matched within 50 ms/,
    );
  });
});
