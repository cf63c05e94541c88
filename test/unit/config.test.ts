import { describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../src/config';
import { ConfigError } from '../../src/errors';

const base = {
  MicrosoftAppId: '00000000-0000-4000-8000-0000000000b0',
  MicrosoftAppPassword: 'test-secret-value',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.path);
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('accepts a minimal MultiTenant configuration with public-cloud defaults', () => {
    const config = loadConfig(base);
    expect(config.cloud.name).toBe('public');
    expect(config.inbound).toEqual({
      appId: base.MicrosoftAppId,
      openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
      tokenIssuer: 'https://api.botframework.com',
    });
    expect(config.outbound.credential).toEqual({
      kind: 'secret',
      tenantId: 'botframework.com',
      clientSecret: 'test-secret-value',
    });
    expect(config.outbound.queueName).toBe('outbound-messages');
    expect(config.outbound.poisonQueueName).toBe('outbound-messages-poison');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every bad setting in one error', () => {
    const problems = problemsOf({
      MicrosoftAppType: 'Sometimes',
      BOT_CLOUD: 'mars',
      BOT_OPENID_METADATA_URL: 'http://insecure.example/meta',
      BOT_TRUSTED_SERVICE_URLS: 'https://ok.example, ftp://bad.example, https://with.path/x',
      BOT_TENANT_RATE_PER_SECOND: 'fast',
      OUTBOUND_QUEUE: 'Bad_Queue',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'MicrosoftAppId',
        'MicrosoftAppType',
        'BOT_CLOUD',
        'BOT_OPENID_METADATA_URL',
        'BOT_TRUSTED_SERVICE_URLS',
        'BOT_TENANT_RATE_PER_SECOND',
        'OUTBOUND_QUEUE',
        'AzureWebJobsStorage',
      ]),
    );
  });

  it('never puts a secret value into the error message', () => {
    try {
      loadConfig({ ...base, MicrosoftAppType: 'UserAssignedMSI' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as Error).message).toContain('MicrosoftAppPassword');
      expect((err as Error).message).toContain('MicrosoftAppTenantId');
      expect((err as Error).message).not.toContain('test-secret-value');
    }
  });

  it('SingleTenant needs its tenant; UserAssignedMSI uses the app id as managed identity client id', () => {
    expect(problemsOf({ ...base, MicrosoftAppType: 'SingleTenant' })).toEqual(['MicrosoftAppTenantId']);
    const single = loadConfig({ ...base, MicrosoftAppType: 'SingleTenant', MicrosoftAppTenantId: 'tenant-1' });
    expect(single.outbound.credential).toMatchObject({ kind: 'secret', tenantId: 'tenant-1' });
    const msi = loadConfig({
      MicrosoftAppId: 'mi-client',
      MicrosoftAppType: 'userassignedmsi',
      MicrosoftAppTenantId: 'tenant-1',
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    });
    expect(msi.outbound.credential).toEqual({ kind: 'managedIdentity', clientId: 'mi-client' });
    expect(msi.outbound.appType).toBe('UserAssignedMSI');
  });

  it('a certificate replaces the secret', () => {
    const config = loadConfig({ MicrosoftAppId: 'a', AzureWebJobsStorage: 'x', BOT_CERTIFICATE: '/etc/bot.pem' });
    expect(config.outbound.credential).toMatchObject({ kind: 'certificate', certificate: { path: '/etc/bot.pem' } });
  });

  it('selects gov presets and honours overrides', () => {
    const config = loadConfig({
      ...base,
      BOT_CLOUD: 'GCCHigh',
      BOT_AUTHORITY_HOST: 'https://127.0.0.1:4000',
      BOT_TRUSTED_SERVICE_URLS: 'https://127.0.0.1:5000/',
    });
    expect(config.inbound.tokenIssuer).toBe('https://api.botframework.us');
    expect(config.outbound.credential).toMatchObject({ tenantId: 'MicrosoftServices.onmicrosoft.us' });
    expect(config.outbound.authorityOverridden).toBe(true);
    expect(config.outbound.trustedOrigins).toEqual(['https://127.0.0.1:5000']);
    expect(config.outbound.trustedHosts).toContain('smba.infra.gov.teams.microsoft.us');
  });

  it('retries InvalidBotApiHost on the GCC host in the public cloud only', () => {
    expect(loadConfig(base).outbound.gccServiceUrl).toBe('https://smba.infra.gcc.teams.microsoft.com/teams/');
    expect(loadConfig({ ...base, BOT_CLOUD: 'gcchigh' }).outbound.gccServiceUrl).toBeUndefined();
    expect(loadConfig({ ...base, BOT_CLOUD: 'dod' }).outbound.gccServiceUrl).toBeUndefined();
  });

  it('refuses a Key Vault reference the platform did not resolve, naming the setting and what to do', () => {
    const env = {
      ...base,
      MicrosoftAppPassword: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/bot)',
    };
    expect(problemsOf(env)).toEqual(['MicrosoftAppPassword']);
    expect(() => loadConfig(env)).toThrow(/could not resolve.*Key Vault Secrets User/);
  });

  it('Entra callers of /api/notify: audience, tenant and a validated caller list', () => {
    const tenant = '72f988bf-0000-4000-8000-00000000c0de';
    const config = loadConfig({
      ...base,
      FLOW_AUTH_AUDIENCE: 'api://teams-courier, 11111111-0000-4000-8000-000000000001',
      FLOW_AUTH_TENANT_ID: tenant,
      FLOW_CALLERS: JSON.stringify([
        { name: 'billing', objectId: 'oid-1' },
        { name: 'hr', appId: 'app-2', tenants: [tenant] },
      ]),
    });
    expect(config.flowAuth).toMatchObject({
      audiences: ['api://teams-courier', '11111111-0000-4000-8000-000000000001'],
      tenantId: tenant,
      authorityHost: 'https://login.microsoftonline.com',
    });
    expect(config.outbound.callerTenants).toEqual(
      new Map([
        ['billing', null],
        ['hr', [tenant]],
      ]),
    );
    expect(loadConfig(base).flowAuth).toBeUndefined();

    expect(problemsOf({ ...base, FLOW_AUTH_AUDIENCE: 'api://x' })).toEqual(['FLOW_AUTH_TENANT_ID', 'FLOW_CALLERS']);
    expect(problemsOf({ ...base, FLOW_CALLERS: '[]' })).toEqual(['FLOW_CALLERS']);
    expect(
      problemsOf({
        ...base,
        FLOW_AUTH_AUDIENCE: 'api://x',
        FLOW_AUTH_TENANT_ID: tenant,
        FLOW_CALLERS: JSON.stringify([
          { name: 'a b', objectId: 'x' },
          { name: 'ok' },
          { name: 'ok', objectId: 'y', tenants: [], extra: 1 },
        ]),
      }),
    ).toEqual([
      'FLOW_CALLERS[0].name',
      'FLOW_CALLERS[1]',
      'FLOW_CALLERS[2]',
      'FLOW_CALLERS[2].name',
      'FLOW_CALLERS[2].tenants',
    ]);
  });

  it('supports identity-based storage like the Functions host', () => {
    const config = loadConfig({
      MicrosoftAppId: 'a',
      MicrosoftAppPassword: 'p',
      AzureWebJobsStorage__accountName: 'courierstore',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: 'cid',
    });
    expect(config.storage).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://courierstore.table.core.windows.net',
      queueServiceUri: 'https://courierstore.queue.core.windows.net',
      credential: 'managedidentity',
      clientId: 'cid',
    });
  });

  it('proactive installation is off by default and validated when on; batch limits have defaults and ranges', () => {
    const plain = loadConfig(base);
    expect(plain.outbound.graphInstall).toBeUndefined();
    expect(plain.outbound.batch).toEqual({ membersPerRequest: 100, pollIntervalMs: 10_000 });
    const on = loadConfig({
      ...base,
      TEAMS_APP_CATALOG_ID: '1542629c-01b3-4a6d-8f76-1938b779e48d',
      GRAPH_BASE_URL: 'https://127.0.0.1:4443/v1.0/',
      BATCH_MEMBERS_PER_REQUEST: '250',
      BATCH_POLL_INTERVAL_MS: '2000',
      MicrosoftAppTenantId: 'home-tenant',
    });
    expect(on.outbound.graphInstall).toEqual({
      catalogId: '1542629c-01b3-4a6d-8f76-1938b779e48d',
      baseUrl: 'https://127.0.0.1:4443/v1.0/',
    });
    expect(on.outbound.homeTenantId).toBe('home-tenant');
    expect(on.outbound.batch).toEqual({ membersPerRequest: 250, pollIntervalMs: 2000 });
    expect(
      problemsOf({
        ...base,
        TEAMS_APP_CATALOG_ID: '../appCatalogs',
        GRAPH_BASE_URL: 'http://graph.example',
        BATCH_MEMBERS_PER_REQUEST: '5',
        BATCH_POLL_INTERVAL_MS: 'soon',
      }),
    ).toEqual(['GRAPH_BASE_URL', 'TEAMS_APP_CATALOG_ID', 'BATCH_MEMBERS_PER_REQUEST', 'BATCH_POLL_INTERVAL_MS']);
  });

  it('treats empty strings as unset', () => {
    expect(problemsOf({ ...base, MicrosoftAppId: '  ' })).toEqual(['MicrosoftAppId']);
  });

  it('documents every setting it reads', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of [
      'MicrosoftAppId',
      'MicrosoftAppPassword',
      'MicrosoftAppTenantId',
      'MicrosoftAppType',
      'BOT_CLOUD',
      'BOT_OPENID_METADATA_URL',
      'AzureWebJobsStorage',
    ]) {
      expect(names).toContain(name);
    }
  });
});
