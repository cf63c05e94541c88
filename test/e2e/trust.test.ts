/**
 * The trust rules of /api/notify tried black-box, as an attacker or an unlucky flow would: the
 * compiled app (`node dist/host/main.js`, what `npm start` runs) with Entra ID callers turned on,
 * real access tokens from the local Entra authority through @azure/identity, jobs delivered to the
 * Bot Connector stub. (Function-key mode, and the key never echoed, are in app.test.ts.)
 */
import { ClientSecretCredential } from '@azure/identity';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Faults, fixtureActivity, waitFor, type ChannelTokenIssuer, type ConnectorServer } from '../../host/emulator';
import type { AppProcess } from '../chaos/harness';
import { startAppWorld, type AppWorld } from './appWorld';

const APP_ID = '00000000-0000-4000-8000-0000000e2e01';
const TENANT = '00000000-0000-4000-8000-0000000b07e0';
const SECRET = 'trust-e2e-bot-secret';
const API = { identifierUri: 'api://teams-courier-e2e', clientId: '00000000-0000-4000-8000-0000000e2ea9' };
const BILLING = {
  clientId: '00000000-0000-4000-8000-0000000e2eb1',
  objectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000e2eb1',
  clientSecret: 'billing-secret',
};
const HR = {
  clientId: '00000000-0000-4000-8000-0000000e2eb2',
  objectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000e2eb2',
  clientSecret: 'hr-secret',
};
const STRANGER = {
  clientId: '00000000-0000-4000-8000-0000000e2eb3',
  objectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000e2eb3',
  clientSecret: 'stranger-secret',
};

let issuer: ChannelTokenIssuer;
let connector: ConnectorServer;
let app: AppProcess;
let agent: Agent;
let e2e: AppWorld;
const tokens = new Map<string, string>();

beforeAll(async () => {
  e2e = await startAppWorld({
    name: 'trust',
    world: {
      bot: { appId: APP_ID, tenantId: TENANT, secret: SECRET },
      entra: { apps: [BILLING, HR, STRANGER].map((c) => ({ ...c, tenantId: TENANT })), apis: [API] },
    },
    settings: {
      FLOW_AUTH_AUDIENCE: API.identifierUri,
      FLOW_CALLERS: JSON.stringify([
        { name: 'billing', objectId: BILLING.objectId },
        { name: 'hr', objectId: HR.objectId, tenants: [TENANT] },
      ]),
    },
  });
  ({ app, agent } = e2e);
  ({ issuer, connector } = e2e.world);
  for (const caller of [BILLING, HR, STRANGER]) {
    const credential = new ClientSecretCredential(TENANT, caller.clientId, caller.clientSecret, {
      authorityHost: e2e.world.entra.authorityHost,
      disableInstanceDiscovery: true,
    });
    tokens.set(caller.clientId, (await credential.getToken(`${API.identifierUri}/.default`)).token);
  }
}, 180_000);

afterAll(() => e2e?.close(), 60_000);

const call = (method: 'GET' | 'POST', route: string, caller: { clientId: string } | undefined, body?: unknown) =>
  e2e.api(method, route, body, caller === undefined ? {} : { authorization: `Bearer ${tokens.get(caller.clientId)}` });

let chats = 0;
async function capture(
  name: 'message.personal' | 'conversationUpdate.channel.botAdded',
  conversationId: string,
): Promise<string> {
  const serviceUrl = connector.serviceUrl('amer');
  const activity = fixtureActivity(name, { serviceUrl, appId: APP_ID, conversationId });
  const res = await request(`${app.url}/api/messages`, {
    method: 'POST',
    dispatcher: agent,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${await issuer.mintChannelToken({ appId: APP_ID, serviceUrl })}`,
    },
    body: JSON.stringify(activity),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(200);
  return conversationId;
}
const personalChat = (): Promise<string> => capture('message.personal', `a:trust-e2e-${(chats += 1)}`);

async function settled(caller: { clientId: string }, id: string): Promise<Record<string, unknown>> {
  return waitFor(`job ${id} to be done`, 20_000, async () => {
    const answer = await call('GET', `notify/${encodeURIComponent(id)}`, caller);
    return answer.status === 200 ? answer.body : undefined;
  });
}

describe('/api/notify with Entra ID callers, through the running app', () => {
  it('turns away no token (401), a bad token (401) and a valid token of a caller not listed (403)', async () => {
    expect((await call('POST', 'notify', undefined, { to: { conversationId: 'a:x' }, text: 'x' })).status).toBe(401);
    const forged = await request(`${app.url}/api/notify`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: 'Bearer not.a.token' },
      body: '{}',
    });
    expect(forged.statusCode).toBe(401);
    await forged.body.dump();
    expect((await call('POST', 'notify', STRANGER, { to: { conversationId: 'a:x' }, text: 'x' })).status).toBe(403);
  });

  it('a job names no credential in its Location, and each caller sees only its own jobs', async () => {
    const chat = await personalChat();
    const accepted = await call('POST', 'notify', BILLING, {
      id: 'inv-e2e-1',
      to: { conversationId: chat },
      text: 'from billing',
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.location).toBe(`${app.url}/api/notify/inv-e2e-1`);
    expect(await settled(BILLING, 'inv-e2e-1')).toMatchObject({ id: 'inv-e2e-1', status: 'sent' });
    expect((await call('GET', 'notify/inv-e2e-1', HR)).status).toBe(404);

    // HR tries to deface billing's message: its update names its own (unknown) job.
    expect((await call('POST', 'notify', HR, { id: 'deface', update: 'inv-e2e-1', text: 'defaced' })).status).toBe(202);
    expect(await settled(HR, 'deface')).toMatchObject({ status: 'failed', error: { code: 'TargetJobUnknown' } });
    expect(connector.requests.filter((r) => r.conversationId === chat && r.method === 'PUT')).toEqual([]);
  });

  it('a raw activity with teamsCourier/job keys is refused; the scheduled job it aimed at goes out untouched', async () => {
    const victim = await personalChat();
    const attacker = await personalChat();
    const notBefore = new Date(Date.now() + 3_000).toISOString();
    expect(
      (
        await call('POST', 'notify', BILLING, {
          id: 'victim-e2e',
          to: { conversationId: victim },
          text: 'the real one',
          notBefore,
        })
      ).status,
    ).toBe(202);
    const attack = await call('POST', 'notify', BILLING, {
      type: 'message',
      conversation: { id: attacker },
      text: 'hijacked',
      teamsCourier: { jobId: 'billing:victim-e2e', deferrals: 0 },
      job: { to: { conversationId: attacker }, text: 'hijacked' },
    });
    expect(attack.status).toBe(400);
    expect(await settled(BILLING, 'victim-e2e')).toMatchObject({ status: 'sent', conversationId: victim });
    expect(connector.delivered.filter((d) => d.conversationId === victim).map((d) => d.activity?.text)).toEqual([
      'the real one',
    ]);
    expect(connector.delivered.some((d) => d.conversationId === attacker)).toBe(false);
  });

  it('"id": null twice gives two jobs, both delivered', async () => {
    const chat = await personalChat();
    const ids: string[] = [];
    for (const text of ['one', 'two']) {
      const accepted = await call('POST', 'notify', BILLING, { id: null, to: { conversationId: chat }, text });
      expect(accepted.status).toBe(202);
      ids.push(String(accepted.body?.id));
    }
    expect(new Set(ids).size).toBe(2);
    expect(ids).not.toContain('null');
    for (const id of ids) expect(await settled(BILLING, id)).toMatchObject({ status: 'sent' });
  });

  it('a 403 on a reply in one thread does not block the channel', async () => {
    const channelId = await capture('conversationUpdate.channel.botAdded', '19:trust-e2e-channel@thread.tacv2');
    connector.injectFault(Faults.error('ConversationBlockedByUser'), {
      match: { conversationId: `${channelId};messageid=42` },
      times: 1,
    });
    expect(
      (await call('POST', 'notify', BILLING, { id: 'reply-403', to: { channelId, threadId: '42' }, text: 'reply' }))
        .status,
    ).toBe(202);
    expect(await settled(BILLING, 'reply-403')).toMatchObject({
      status: 'failed',
      error: { code: 'ConversationBlockedByUser' },
    });
    expect(
      (await call('POST', 'notify', BILLING, { id: 'post-after-403', to: { channelId }, text: 'a new post' })).status,
    ).toBe(202);
    expect(await settled(BILLING, 'post-after-403')).toMatchObject({ status: 'sent' });
  });
});
