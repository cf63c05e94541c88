/**
 * End to end, as a user runs it: `npm start` (build + local host) in a child process, pointed by
 * environment overrides at Azurite and the local HTTPS stubs for the Bot Framework issuer, Entra
 * and the Bot Connector. Activities go in over HTTP; jobs go in through the real queue; the tables
 * are read back with @azure/data-tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteInstance } from '../../host/azurite';
import {
  FIXTURE_NAMES,
  StopWaiting,
  ensureLocalCertificate,
  fixtureActivity,
  waitFor,
  type ChannelTokenIssuer,
  type ConnectorServer,
} from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';
import { createConversationStore } from '../../src/store/conversationStore';
import { freePort } from '../chaos/harness';
import { startStubs, type Stubs } from './appWorld';

const ROOT = path.resolve(__dirname, '../..');
const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
const SECRET = 'e2e-test-secret-value';

let azurite: AzuriteInstance;
let issuer: ChannelTokenIssuer;
let connector: ConnectorServer;
let agent: Agent;
let stubs: Stubs;
let app: ChildProcess;
let baseUrl = '';
let output = '';
let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

beforeAll(async () => {
  stubs = await startStubs({ bot: { appId: APP_ID, tenantId: BOT_TENANT, secret: SECRET } });
  ({ azurite, agent } = stubs);
  ({ issuer, connector } = stubs.world);
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;

  app = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      // The app's clients take no `ca` option: the child trusts the stubs' loopback-only certificate this way.
      NODE_EXTRA_CA_CERTS: ensureLocalCertificate().certPath,
      ...stubs.appSettings(),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a signal reaches npm, sh and the host together, as Ctrl-C in a
    // terminal does (npm forwards a signal only to its shell, which does not pass it on).
    detached: true,
  });
  app.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  exit = new Promise((resolve) => app.once('exit', (code, signal) => resolve({ code, signal })));

  // Not listening yet counts as "not yet"; npm start exiting ends the wait at once.
  await waitFor('npm start to serve', 120_000, async () => {
    if (app.exitCode !== null) throw new StopWaiting(`npm start exited with ${app.exitCode}:\n${output.slice(-3000)}`);
    const res = await request(`${baseUrl}/admin/host/status`, { dispatcher: agent });
    const body = (await res.body.json()) as { state?: string };
    return body.state === 'Running' ? true : undefined;
  });
}, 150_000);

afterAll(async () => {
  if (app && app.exitCode === null) {
    signalGroup('SIGTERM');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 20_000))]);
    if (app.exitCode === null) signalGroup('SIGKILL');
  }
  await stubs?.close();
}, 60_000);

function signalGroup(signal: NodeJS.Signals): void {
  try {
    process.kill(-app.pid!, signal);
  } catch {
    // already gone
  }
}

async function postActivity(activity: Record<string, unknown>, token?: string): Promise<number> {
  const res = await request(`${baseUrl}/api/messages`, {
    method: 'POST',
    dispatcher: agent,
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(activity),
  });
  await res.body.dump();
  return res.statusCode;
}

const tables = () => ({
  conversations: TableClient.fromConnectionString(azurite.connectionString, 'conversations', {
    allowInsecureConnection: true,
  }),
  deliveries: TableClient.fromConnectionString(azurite.connectionString, 'deliveries', {
    allowInsecureConnection: true,
  }),
});

describe('npm start, end to end', () => {
  it('logs where it listens and what it serves', () => {
    expect(output).toContain(`${baseUrl}/api/messages`);
    expect(output).toContain('queue=outbound-messages');
    expect(output).not.toContain('EMULATOR MODE');
  });

  it('captures every Teams fixture posted with a signed token', async () => {
    const serviceUrl = connector.serviceUrl('amer');
    for (const name of FIXTURE_NAMES) {
      const activity = fixtureActivity(name, { serviceUrl, appId: APP_ID });
      const token = await issuer.mintChannelToken({ appId: APP_ID, serviceUrl });
      expect(await postActivity(activity, token), name).toBe(200);
    }
    const { conversations } = tables();
    const personal = await conversations.getEntity<Record<string, unknown>>(
      toTableKey('a:1xyzPersonalConversationIdForFixturesOnly0001'),
      'ref',
    );
    expect(personal).toMatchObject({
      conversationType: 'personal',
      serviceUrl,
      userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
    });
    const ops = await conversations.getEntity<Record<string, unknown>>(
      toTableKey('19:opsChannelIdForFixturesOnly0002@thread.tacv2'),
      'ref',
    );
    expect(ops).toMatchObject({ conversationType: 'channel', channelName: 'Ops', teamName: 'Finance Ops' });
  });

  it('refuses an unsigned activity and stores nothing', async () => {
    const activity = fixtureActivity('message.personal', {
      serviceUrl: connector.serviceUrl('amer'),
      conversationId: 'a:e2e-unsigned',
    });
    expect(await postActivity(activity)).toBe(401);
    await expect(tables().conversations.getEntity(toTableKey('a:e2e-unsigned'), 'ref')).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('delivers jobs from the queue, plain and base64, to the right URL with the bot token', async () => {
    const serviceUrl = connector.serviceUrl('emea');
    const conversationId = 'a:e2e-delivery';
    const activity = fixtureActivity('message.personal', { serviceUrl, appId: APP_ID, conversationId });
    expect(await postActivity(activity, await issuer.mintChannelToken({ appId: APP_ID, serviceUrl }))).toBe(200);

    const queue = new QueueClient(azurite.connectionString, 'outbound-messages');
    await queue.createIfNotExists();
    await queue.sendMessage(JSON.stringify({ id: 'e2e-plain', to: { conversationId }, text: 'plain text job' }));
    await queue.sendMessage(
      Buffer.from(JSON.stringify({ id: 'e2e-base64', to: { conversationId }, text: 'base64 job' })).toString('base64'),
    );

    const delivered = await waitFor('both jobs at the stub', 20_000, () => {
      const found = connector.delivered.filter((d) => d.conversationId === conversationId);
      return found.length >= 2 ? found : undefined;
    });
    expect(delivered.map((d) => d.activity?.text).sort()).toEqual(['base64 job', 'plain text job']);
    const post = connector.requests.find((r) => r.conversationId === conversationId && r.delivered)!;
    expect(post.path).toBe(`/emea/v3/conversations/${encodeURIComponent(conversationId)}/activities`);
    expect(post.tokenClaims).toMatchObject({ aud: 'https://api.botframework.com', appid: APP_ID });

    const record = await waitFor('the delivery record', 10_000, async () => {
      const entity = await tables()
        .deliveries.getEntity<Record<string, unknown>>(toTableKey('e2e-plain'), 'job')
        .catch(() => undefined);
      return entity?.status === 'sent' ? entity : undefined;
    });
    expect(record).toMatchObject({ status: 'sent', conversationId, activityId: expect.any(String) });
  });

  it('fails a bad job at once with its reason, in the record and the poison queue', async () => {
    const queue = new QueueClient(azurite.connectionString, 'outbound-messages');
    await queue.sendMessage(
      JSON.stringify({ id: 'e2e-bad', to: { conversationId: 'a:1', channelId: '19:x' }, text: 'x' }),
    );
    const poison = new QueueClient(azurite.connectionString, 'outbound-messages-poison');
    const message = await waitFor('the poison message', 20_000, async () => {
      if (!(await poison.exists())) return undefined;
      const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
      return peekedMessageItems
        .map((m) => JSON.parse(m.messageText) as { teamsCourier: { jobId: string; reason: string } })
        .find((m) => m.teamsCourier.jobId === 'e2e-bad');
    });
    expect(message.teamsCourier.reason).toContain('to: has conflicting targets (conversationId, channelId)');
    const record = await tables().deliveries.getEntity<Record<string, unknown>>(toTableKey('e2e-bad'), 'job');
    expect(record).toMatchObject({ status: 'failed', lastErrorCode: 'InvalidJob' });
  });
});

describe('flows through npm start: the HTTP API, update and delete, broadcast, scheduling', () => {
  async function http(method: 'GET' | 'POST', pathOrUrl: string, body?: unknown) {
    const res = await request(pathOrUrl.startsWith('http') ? pathOrUrl : `${baseUrl}${pathOrUrl}`, {
      method,
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      headers: res.headers,
      json: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown>,
    };
  }

  /** Polls a status URL as Logic Apps does: while 202, wait Retry-After (capped for the test). */
  async function pollUntilDone(url: string, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await http('GET', url);
      if (res.status !== 202) return res;
      if (Date.now() > deadline) throw new Error(`still pending after ${timeoutMs} ms: ${JSON.stringify(res.json)}`);
      await new Promise((r) => setTimeout(r, Math.min(1_000, Number(res.headers['retry-after'] ?? 1) * 1000)));
    }
  }

  async function capture(conversationId: string, tenantId = '72f988bf-0000-4000-8000-00000000c0de') {
    const serviceUrl = connector.serviceUrl('amer');
    const activity = fixtureActivity('message.personal', { serviceUrl, appId: APP_ID, conversationId });
    (activity.conversation as Record<string, string>).tenantId = tenantId;
    expect(await postActivity(activity, await issuer.mintChannelToken({ appId: APP_ID, serviceUrl }))).toBe(200);
  }

  it('POST /api/notify answers 202 + Location, and polling it ends in sent', async () => {
    await capture('a:e2e-api');
    const accepted = await http('POST', '/api/notify', {
      id: 'e2e-api-1',
      to: { conversationId: 'a:e2e-api' },
      text: 'Deploy 12: step 1 of 3',
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.location).toBe(`${baseUrl}/api/notify/e2e-api-1`);
    const done = await pollUntilDone(String(accepted.headers.location));
    expect(done).toMatchObject({ status: 200, json: { id: 'e2e-api-1', status: 'sent', conversationId: 'a:e2e-api' } });
  });

  it('never echoes a function key given as ?code= (Location and statusUrl name no credential)', async () => {
    await capture('a:e2e-key');
    const accepted = await http('POST', '/api/notify?code=E2E-FUNCTION-KEY', {
      id: 'e2e-key-1',
      to: { conversationId: 'a:e2e-key' },
      text: 'x',
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.location).toBe(`${baseUrl}/api/notify/e2e-key-1`);
    expect(JSON.stringify(accepted.json)).not.toContain('E2E-FUNCTION-KEY');
  });

  it('update and delete by job id reach Teams as PUT and DELETE on the right activity', async () => {
    const activityId = (await http('GET', '/api/notify/e2e-api-1')).json.activityId as string;
    expect(activityId).toBeTruthy();
    const update = await http('POST', '/api/notify', {
      id: 'e2e-api-1-u',
      update: 'e2e-api-1',
      text: 'Deploy 12: step 2 of 3',
    });
    expect((await pollUntilDone(String(update.headers.location))).json).toMatchObject({ status: 'sent', activityId });
    const del = await http('POST', '/api/notify', { id: 'e2e-api-1-d', delete: 'e2e-api-1' });
    expect((await pollUntilDone(String(del.headers.location))).json).toMatchObject({ status: 'sent' });
    const put = connector.requests.find((r) => r.method === 'PUT' && r.conversationId === 'a:e2e-api');
    const remove = connector.requests.find((r) => r.method === 'DELETE' && r.conversationId === 'a:e2e-api');
    expect(put).toMatchObject({ activityId, status: 200 });
    expect((put!.body as { text: string }).text).toBe('Deploy 12: step 2 of 3');
    expect(remove).toMatchObject({ activityId, status: 200 });
  });

  it('a 500-recipient broadcast completes with correct counts, within Teams limits', async () => {
    const tenantId = 'e2e-broadcast-tenant';
    const store = createConversationStore({
      conversations: tables().conversations,
      userChats: TableClient.fromConnectionString(azurite.connectionString, 'userchats', {
        allowInsecureConnection: true,
      }),
    });
    const ids = Array.from({ length: 500 }, (_, i) => `a:e2e-broadcast-${i}`);
    for (let i = 0; i < ids.length; i += 25) {
      await Promise.all(
        ids.slice(i, i + 25).map((conversationId) =>
          store.capture(
            {
              kind: 'capture',
              reference: {
                conversationId,
                conversationType: 'personal',
                tenantId,
                serviceUrl: connector.serviceUrl('amer'),
                botId: `28:${APP_ID}`,
                installed: true,
              },
            },
            new Date(),
          ),
        ),
      );
    }
    const throttledBefore = connector.stats.throttled;
    const accepted = await http('POST', '/api/notify', {
      id: 'e2e-broadcast',
      to: { allInstalled: true, tenantId },
      text: 'Office closed Friday',
    });
    expect(accepted.status).toBe(202);
    const done = await pollUntilDone(String(accepted.headers.location), 90_000);
    expect(done.json).toMatchObject({
      kind: 'broadcast',
      status: 'sent',
      total: 500,
      sent: 500,
      failed: 0,
      pending: 0,
    });
    const delivered = connector.delivered.filter((d) => d.activity?.text === 'Office closed Friday');
    expect(delivered).toHaveLength(500);
    expect(new Set(delivered.map((d) => d.conversationId)).size).toBe(500);
    // Within Teams' limits: fewer than 1% of the broadcast's requests throttled (it is 0 when the machine is not overloaded).
    const throttled = connector.stats.throttled - throttledBefore;
    expect(throttled).toBeLessThan(500 * 0.01);
  }, 120_000);

  it('a scheduled job is not delivered before notBefore', async () => {
    await capture('a:e2e-scheduled');
    const notBefore = new Date(Date.now() + 3_000);
    const accepted = await http('POST', '/api/notify', {
      id: 'e2e-scheduled',
      to: { conversationId: 'a:e2e-scheduled' },
      text: 'later',
      notBefore: notBefore.toISOString(),
    });
    expect((await http('GET', String(accepted.headers.location))).json).toMatchObject({
      status: 'pending',
      notBefore: notBefore.toISOString(),
    });
    const done = await pollUntilDone(String(accepted.headers.location));
    expect(done.json).toMatchObject({ status: 'sent' });
    const delivered = connector.delivered.find((d) => d.conversationId === 'a:e2e-scheduled')!;
    expect(delivered.time).toBeGreaterThanOrEqual(notBefore.getTime());
  });

  it('a bad request gets 400 with every problem listed', async () => {
    const res = await http('POST', '/api/notify', [
      { to: {}, text: 5 },
      { delete: 'x', text: 'no' },
    ]);
    expect(res.status).toBe(400);
    expect((res.json.problems as { path: string }[]).map((p) => p.path).sort()).toEqual([
      '[0].text',
      '[0].to',
      '[1].text',
    ]);
    expect((await http('POST', '/api/notify', 'not json' as unknown)).status).toBe(400);
    expect((await http('GET', '/api/notify/never-submitted')).status).toBe(404);
  });

  it('stops cleanly on Ctrl-C (SIGINT to the process group)', async () => {
    signalGroup('SIGINT');
    const result = await Promise.race([exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    expect(result).not.toBe('timeout');
    expect(output).toMatch(/host\.stopping[\s\S]*host\.stopped/);
    expect(output).not.toContain('forcedExit');
  }, 40_000);
});
