import { mkdtempSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../host/emulator/cli';
import {
  EMULATOR_APP_ID,
  EMULATOR_CONVERSATION_ID,
  EMULATOR_TENANT_ID,
  EMULATOR_USER,
  fixtureActivity,
  postActivity,
  signActivity,
  startEmulator,
  type Activity,
  type Emulator,
  type PublishedJwks,
} from '../../host/emulator/index';

/**
 * A tiny stand-in for the app: validates inbound tokens the way §1.2 says (metadata -> keys ->
 * iss/aud/alg/skew, endorsement, serviceurl), then echoes messages back through the connector using
 * only the settings the emulator returned.
 */
async function startFakeApp(getSettings: () => Record<string, string>) {
  const received: { activity: Activity; verdict: string }[] = [];
  const getJson = async (url: string): Promise<unknown> => (await (await request(url)).body.json()) as unknown;

  const validate = async (authorization: string | undefined, activity: Activity): Promise<string> => {
    const settings = getSettings();
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (!token) return 'no token';
    const metadata = (await getJson(settings.BOT_OPENID_METADATA_URL ?? '')) as { jwks_uri: string; issuer: string };
    const jwks = (await getJson(metadata.jwks_uri)) as PublishedJwks;
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
        issuer: 'https://api.botframework.com',
        audience: settings.MicrosoftAppId ?? '',
        algorithms: ['RS256'],
        clockTolerance: 300,
      });
      const key = jwks.keys.find((k) => k.kid === decodeProtectedHeader(token).kid);
      if (!key?.endorsements.includes(activity.channelId ?? '')) return 'endorsement';
      if (payload.serviceurl !== activity.serviceUrl) return 'serviceurl';
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? 'invalid';
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const activity = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Activity;
        const verdict = await validate(req.headers.authorization, activity);
        received.push({ activity, verdict });
        if (verdict !== 'ok') {
          res.writeHead(401).end();
          return;
        }
        if (activity.type === 'message') {
          const s = getSettings();
          const credential = new ClientSecretCredential(
            s.MicrosoftAppTenantId ?? '',
            s.MicrosoftAppId ?? '',
            s.MicrosoftAppPassword ?? '',
            {
              authorityHost: s.BOT_AUTHORITY_HOST ?? '',
              disableInstanceDiscovery: true,
            },
          );
          const { token } = await credential.getToken('https://api.botframework.com/.default');
          await request(
            `${activity.serviceUrl ?? ''}v3/conversations/${encodeURIComponent(activity.conversation?.id ?? '')}/activities`,
            {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
              body: JSON.stringify({ type: 'message', text: `echo: ${activity.text ?? ''}` }),
            },
          ).then((r) => r.body.dump());
        }
        res.writeHead(200).end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('startEmulator', () => {
  let emulator: Emulator;
  let app: Awaited<ReturnType<typeof startFakeApp>>;
  const lines: string[] = [];
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'emulator-test-'));
  const controlFile = path.join(cwd, '.azurite', 'emulator-control.json');

  beforeAll(async () => {
    app = await startFakeApp(() => emulator.settings);
    emulator = await startEmulator({ appBaseUrl: app.url, log: (line) => lines.push(line), controlFile });
  });
  afterAll(async () => {
    await emulator.close();
    await app.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('returns the app settings that point at the stubs', () => {
    const s = emulator.settings;
    expect(s).toMatchObject({
      MicrosoftAppId: EMULATOR_APP_ID,
      MicrosoftAppType: 'SingleTenant',
      MicrosoftAppTenantId: EMULATOR_TENANT_ID,
      BOT_OPENID_METADATA_URL: emulator.openId.metadataUrl,
      BOT_AUTHORITY_HOST: emulator.entra.authorityHost,
      BOT_TRUSTED_SERVICE_URLS: emulator.connector.origin,
      BOT_GLOBAL_SERVICE_URL: `${emulator.connector.origin}/teams/`,
    });
    expect(s.MicrosoftAppPassword).toMatch(/^[\w-]{20,}$/);
    expect(Object.keys(s).sort()).toEqual([
      'BOT_AUTHORITY_HOST',
      'BOT_GLOBAL_SERVICE_URL',
      'BOT_OPENID_METADATA_URL',
      'BOT_TRUSTED_SERVICE_URLS',
      'MicrosoftAppId',
      'MicrosoftAppPassword',
      'MicrosoftAppTenantId',
      'MicrosoftAppType',
    ]);
    expect(JSON.parse(readFileSync(controlFile, 'utf8'))).toMatchObject({
      controlUrl: emulator.controlUrl,
      token: emulator.controlToken,
    });
  });

  it('say(): a signed personal message reaches the app, which answers through the connector', async () => {
    const result = await emulator.say('Hello');
    expect(result.status).toBe(200);
    const last = app.received.at(-1);
    expect(last?.verdict).toBe('ok');
    expect(last?.activity).toMatchObject({
      type: 'message',
      text: 'Hello',
      channelId: 'msteams',
      serviceUrl: `${emulator.connector.origin}/amer/`,
      from: EMULATOR_USER,
      recipient: { id: `28:${EMULATOR_APP_ID}` },
      conversation: { id: EMULATOR_CONVERSATION_ID, conversationType: 'personal', tenantId: EMULATOR_TENANT_ID },
      channelData: { tenant: { id: EMULATOR_TENANT_ID } },
    });
    expect(result.deliveries.map((d) => d.activity?.text)).toEqual(['echo: Hello']);
    expect(lines).toContain(`[emulator] message to ${EMULATOR_CONVERSATION_ID} : echo: Hello`);
    expect(emulator.entra.tokenRequests(EMULATOR_TENANT_ID)).toBeGreaterThanOrEqual(1);
  });

  it('install(): sends installationUpdate add', async () => {
    const result = await emulator.install('add');
    expect(result.status).toBe(200);
    expect(app.received.at(-1)?.activity).toMatchObject({
      type: 'installationUpdate',
      action: 'add',
      conversation: { id: EMULATOR_CONVERSATION_ID },
    });
  });

  it('creating a personal chat for the emulator user (by object id) on the global serviceUrl returns its known chat', async () => {
    const s = emulator.settings;
    const { token } = await new ClientSecretCredential(
      s.MicrosoftAppTenantId ?? '',
      s.MicrosoftAppId ?? '',
      s.MicrosoftAppPassword ?? '',
      {
        authorityHost: s.BOT_AUTHORITY_HOST ?? '',
        disableInstanceDiscovery: true,
      },
    ).getToken('https://api.botframework.com/.default');
    const res = await request(`${s.BOT_GLOBAL_SERVICE_URL ?? ''}v3/conversations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        bot: { id: `28:${EMULATOR_APP_ID}` },
        members: [{ id: EMULATOR_USER.aadObjectId }],
        tenantId: EMULATOR_TENANT_ID,
      }),
    });
    expect(res.statusCode).toBe(201);
    expect(await res.body.json()).toEqual({ id: EMULATOR_CONVERSATION_ID });
  });

  it('fixture helpers: re-pointed, signed fixtures are accepted; a serviceurl mismatch is not', async () => {
    const activity = fixtureActivity('installationUpdate.add.channel', {
      serviceUrl: emulator.connector.serviceUrl('emea'),
      appId: EMULATOR_APP_ID,
    });
    expect(activity.recipient?.id).toBe(`28:${EMULATOR_APP_ID}`);
    const ok = await postActivity(app.url, await signActivity(activity, emulator.issuer));
    expect(ok.status).toBe(200);
    const bad = await postActivity(
      app.url,
      await signActivity(activity, emulator.issuer, { serviceUrl: emulator.connector.serviceUrl('amer') }),
    );
    expect(bad.status).toBe(401);
    expect(app.received.at(-1)?.verdict).toBe('serviceurl');

    const botAdded = fixtureActivity('conversationUpdate.channel.botAdded', {
      appId: EMULATOR_APP_ID,
      tenantId: EMULATOR_TENANT_ID,
    });
    expect(botAdded.membersAdded?.[0]?.id).toBe(`28:${EMULATOR_APP_ID}`);
    expect(botAdded.conversation?.tenantId).toBe(EMULATOR_TENANT_ID);
    expect(botAdded.channelData?.tenant?.id).toBe(EMULATOR_TENANT_ID);
  });

  it('CLI: say and status through the control endpoint', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { cwd, out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    expect(await runCli(['say', 'hi', 'there'], io)).toBe(0);
    expect(err).toEqual([]);
    expect(out).toContain('app answered 200');
    expect(out).toContain(`bot -> ${EMULATOR_CONVERSATION_ID}: echo: hi there`);

    out.length = 0;
    expect(await runCli(['status'], io)).toBe(0);
    expect(out[0]).toContain(`emulator bot ${EMULATOR_APP_ID}`);
    expect(out.join('\n')).toContain('echo: hi there');
  });

  it('control endpoint requires the token from the control file', async () => {
    const res = await request(`${emulator.controlUrl}status`);
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });
});

describe('CLI without a running emulator', () => {
  it('explains how to start it (no control file, or a stale one)', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'emulator-cli-'));
    try {
      const err: string[] = [];
      const io = { cwd, out: () => undefined, err: (l: string) => err.push(l) };
      expect(await runCli(['say', 'hello'], io)).toBe(2);
      expect(err.join('\n')).toMatch(/not running.*npm start.*without MicrosoftAppId/);

      // A control file left behind by an emulator that has stopped.
      const emulator = await startEmulator({
        appBaseUrl: 'http://127.0.0.1:9',
        log: () => undefined,
        controlFile: false,
      });
      const controlUrl = emulator.controlUrl;
      await emulator.close();
      mkdirSync(path.join(cwd, '.azurite'), { recursive: true });
      writeFileSync(
        path.join(cwd, '.azurite', 'emulator-control.json'),
        JSON.stringify({ controlUrl, token: 'x', pid: 1, appBaseUrl: '', startedAt: '' }),
      );
      err.length = 0;
      expect(await runCli(['status'], io)).toBe(2);
      expect(err.join('\n')).toMatch(/stale/);
      expect(await runCli(['bogus'], io)).toBe(1);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('removes its control file on close', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'emulator-close-'));
    const file = path.join(cwd, 'control.json');
    const emulator = await startEmulator({ appBaseUrl: 'http://127.0.0.1:9', log: () => undefined, controlFile: file });
    expect(existsSync(file)).toBe(true);
    // The app is not listening: say reports it through the control endpoint instead of hanging.
    const result = await request(`${emulator.controlUrl}say`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emulator.controlToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'anyone?' }),
    });
    expect(result.statusCode).toBe(502);
    expect(JSON.stringify(await result.body.json())).toMatch(/could not deliver/);
    await emulator.close();
    expect(existsSync(file)).toBe(false);
    rmSync(cwd, { recursive: true, force: true });
  });
});
