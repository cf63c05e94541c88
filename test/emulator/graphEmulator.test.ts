/**
 * The emulator with proactive installation on (TEAMS_APP_CATALOG_ID, or the `graph` option): it
 * hands out the Graph settings, its Graph stub takes the bot's Graph tokens from its Entra stub, an
 * installation puts the user in the Connector's roster and reaches the app as a signed
 * installationUpdate, and each EMULATOR_GRAPH_USERS user shows one Graph answer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EMULATOR_GRAPH_USERS,
  EMULATOR_TENANT_ID,
  EMULATOR_USER,
  STUB_CATALOG_ID,
  startEmulator,
  waitFor,
  type Activity,
  type Emulator,
} from '../../host/emulator/index';
import { call, keepAliveAgent } from './helpers';

async function startRecordingApp() {
  const received: { activity: Activity; authorization?: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        activity: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Activity,
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the emulator with proactive installation', () => {
  let emulator: Emulator;
  let app: Awaited<ReturnType<typeof startRecordingApp>>;
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'emulator-graph-'));
  const agent = keepAliveAgent();
  let graphToken: string;
  let botToken: string;

  beforeAll(async () => {
    app = await startRecordingApp();
    emulator = await startEmulator({
      appBaseUrl: app.url,
      log: () => undefined,
      controlFile: path.join(cwd, 'control.json'),
      graph: true,
    });
    const s = emulator.settings;
    const credential = new ClientSecretCredential(s.MicrosoftAppTenantId!, s.MicrosoftAppId!, s.MicrosoftAppPassword!, {
      authorityHost: s.BOT_AUTHORITY_HOST!,
      disableInstanceDiscovery: true,
    });
    graphToken = (await credential.getToken('https://graph.microsoft.com/.default')).token;
    botToken = (await credential.getToken('https://api.botframework.com/.default')).token;
  });
  afterAll(async () => {
    await emulator?.close();
    await app?.close();
    await agent.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  const install = (userId: string) =>
    call(agent, `${emulator.graph!.server.baseUrl}users/${userId}/teamwork/installedApps`, {
      token: graphToken,
      body: { 'teamsApp@odata.bind': `https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/${STUB_CATALOG_ID}` },
    });
  const createChat = (aadObjectId: string) =>
    call(agent, `${emulator.connector.serviceUrl('teams')}v3/conversations`, {
      token: botToken,
      body: {
        bot: { id: `28:${emulator.appId}` },
        members: [{ id: aadObjectId }],
        tenantId: EMULATOR_TENANT_ID,
        channelData: { tenant: { id: EMULATOR_TENANT_ID } },
        isGroup: false,
      },
    });

  it('hands out GRAPH_BASE_URL and TEAMS_APP_CATALOG_ID, pointing at its Graph stub', () => {
    expect(emulator.settings).toMatchObject({
      GRAPH_BASE_URL: emulator.graph!.server.baseUrl,
      TEAMS_APP_CATALOG_ID: STUB_CATALOG_ID,
    });
    expect(emulator.settings.GRAPH_BASE_URL).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\.0\/$/);
  });

  it('a newcomer: the chat is refused until Graph installs the app; then Teams tells the app', async () => {
    const { newcomer } = EMULATOR_GRAPH_USERS;
    expect((await createChat(newcomer.aadObjectId)).status).toBe(403);
    expect((await install(newcomer.aadObjectId)).status).toBe(201);
    await emulator.graph!.settled();
    const created = await createChat(newcomer.aadObjectId);
    expect(created.status).toBe(201);
    const conversationId = (created.json as { id: string }).id;
    const update = await waitFor('the installationUpdate', 5_000, async () =>
      app.received.find((r) => r.activity.type === 'installationUpdate'),
    );
    expect(update.authorization).toMatch(/^Bearer /);
    expect(update.activity).toMatchObject({
      action: 'add',
      conversation: { id: conversationId, conversationType: 'personal', tenantId: EMULATOR_TENANT_ID },
      from: { aadObjectId: newcomer.aadObjectId, name: newcomer.name },
      recipient: { id: `28:${emulator.appId}` },
    });
    expect((await install(newcomer.aadObjectId)).status).toBe(409);
    expect(emulator.status().graph).toMatchObject({
      catalogId: STUB_CATALOG_ID,
      installations: [{ userId: newcomer.aadObjectId, tenantId: EMULATOR_TENANT_ID }],
    });
  });

  it('the emulator user has the app already; the other users show consent missing, throttling, an unknown user', async () => {
    expect((await install(EMULATOR_USER.aadObjectId)).status).toBe(409);
    const consent = await install(EMULATOR_GRAPH_USERS.noConsent.aadObjectId);
    expect(consent.status).toBe(403);
    expect(JSON.stringify(consent.json)).toContain('Missing role permissions');
    const throttled = await install(EMULATOR_GRAPH_USERS.throttled.aadObjectId);
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('1');
    expect((await install(EMULATOR_GRAPH_USERS.throttled.aadObjectId)).status).toBe(201);
    expect((await install('00000000-0000-4000-8000-0000000000ff')).status).toBe(404);
  });

  it('refuses a Bot Connector token, as Graph does', async () => {
    const answer = await call(
      agent,
      `${emulator.graph!.server.baseUrl}users/${EMULATOR_USER.aadObjectId}/teamwork/installedApps`,
      { token: botToken, body: {} },
    );
    expect(answer.status).toBe(401);
    expect(JSON.stringify(answer.json)).toContain('Invalid audience');
  });
});

describe('when the emulator turns proactive installation on', () => {
  it('TEAMS_APP_CATALOG_ID in the environment turns it on, with that catalog id; without it, it stays off', async () => {
    const saved = process.env.TEAMS_APP_CATALOG_ID;
    try {
      process.env.TEAMS_APP_CATALOG_ID = 'b1c5353a-7aca-41b3-830f-27d5218fe0e5';
      const on = await startEmulator({ appBaseUrl: 'http://127.0.0.1:9', log: () => undefined, controlFile: false });
      try {
        expect(on.settings.TEAMS_APP_CATALOG_ID).toBe('b1c5353a-7aca-41b3-830f-27d5218fe0e5');
        expect(on.settings.GRAPH_BASE_URL).toBe(on.graph?.server.baseUrl);
      } finally {
        await on.close();
      }
      delete process.env.TEAMS_APP_CATALOG_ID;
      const off = await startEmulator({ appBaseUrl: 'http://127.0.0.1:9', log: () => undefined, controlFile: false });
      try {
        expect(off.graph).toBeUndefined();
        expect(off.settings.GRAPH_BASE_URL).toBeUndefined();
        expect(off.settings.TEAMS_APP_CATALOG_ID).toBeUndefined();
      } finally {
        await off.close();
      }
    } finally {
      if (saved === undefined) delete process.env.TEAMS_APP_CATALOG_ID;
      else process.env.TEAMS_APP_CATALOG_ID = saved;
    }
  });
});
