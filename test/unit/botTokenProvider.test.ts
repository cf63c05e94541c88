/**
 * The bot's token for the Bot Connector: the cache and its refresh (a stand-in credential on a
 * frozen clock), and each credential kind against the local Entra stub.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalCertificate } from '../../host/emulator/certificate';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';
import { createBotCredential, createBotTokenProvider, REFRESH_BEFORE_EXPIRY_MS } from '../../src/auth/botTokenProvider';
import type { OutboundConfig } from '../../src/config';
import { CourierError } from '../../src/errors';

const SCOPE = 'https://api.botframework.com/.default';
const t0 = Date.parse('2026-11-25T10:00:00Z');

/** A credential that hands out numbered tokens expiring `lifetimeMs` after the clock. */
function fakeCredentials(clock: { now: number }, lifetimeMs = 60 * 60_000) {
  const made: { scopes: string[]; calls: number }[] = [];
  let issued = 0;
  const create = (): TokenCredential => {
    const entry = { scopes: [] as string[], calls: 0 };
    made.push(entry);
    return {
      getToken: async (scope: string | string[]): Promise<AccessToken> => {
        entry.calls += 1;
        entry.scopes.push(String(scope));
        await new Promise((r) => setTimeout(r, 5));
        issued += 1;
        return { token: `token-${issued}`, expiresOnTimestamp: clock.now + lifetimeMs };
      },
    };
  };
  return { create, made, issued: () => issued };
}

describe('createBotTokenProvider', () => {
  it('asks for the scope once, and reuses the token until five minutes before it expires', async () => {
    const clock = { now: t0 };
    const credentials = fakeCredentials(clock);
    const provider = createBotTokenProvider({
      createCredential: credentials.create,
      scope: SCOPE,
      now: () => clock.now,
    });
    expect(await provider.getToken()).toBe('token-1');
    expect(credentials.made[0]).toEqual({ scopes: [SCOPE], calls: 1 });
    clock.now = t0 + 60 * 60_000 - REFRESH_BEFORE_EXPIRY_MS - 1;
    expect(await provider.getToken()).toBe('token-1');
    // Exactly five minutes left: refreshed.
    clock.now = t0 + 60 * 60_000 - REFRESH_BEFORE_EXPIRY_MS;
    expect(await provider.getToken()).toBe('token-2');
    expect(await provider.getToken()).toBe('token-2');
    expect(REFRESH_BEFORE_EXPIRY_MS).toBe(5 * 60_000);
    expect(credentials.made).toHaveLength(1);
  });

  it('lets concurrent callers share one request', async () => {
    const clock = { now: t0 };
    const credentials = fakeCredentials(clock);
    const provider = createBotTokenProvider({
      createCredential: credentials.create,
      scope: SCOPE,
      now: () => clock.now,
    });
    expect(await Promise.all([provider.getToken(), provider.getToken(), provider.getToken()])).toEqual([
      'token-1',
      'token-1',
      'token-1',
    ]);
    expect(credentials.issued()).toBe(1);
    // Once it is done, an expired token is fetched again (not the settled promise reused).
    clock.now = t0 + 2 * 60 * 60_000;
    expect(await provider.getToken()).toBe('token-2');
  });

  it('invalidate() drops the token and makes a new credential (MSAL caches per credential)', async () => {
    const clock = { now: t0 };
    const credentials = fakeCredentials(clock);
    const provider = createBotTokenProvider({
      createCredential: credentials.create,
      scope: SCOPE,
      now: () => clock.now,
    });
    expect(await provider.getToken()).toBe('token-1');
    provider.invalidate();
    expect(credentials.made).toHaveLength(2);
    expect(await provider.getToken()).toBe('token-2');
    expect(credentials.made.map((c) => c.calls)).toEqual([1, 1]);
  });

  it('reports a failed or empty answer as TOKEN_UNAVAILABLE with the first line of the reason, and tries again next time', async () => {
    const invalidSecret = new Error('AADSTS7000215: Invalid client secret provided.\nTrace ID: 1234\nsecret=hunter2');
    let fail: Error | 'null' | undefined = invalidSecret;
    const credential: TokenCredential = {
      getToken: async () => {
        if (fail === 'null') return null;
        if (fail !== undefined) throw fail;
        return { token: 'ok', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const provider = createBotTokenProvider({ createCredential: () => credential, scope: SCOPE });
    const error = await provider.getToken().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CourierError);
    expect(error).toMatchObject({
      code: 'TOKEN_UNAVAILABLE',
      message: 'could not get a Bot Connector token: AADSTS7000215: Invalid client secret provided.',
    });
    // The credential's own error stays reachable (its trace id, for support) as the cause.
    expect((error as CourierError).cause).toBe(invalidSecret);
    fail = 'null';
    await expect(provider.getToken()).rejects.toMatchObject({
      code: 'TOKEN_UNAVAILABLE',
      message: 'could not get a Bot Connector token: the credential returned none',
    });
    fail = Object.assign(Object.create(null) as object, { message: 'not an Error' }) as Error;
    await expect(provider.getToken()).rejects.toMatchObject({
      code: 'TOKEN_UNAVAILABLE',
      message: 'could not get a Bot Connector token: unknown error',
    });
    fail = undefined;
    expect(await provider.getToken()).toBe('ok');
  });
});

describe('createBotCredential against the Entra stub', () => {
  const APP = '00000000-0000-4000-8000-0000000000f1';
  const CERT_APP = '00000000-0000-4000-8000-0000000000f2';
  const MI_APP = '00000000-0000-4000-8000-0000000000f3';
  const TENANT = '00000000-0000-4000-8000-00000000f0de';
  const SECRET = 'token-provider-test-secret';
  const { cert, key } = ensureLocalCertificate();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bot-credential-'));
  const pemPath = path.join(dir, 'bot.pem');
  writeFileSync(pemPath, `${cert}\n${key}`);
  let entra: EntraServer;
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

  beforeAll(async () => {
    entra = await startEntraServer({
      apps: [
        { clientId: APP, tenantId: TENANT, clientSecret: SECRET },
        { clientId: CERT_APP, tenantId: TENANT, certificatePem: cert },
        { clientId: MI_APP, tenantId: TENANT, managedIdentity: true },
      ],
    });
    process.env.IDENTITY_ENDPOINT = entra.msiEndpoint;
    process.env.IDENTITY_HEADER = entra.msiHeader;
  });
  afterAll(async () => {
    for (const [name, value] of [
      ['IDENTITY_ENDPOINT', saved.endpoint],
      ['IDENTITY_HEADER', saved.header],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await entra?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // BOT_AUTHORITY_HOST is set (authorityOverridden): MSAL must not ask Microsoft about this authority.
  const config = (appId: string, credential: OutboundConfig['credential']): OutboundConfig =>
    ({ appId, credential, authorityHost: entra.authorityHost, authorityOverridden: true }) as unknown as OutboundConfig;

  it.each([
    ['a client secret', APP, () => ({ kind: 'secret', tenantId: TENANT, clientSecret: SECRET }) as const, 1],
    [
      'a certificate file',
      CERT_APP,
      () => ({ kind: 'certificate', tenantId: TENANT, certificate: { path: pemPath } }) as const,
      2,
    ],
    [
      'a certificate in the setting',
      CERT_APP,
      () => ({ kind: 'certificate', tenantId: TENANT, certificate: { pem: `${cert}\n${key}` } }) as const,
      2,
    ],
  ])('gets the bot a token with %s, from its home tenant', async (_label, appId, credential, appidacr) => {
    const token = await createBotCredential(config(appId, credential())).getToken(SCOPE);
    expect(await entra.verifyAccessToken(token!.token)).toMatchObject({
      appid: appId,
      tid: TENANT,
      aud: 'https://api.botframework.com',
      appidacr: String(appidacr),
    });
  });

  it('gets the bot a token with its user-assigned managed identity (the app id is its client id)', async () => {
    const token = await createBotCredential(config(MI_APP, { kind: 'managedIdentity', clientId: MI_APP })).getToken(
      SCOPE,
    );
    expect(await entra.verifyAccessToken(token!.token)).toMatchObject({ appid: MI_APP, tid: TENANT });
    expect(entra.requests.filter((r) => r.kind === 'msi').at(-1)).toMatchObject({ clientId: MI_APP });
  });
});
