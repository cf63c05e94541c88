/**
 * Operating it, end to end: the app as `npm start` runs it (the local host, node dist/host/main.js)
 * against Azurite and the stub world. The Connector stub rejects the bot's token (a rotated secret,
 * as Teams sees it), two jobs fail, the fault is removed, one job is replayed with the CLI as an
 * operator runs it (`node dist/src/cli/main.js`, what `npx teams-courier` starts) and one through
 * POST /api/notify/{id}/retry; each is delivered exactly once. Then `teams-courier stats` and
 * GET /api/health, also with storage gone.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueueClient } from '@azure/storage-queue';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteInstance } from '../../host/azurite';
import { Faults, fixtureActivity, waitFor, type ChannelTokenIssuer, type ConnectorServer } from '../../host/emulator';
import { ROOT, type AppProcess } from '../chaos/harness';
import { QUEUE, startAppWorld, type AppWorld } from './appWorld';

const APP_ID = '00000000-0000-4000-8000-0000000e2e0b';
const TENANT = '00000000-0000-4000-8000-0000000b07e0';
const SECRET = 'operate-e2e-secret';

let azurite: AzuriteInstance;
let issuer: ChannelTokenIssuer;
let connector: ConnectorServer;
let app: AppProcess;
let agent: Agent;
let e2e: AppWorld;
const run = promisify(execFile);

beforeAll(async () => {
  e2e = await startAppWorld({ name: 'operate', world: { bot: { appId: APP_ID, tenantId: TENANT, secret: SECRET } } });
  ({ azurite, app, agent } = e2e);
  ({ issuer, connector } = e2e.world);
}, 180_000);

afterAll(() => e2e?.close(), 60_000);

const http = (method: 'GET' | 'POST', route: string, body?: unknown) => e2e.api(method, route, body);

/** `teams-courier <args>` as an operator runs it, with the app's storage settings. */
async function teamsCourier(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), ...args], {
      cwd: mkdtempSync(path.join(tmpdir(), 'courier-cli-')),
      env: { PATH: process.env.PATH, AzureWebJobsStorage: azurite.connectionString, OUTBOUND_QUEUE: QUEUE },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const statusOf = (id: string) => e2e.statusOf(id);

describe('operating it through the running app', () => {
  const conversationId = 'a:operate-e2e-1';

  it('answers GET /api/health with 200 and nothing more', async () => {
    const answer = await http('GET', 'health');
    expect(answer).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(answer.headers['cache-control']).toBe('no-store');
  });

  it('replays jobs failed by a misconfiguration once it is fixed, each delivered once', async () => {
    const serviceUrl = connector.serviceUrl('amer');
    const captured = await request(`${app.url}/api/messages`, {
      method: 'POST',
      dispatcher: agent,
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${await issuer.mintChannelToken({ appId: APP_ID, serviceUrl })}`,
      },
      body: JSON.stringify(fixtureActivity('message.personal', { serviceUrl, appId: APP_ID, conversationId })),
    });
    await captured.body.dump();
    expect(captured.statusCode).toBe(200);

    // Teams refuses the bot's token until the fault is removed: what a rotated secret looks like.
    connector.injectFault(Faults.error('BotNotRegistered'), {
      match: { conversationId },
      times: Number.POSITIVE_INFINITY,
    });
    expect(
      (await http('POST', 'notify', { id: 'operate-api', to: { conversationId }, text: 'through the API' })).status,
    ).toBe(202);
    const queue = new QueueClient(azurite.connectionString, QUEUE);
    await queue.sendMessage(JSON.stringify({ id: 'operate-queue', to: { conversationId }, text: 'through the queue' }));
    expect(await statusOf('operate-api')).toMatchObject({ status: 'failed', error: { code: 'BotNotRegistered' } });
    expect(await statusOf('operate-queue')).toMatchObject({ status: 'failed', error: { code: 'BotNotRegistered' } });
    expect(connector.delivered.filter((d) => d.conversationId === conversationId)).toHaveLength(0);

    const listed = await teamsCourier('poison', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/operate-api\s+BotNotRegistered/);
    expect(listed.stdout).toMatch(/operate-queue\s+BotNotRegistered/);

    connector.clearFaults();

    // The operator replays one, the flow retries the other.
    const replayed = await teamsCourier('poison', 'replay', 'operate-queue');
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toContain('requeued      operate-queue');
    const retried = await http('POST', 'notify/operate-api/retry');
    expect(retried).toMatchObject({ status: 202, body: { id: 'operate-api', status: 'pending' } });
    expect(retried.headers.location).toBe(`${app.url}/api/notify/operate-api`);

    const api = await statusOf('operate-api');
    const fromQueue = await statusOf('operate-queue');
    expect(api).toMatchObject({ status: 'sent', attempts: 1 });
    expect(fromQueue).toMatchObject({ status: 'sent', attempts: 1 });
    expect((api.history as { outcome: string }[]).map((h) => h.outcome)).toEqual(['failed', 'replayed', 'sent']);
    const delivered = connector.delivered
      .filter((d) => d.conversationId === conversationId)
      .map((d) => d.activity?.text)
      .sort();
    expect(delivered).toEqual(['through the API', 'through the queue']);

    // Never twice: the job is sent, and the poison queue has nothing left of either.
    expect((await http('POST', 'notify/operate-api/retry')).status).toBe(409);
    expect((await teamsCourier('poison', 'replay', 'operate-queue')).code).toBe(1);
    const after = await teamsCourier('poison', 'list', '--json');
    expect(JSON.parse(after.stdout)).toEqual([]);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(connector.delivered.filter((d) => d.conversationId === conversationId)).toHaveLength(2);
  }, 120_000);

  it('shows the sends, the failures by reason and the time from enqueue to sent in teams-courier stats', async () => {
    // The app writes its counts about every 15 s.
    const stats = await waitFor(
      'the stats rollup',
      40_000,
      async () => {
        const result = await teamsCourier('stats', '--since', '1h', '--json');
        if (result.code !== 0) throw new Error(result.stderr);
        const json = JSON.parse(result.stdout) as { sent: number };
        return json.sent >= 2 ? json : undefined;
      },
      2_000,
    );
    expect(stats).toMatchObject({
      sent: 2,
      failed: 2,
      failedByCode: { BotNotRegistered: 2 },
      pending: expect.any(Number),
      poisoned: 0,
    });
    expect((stats as unknown as { enqueueToSent: { p50Ms: number } }).enqueueToSent.p50Ms).toBeGreaterThan(0);
    const text = await teamsCourier('stats');
    expect(text.stdout).toMatch(/^failed\s+2\s+BotNotRegistered 2$/m);
  }, 60_000);

  it('answers 503 on GET /api/health when storage is gone, still with nothing more', async () => {
    await azurite.stop();
    const answer = await waitFor(
      'health to notice',
      30_000,
      async () => {
        const res = await http('GET', 'health');
        return res.status === 503 ? res : undefined;
      },
      1_000,
    );
    expect(answer.body).toEqual({ status: 'unavailable' });
  }, 60_000);
});
