/**
 * Batch jobs (`to.batch`) end to end, through the compiled app (`node dist/host/main.js`, what
 * `npm start` runs) against Azurite and the stub world's Connector with its batch endpoints: a list
 * of users through POST /api/notify and its status URL, a tenant through the queue cancelled with
 * the compiled CLI, and a team and channels.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueueClient } from '@azure/storage-queue';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteInstance } from '../../host/azurite';
import { fixtureActivity, waitFor, type Activity, type StubWorld } from '../../host/emulator';
import { createDeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { ROOT } from '../chaos/harness';
import { QUEUE, startAppWorld, type AppWorld } from './appWorld';

const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
const BIG_TENANT = '00000000-0000-4000-8000-00000000b1b1';
const TEAM = '19:e2eBatchTeamGeneral@thread.tacv2';

let azurite: AzuriteInstance;
let world: StubWorld;
let agent: Agent;
let baseUrl = '';
let e2e: AppWorld;

beforeAll(async () => {
  e2e = await startAppWorld({
    name: 'batch',
    world: {
      bot: { appId: APP_ID, tenantId: BOT_TENANT, secret: 'e2e-batch-secret-value' },
      connector: { batch: { entriesPerPoll: 5, pageSize: 2, retryAfterMs: 500 } },
    },
    settings: { BATCH_MEMBERS_PER_REQUEST: '10', BATCH_POLL_INTERVAL_MS: '1000' },
  });
  ({ azurite, world, agent } = e2e);
  baseUrl = e2e.app.url;
}, 300_000);

afterAll(() => e2e?.close(), 60_000);

/** Posts a signed activity, as Teams would: the app learns the conversation and its tenant's serviceUrl. */
async function capture(activity: Activity): Promise<void> {
  const serviceUrl = String(activity.serviceUrl);
  const token = await world.issuer.mintChannelToken({ appId: APP_ID, serviceUrl });
  const res = await request(`${baseUrl}/api/messages`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(activity),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(200);
}

async function http(method: 'GET' | 'POST' | 'DELETE', pathOrUrl: string, body?: unknown) {
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
    json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
  };
}

async function statusOf(id: string): Promise<Record<string, unknown>> {
  return (await http('GET', `/api/notify/${encodeURIComponent(id)}`)).json;
}

const deliveries = () =>
  createDeliveryStore(
    createTableClient({ kind: 'connectionString', connectionString: azurite.connectionString }, TABLES.deliveries),
  );

/** The compiled CLI; its exit code, and what it wrote. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, 'dist/src/cli/main.js'), ...args],
      {
        env: { ...process.env, AzureWebJobsStorage: azurite.connectionString, OUTBOUND_QUEUE: QUEUE },
        cwd: ROOT,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('batch jobs through the compiled app', () => {
  it('a list of users: POST /api/notify, then the status URL counts every operation until done', async () => {
    const serviceUrl = world.connector.serviceUrl('amer');
    await capture(fixtureActivity('message.personal', { serviceUrl, appId: APP_ID, conversationId: 'a:e2e-batch' }));
    const users = [
      ...Array.from({ length: 22 }, (_, i) => `00000000-0000-4000-8e2e-${String(i).padStart(12, '0')}`),
      '29:1fail-a',
      '29:1fail-b',
      '29:1fail-c',
    ];
    const posted = await http('POST', '/api/notify', {
      id: 'e2e-batch-users',
      to: { batch: 'users', users, tenantId: TENANT },
      text: 'Benefits enrolment closes Friday',
    });
    expect(posted).toMatchObject({ status: 202, json: { id: 'e2e-batch-users', status: 'pending' } });

    const done = await waitFor('the batch to finish', 60_000, async () => {
      const res = await http('GET', String(posted.json.statusUrl));
      return res.status === 200 ? res : undefined;
    });
    expect(done.json).toMatchObject({
      kind: 'teamsBatch',
      status: 'partial',
      total: 25,
      sent: 22,
      failed: 3,
      pending: 0,
    });
    const operations = done.json.operations as { operationId: string; total: number }[];
    expect(operations.map((o) => o.total)).toEqual([9, 8, 8]);
    expect(operations.map((o) => o.operationId).sort()).toEqual(
      world.connector.batchOperations.map((o) => o.id).sort(),
    );
    expect((await deliveries().listFailures('e2e-batch-users', 10)).map((f) => f.id).sort()).toEqual([
      '29:1fail-a',
      '29:1fail-b',
      '29:1fail-c',
    ]);
    expect(world.connector.requests.filter((r) => r.operation === 'batchSend')).toHaveLength(3);

    // DELETE reaches the function through the host (not 405): a finished batch has nothing to cancel.
    const late = await http('DELETE', '/api/notify/e2e-batch-users');
    expect(late).toMatchObject({ status: 409, json: { error: expect.stringContaining('is over'), status: 'partial' } });
    expect(await http('DELETE', '/api/notify/no-such-batch')).toMatchObject({ status: 404 });
  });

  it('a tenant through the queue, cancelled with teams-courier cancel', async () => {
    await capture(
      fixtureActivity('message.personal', {
        serviceUrl: world.connector.serviceUrl('emea'),
        appId: APP_ID,
        conversationId: 'a:e2e-big-tenant',
        tenantId: BIG_TENANT,
      }),
    );
    for (let i = 0; i < 40; i += 1) world.connector.registerUser({ id: `29:1big-${i}`, tenantId: BIG_TENANT });
    const queue = new QueueClient(azurite.connectionString, QUEUE);
    await queue.createIfNotExists();
    await queue.sendMessage(
      JSON.stringify({
        id: 'e2e-batch-tenant',
        to: { batch: 'tenant', tenantId: BIG_TENANT },
        text: 'Maintenance tonight',
      }),
    );
    // Running: Teams has processed some, not all.
    await waitFor('the first poll', 30_000, async () => {
      const body = await statusOf('e2e-batch-tenant');
      return typeof body.sent === 'number' && body.sent > 0 ? body : undefined;
    });
    const cancelled = await cli(['cancel', 'e2e-batch-tenant', '--json']);
    expect(cancelled).toMatchObject({ code: 0, stderr: expect.stringContaining('cancelled job e2e-batch-tenant') });
    expect(JSON.parse(cancelled.stdout)).toMatchObject({
      id: 'e2e-batch-tenant',
      cancelRequestedAt: expect.any(String),
    });
    const done = await waitFor('the cancel to land', 30_000, async () => {
      const body = await statusOf('e2e-batch-tenant');
      return body.status === 'cancelled' ? body : undefined;
    });
    expect(done).toMatchObject({ target: 'tenant', total: 40, pending: 0 });
    expect(Number(done.sent)).toBeLessThan(40);
    expect(world.connector.batchOperations.find((o) => o.kind === 'tenant')?.state).toBe('Cancelled');
    // Done, but not everyone got it: exit code 1, as for a partly failed broadcast.
    const watched = await cli(['status', 'e2e-batch-tenant', '--watch', '--timeout', '5']);
    expect(watched).toMatchObject({ code: 1, stdout: expect.stringMatching(/status\s+cancelled/) });
    expect(watched.stdout).toMatch(
      /progress\s+sent \d+\/40, failed 0, throttled 0, pending 0, skipped \d+ \(1 request\), cancelled/,
    );
  });

  it('a team and a list of channels', async () => {
    const serviceUrl = world.connector.serviceUrl('amer');
    world.connector.registerConversation({
      id: TEAM,
      tenantId: TENANT,
      type: 'channel',
      members: Array.from({ length: 7 }, (_, i) => `29:1e2e-member-${i}`),
    });
    const channels = Array.from({ length: 5 }, (_, i) => (i === 0 ? TEAM : `19:e2eBatchChannel${i}@thread.tacv2`));
    for (const conversationId of channels) {
      const activity = fixtureActivity('conversationUpdate.channel.botAdded', {
        serviceUrl,
        appId: APP_ID,
        conversationId,
      });
      (activity.channelData as { team: { id: string } }).team.id = TEAM;
      await capture(activity);
    }
    for (const job of [
      { id: 'e2e-batch-team', to: { batch: 'team', teamId: TEAM }, text: 'to the team' },
      {
        id: 'e2e-batch-channels',
        to: { batch: 'channels', channelIds: channels, tenantId: TENANT },
        text: 'to the channels',
      },
    ])
      expect((await http('POST', '/api/notify', job)).status).toBe(202);
    for (const [id, sent] of [
      ['e2e-batch-team', 7],
      ['e2e-batch-channels', 5],
    ] as const) {
      const body = await waitFor(`${id} to finish`, 60_000, async () => {
        const res = await http('GET', `/api/notify/${id}`);
        return res.status === 200 ? res.json : undefined;
      });
      expect(body).toMatchObject({ status: 'sent', sent, total: sent });
    }
    const delivered = world.connector.delivered.filter((d) => d.activity?.text === 'to the channels');
    expect(delivered.map((d) => d.conversationId).sort()).toEqual([...channels].sort());
  });
});
