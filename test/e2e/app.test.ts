/**
 * End to end, as a user runs it: `npm start` (build + local host) in a child process, pointed by
 * environment overrides at Azurite and the local HTTPS stubs for the Bot Framework issuer, Entra
 * and the Bot Connector. Activities go in over HTTP; jobs go in through the real queue; the tables
 * are read back with @azure/data-tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import {
  ChannelTokenIssuer,
  FIXTURE_NAMES,
  fixtureActivity,
  startConnectorServer,
  startEntraServer,
  startOpenIdServer,
  type ConnectorServer,
  type EntraServer,
  type OpenIdServer,
} from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';
import { eventually } from '../helpers/storage';

const ROOT = path.resolve(__dirname, '../..');
const APP_ID = '00000000-0000-4000-8000-0000000000b0';
const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
const SECRET = 'e2e-test-secret-value';
const CERT = path.join(ROOT, 'host/emulator/certs/localhost.crt');

let azurite: AzuriteInstance;
let openId: OpenIdServer;
let issuer: ChannelTokenIssuer;
let entra: EntraServer;
let connector: ConnectorServer;
let app: ChildProcess;
let baseUrl = '';
let output = '';
let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
const agent = new Agent({ keepAliveTimeout: 5_000 });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  [azurite, issuer] = await Promise.all([startAzurite(), ChannelTokenIssuer.create()]);
  openId = await startOpenIdServer({ issuer });
  entra = await startEntraServer({ apps: [{ clientId: APP_ID, tenantId: BOT_TENANT, clientSecret: SECRET }] });
  connector = await startConnectorServer({ auth: { jwks: () => entra.jwks(), appIds: [APP_ID] } });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;

  app = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      NODE_EXTRA_CA_CERTS: CERT,
      AzureWebJobsStorage: azurite.connectionString,
      MicrosoftAppId: APP_ID,
      MicrosoftAppType: 'SingleTenant',
      MicrosoftAppTenantId: BOT_TENANT,
      MicrosoftAppPassword: SECRET,
      BOT_OPENID_METADATA_URL: openId.metadataUrl,
      BOT_AUTHORITY_HOST: entra.authorityHost,
      BOT_TRUSTED_SERVICE_URLS: connector.origin,
      BOT_GLOBAL_SERVICE_URL: connector.serviceUrl('teams'),
      OUTBOUND_QUEUE: 'outbound-messages',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a signal reaches npm, sh and the host together, as Ctrl-C in a
    // terminal does (npm forwards a signal only to its shell, which does not pass it on).
    detached: true,
  });
  app.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  exit = new Promise((resolve) => app.once('exit', (code, signal) => resolve({ code, signal })));

  await eventually(
    async () => {
      if (app.exitCode !== null) throw new Error(`npm start exited with ${app.exitCode}:\n${output.slice(-3000)}`);
      try {
        const res = await request(`${baseUrl}/admin/host/status`, { dispatcher: agent });
        const body = (await res.body.json()) as { state?: string };
        return body.state === 'Running' ? true : undefined;
      } catch {
        return undefined;
      }
    },
    120_000,
    'npm start to serve',
  );
}, 150_000);

afterAll(async () => {
  if (app && app.exitCode === null) {
    signalGroup('SIGTERM');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 20_000))]);
    if (app.exitCode === null) signalGroup('SIGKILL');
  }
  await agent.close();
  await connector?.close();
  await entra?.close();
  await openId?.close();
  await azurite?.stop();
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
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(activity),
  });
  await res.body.dump();
  return res.statusCode;
}

const tables = () => ({
  conversations: TableClient.fromConnectionString(azurite.connectionString, 'conversations', { allowInsecureConnection: true }),
  deliveries: TableClient.fromConnectionString(azurite.connectionString, 'deliveries', { allowInsecureConnection: true }),
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
    const personal = await conversations.getEntity<Record<string, unknown>>(toTableKey('a:1xyzPersonalConversationIdForFixturesOnly0001'), 'ref');
    expect(personal).toMatchObject({ conversationType: 'personal', serviceUrl, userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1' });
    const ops = await conversations.getEntity<Record<string, unknown>>(toTableKey('19:opsChannelIdForFixturesOnly0002@thread.tacv2'), 'ref');
    expect(ops).toMatchObject({ conversationType: 'channel', channelName: 'Ops', teamName: 'Finance Ops' });
  });

  it('refuses an unsigned activity and stores nothing', async () => {
    const activity = fixtureActivity('message.personal', { serviceUrl: connector.serviceUrl('amer'), conversationId: 'a:e2e-unsigned' });
    expect(await postActivity(activity)).toBe(401);
    await expect(tables().conversations.getEntity(toTableKey('a:e2e-unsigned'), 'ref')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('delivers jobs from the queue, plain and base64, to the right URL with the bot token', async () => {
    const serviceUrl = connector.serviceUrl('emea');
    const conversationId = 'a:e2e-delivery';
    const activity = fixtureActivity('message.personal', { serviceUrl, appId: APP_ID, conversationId });
    expect(await postActivity(activity, await issuer.mintChannelToken({ appId: APP_ID, serviceUrl }))).toBe(200);

    const queue = new QueueClient(azurite.connectionString, 'outbound-messages');
    await queue.createIfNotExists();
    await queue.sendMessage(JSON.stringify({ id: 'e2e-plain', to: { conversationId }, text: 'plain text job' }));
    await queue.sendMessage(Buffer.from(JSON.stringify({ id: 'e2e-base64', to: { conversationId }, text: 'base64 job' })).toString('base64'));

    const delivered = await eventually(() => {
      const found = connector.delivered.filter((d) => d.conversationId === conversationId);
      return found.length >= 2 ? found : undefined;
    }, 20_000, 'both jobs at the stub');
    expect(delivered.map((d) => d.activity?.text).sort()).toEqual(['base64 job', 'plain text job']);
    const post = connector.requests.find((r) => r.conversationId === conversationId && r.delivered)!;
    expect(post.path).toBe(`/emea/v3/conversations/${encodeURIComponent(conversationId)}/activities`);
    expect(post.tokenClaims).toMatchObject({ aud: 'https://api.botframework.com', appid: APP_ID });

    const record = await eventually(async () => {
      const entity = await tables().deliveries.getEntity<Record<string, unknown>>(toTableKey('e2e-plain'), 'job').catch(() => undefined);
      return entity?.status === 'sent' ? entity : undefined;
    }, 10_000, 'the delivery record');
    expect(record).toMatchObject({ status: 'sent', conversationId, activityId: expect.any(String) });
  });

  it('fails a bad job at once with its reason, in the record and the poison queue', async () => {
    const queue = new QueueClient(azurite.connectionString, 'outbound-messages');
    await queue.sendMessage(JSON.stringify({ id: 'e2e-bad', to: { conversationId: 'a:1', channelId: '19:x' }, text: 'x' }));
    const poison = new QueueClient(azurite.connectionString, 'outbound-messages-poison');
    const message = await eventually(async () => {
      if (!(await poison.exists())) return undefined;
      const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
      return peekedMessageItems.map((m) => JSON.parse(m.messageText) as { teamsCourier: { jobId: string; reason: string } }).find((m) => m.teamsCourier.jobId === 'e2e-bad');
    }, 20_000, 'the poison message');
    expect(message.teamsCourier.reason).toContain('to: has conflicting targets (conversationId, channelId)');
    const record = await tables().deliveries.getEntity<Record<string, unknown>>(toTableKey('e2e-bad'), 'job');
    expect(record).toMatchObject({ status: 'failed', lastErrorCode: 'InvalidJob' });
  });

  it('stops cleanly on Ctrl-C (SIGINT to the process group)', async () => {
    signalGroup('SIGINT');
    const result = await Promise.race([exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    expect(result).not.toBe('timeout');
    expect(output).toMatch(/host\.stopping[\s\S]*host\.stopped/);
    expect(output).not.toContain('forcedExit');
  }, 40_000);
});
