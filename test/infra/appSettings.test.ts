import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config';
import {
  REPO_ROOT,
  SCENARIOS,
  allResources,
  mainContext,
  moduleOf,
  readMainTemplate,
  type EvaluatedResource,
  type Json,
} from './arm';

/** Settings the Functions host itself reads (not the app's config module). */
const isHostSetting = (name: string) => /^APPLICATIONINSIGHTS_/.test(name);

/** Settings Flex Consumption rejects or ignores (functions-app-settings, "Flex Consumption plan deprecations"). */
const FLEX_FORBIDDEN = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'SCM_DO_BUILD_DURING_DEPLOYMENT',
  'ENABLE_ORYX_BUILD',
  'WEBSITES_CONTAINER_START_TIME_LIMIT',
  'WEBSITE_TIME_ZONE',
  'TZ',
  'WEBSITE_NODE_DEFAULT_VERSION',
];

/**
 * Settings in SETTINGS that the template owns, so no parameter sets them one to one. Every other
 * setting is one a user may want, and must be a parameter (below).
 */
const TEMPLATE_MANAGED: Record<string, string> = {
  MicrosoftAppId:
    "the identity's client id or botAppId: the Azure Bot resource and the app must agree, so both come from the same value",
  MicrosoftAppType: "botAppType, which also decides the Azure Bot's type and the Key Vault",
  MicrosoftAppTenantId: "the subscription's tenant (tenant()), where the bot identity is created",
  MicrosoftAppPassword: 'a Key Vault reference to botAppPassword; the secret itself never reaches app settings',
  AzureWebJobsStorage:
    'a connection string needs shared keys, which the storage account has off; the identity-based settings are set instead (an exact-match setting would shadow them)',
  AzureWebJobsStorage__accountName: 'an alternative to the service URIs the template sets from its own storage account',
  AzureWebJobsStorage__tableServiceUri: "the template's storage account",
  AzureWebJobsStorage__queueServiceUri: "the template's storage account",
  AzureWebJobsStorage__blobServiceUri: "the template's storage account",
  AzureWebJobsStorage__credential: 'always the managed identity',
  AzureWebJobsStorage__clientId: "the template's user-assigned identity",
};

const USER_SETTINGS = SETTINGS.filter((s) => !Object.hasOwn(TEMPLATE_MANAGED, s.name));

const template = readMainTemplate();
const parametersFile = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra/main.parameters.json'), 'utf8'))
  .parameters as Record<string, { value: string }>;

function site(params: Record<string, unknown>) {
  const resources = allResources(mainContext(params));
  const sites = resources.filter((r) => r.type === 'Microsoft.Web/sites');
  expect(sites).toHaveLength(1);
  const app = sites[0]!;
  const list = app.get('properties.siteConfig.appSettings') as { name: string; value: unknown }[];
  const settings = new Map(list.map((s) => [s.name, s.value]));
  expect(settings.size, 'no duplicate names').toBe(list.length);
  const identity = resources.find(
    (r) => r.type === 'Microsoft.ManagedIdentity/userAssignedIdentities',
  ) as EvaluatedResource;
  return { app, settings, resources, identity };
}

// main passes module outputs on as `reference('<module>').outputs.<name>.value`.
const moduleOutput = (module: string, output: string) => `«reference(${module})».outputs.${output}.value`;

/** The value of the Key Vault secret an app setting refers to (`@Microsoft.KeyVault(SecretUri=<module output>)`). */
function keyVaultSecretOf(params: Record<string, unknown>, setting: unknown): unknown {
  const m =
    typeof setting === 'string'
      ? /^@Microsoft\.KeyVault\(SecretUri=«reference\((\w+)\)»\.outputs\.(\w+)\.value\)$/.exec(setting)
      : null;
  if (!m) return undefined;
  const module = moduleOf(mainContext(params), m[1]!);
  const uri = module.ctx.evaluate(module.ctx.template.outputs[m[2]!].value) as string;
  const secret = allResources(module.ctx).find(
    (r) => r.type === 'Microsoft.KeyVault/vaults/secrets' && uri.includes(r.id),
  );
  return secret?.get('properties.value');
}

/** A value for a main.bicep parameter that can only come from that parameter. */
function sentinelFor(name: string, type: string, index: number): { value: unknown; text: string } | undefined {
  const text = `SENTINEL-${name}`;
  switch (type.toLowerCase()) {
    case 'string':
    case 'securestring':
      return { value: text, text };
    case 'int': {
      const n = 90_001 + index * 7;
      return { value: n, text: String(n) };
    }
    case 'object':
      return { value: { sentinel: text }, text };
    case 'array':
      return { value: [text], text };
    default:
      return undefined; // bool: no app setting carries a flag
  }
}

/**
 * For each app setting, the main.bicep parameters whose value reaches it (directly, or through a
 * Key Vault secret), found by giving one parameter at a time a value nothing else produces.
 */
function settingSources(base: Record<string, unknown>): Map<string, Set<string>> {
  const sources = new Map<string, Set<string>>();
  Object.entries<Json>(template.parameters).forEach(([name, def], index) => {
    const sentinel = sentinelFor(name, def.type, index);
    if (sentinel === undefined) return;
    const params = { ...base, [name]: sentinel.value };
    let settings: Map<string, unknown>;
    try {
      settings = site(params).settings;
    } catch {
      return; // a value the template refuses (fail()), e.g. botAppType: not a free-form setting
    }
    for (const [setting, value] of settings) {
      const viaVault = keyVaultSecretOf(params, value);
      if (
        JSON.stringify(value).includes(sentinel.text) ||
        (typeof viaVault === 'string' && viaVault.includes(sentinel.text))
      ) {
        sources.set(setting, (sources.get(setting) ?? new Set()).add(name));
      }
    }
  });
  return sources;
}

describe.each(Object.entries(SCENARIOS))('Function App settings (%s)', (_scenario, params) => {
  const { app, settings, resources, identity } = site(params);
  const names = [...settings.keys()];

  it('sets every setting src/config.ts marks `deployed: true`', () => {
    const deployed = SETTINGS.filter((s) => s.deployed).map((s) => s.name);
    expect(deployed.length).toBeGreaterThan(0);
    expect(names).toEqual(expect.arrayContaining(deployed));
  });

  it("sets every setting a user may set, and nothing the app does not read except the host's Application Insights settings", () => {
    expect(names).toEqual(expect.arrayContaining(USER_SETTINGS.map((s) => s.name)));
    const known = new Set(SETTINGS.map((s) => s.name));
    expect(names.filter((n) => !known.has(n) && !isHostSetting(n))).toEqual([]);
  });

  it('sets none of the settings Flex Consumption forbids, and no storage connection string', () => {
    expect(names.filter((n) => FLEX_FORBIDDEN.includes(n))).toEqual([]);
    expect(names).not.toContain('AzureWebJobsStorage');
  });

  it('uses identity-based storage with the user-assigned identity', () => {
    expect(settings.get('AzureWebJobsStorage__credential')).toBe('managedidentity');
    expect(settings.get('AzureWebJobsStorage__clientId')).toBe(moduleOutput('identity', 'clientId'));
    expect(settings.get('AzureWebJobsStorage__blobServiceUri')).toBe(moduleOutput('storage', 'blobEndpoint'));
    expect(settings.get('AzureWebJobsStorage__queueServiceUri')).toBe(moduleOutput('storage', 'queueEndpoint'));
    expect(settings.get('AzureWebJobsStorage__tableServiceUri')).toBe(moduleOutput('storage', 'tableEndpoint'));
    expect(settings.get('OUTBOUND_QUEUE')).toBe(SETTINGS.find((s) => s.name === 'OUTBOUND_QUEUE')!.default);
    expect(app.get('identity')).toEqual({
      type: 'UserAssigned',
      userAssignedIdentities: { [moduleOutput('identity', 'id')]: {} },
    });
  });

  it('sends telemetry with Entra auth (local auth is off on the component)', () => {
    expect(settings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe(
      `ClientId=${moduleOutput('identity', 'clientId')};Authorization=AAD`,
    );
    const component = resources.find((r) => r.type === 'Microsoft.Insights/components')!;
    expect(component.get('properties.DisableLocalAuth')).toBe(true);
  });

  it('runs Node 22 on Flex Consumption (FC1), https only, tagged for azd', () => {
    expect(app.get('properties.functionAppConfig.runtime')).toEqual({ name: 'node', version: '22' });
    expect(app.get('properties.httpsOnly')).toBe(true);
    expect(app.get('kind')).toBe('functionapp,linux');
    expect(app.get('tags')).toMatchObject({ 'azd-service-name': 'api' });
    const plan = resources.find((r) => r.type === 'Microsoft.Web/serverfarms')!;
    expect(plan.get('sku')).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
    expect(identity).toBeDefined();
  });

  it("leaves every optional user setting empty by default (read as unset), or at the app's own default", () => {
    for (const spec of USER_SETTINGS) {
      const value = settings.get(spec.name);
      expect([''].concat(spec.default === undefined ? [] : [spec.default]), spec.name).toContain(value);
    }
  });
});

describe('every setting a user may set is a deployment parameter (src/config.ts SETTINGS)', () => {
  // SingleTenant exercises the Key Vault path (BOT_CERTIFICATE); the parameters are the same otherwise.
  const sources = settingSources(SCENARIOS.singleTenant);
  const userSettings = USER_SETTINGS.map((s) => s.name);

  it('knows a reason for every setting the template owns, and each is one SETTINGS lists', () => {
    for (const name of Object.keys(TEMPLATE_MANAGED))
      expect(
        SETTINGS.map((s) => s.name),
        name,
      ).toContain(name);
    expect(userSettings).toEqual(
      expect.arrayContaining([
        'WELCOME_MESSAGE',
        'WELCOME_CARD',
        'DELIVERY_MAX_ATTEMPTS',
        'CONNECTOR_TIMEOUT_MS',
        'BOT_CERTIFICATE',
      ]),
    );
    expect(userSettings).toEqual(expect.arrayContaining(['FLOW_AUTH_AUDIENCE', 'FLOW_AUTH_TENANT_ID', 'FLOW_CALLERS']));
  });

  it.each(userSettings)('%s comes from a main.bicep parameter', (name) => {
    expect([...(sources.get(name) ?? [])], `no parameter reaches ${name}`).toHaveLength(1);
  });

  it.each(userSettings)('%s: azd maps that parameter from the environment variable of the same name', (name) => {
    const [parameter] = [...(sources.get(name) ?? [])];
    expect(parameter, name).toBeDefined();
    expect(parametersFile[parameter!]?.value, `infra/main.parameters.json ${parameter}`).toMatch(
      new RegExp(`^\\$\\{${name}(=[^}]*)?\\}$`),
    );
  });

  it('maps every main.bicep parameter in main.parameters.json, except the CLI-only resource group name', () => {
    const unmapped = Object.keys(template.parameters).filter((p) => !Object.hasOwn(parametersFile, p));
    expect(unmapped).toEqual(['resourceGroupName']);
  });

  it('gives main.parameters.json the same defaults as main.bicep', () => {
    for (const [parameter, { value }] of Object.entries(parametersFile)) {
      const m = /^\$\{\w+=(.*)\}$/.exec(value);
      const def = template.parameters[parameter]?.defaultValue;
      if (!m || typeof def === 'object' || (typeof def === 'string' && def.startsWith('['))) continue;
      expect(m[1], parameter).toBe(String(def));
    }
  });
});

describe('user settings in the deployed app', () => {
  it('writes JSON settings as compact JSON text, and an empty object or list as unset', () => {
    const card = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'Hi "there"' }] };
    const callers = [
      { appId: '33333333-4444-4555-8666-777777777777', tenantId: '44444444-5555-4666-8777-888888888888' },
    ];
    const { settings } = site({ ...SCENARIOS.userAssignedMsi, welcomeCard: card, flowCallers: callers });
    expect(JSON.parse(settings.get('WELCOME_CARD') as string)).toEqual(card);
    expect(JSON.parse(settings.get('FLOW_CALLERS') as string)).toEqual(callers);
    const defaults = site(SCENARIOS.userAssignedMsi).settings;
    expect(defaults.get('WELCOME_CARD')).toBe('');
    expect(defaults.get('FLOW_CALLERS')).toBe('');
  });

  it("passes numbers as text, at the app's defaults unless given", () => {
    const { settings } = site({
      ...SCENARIOS.userAssignedMsi,
      deliveryMaxAttempts: 3,
      connectorTimeoutMs: 5000,
      tenantRatePerSecond: 20,
    });
    expect(settings.get('DELIVERY_MAX_ATTEMPTS')).toBe('3');
    expect(settings.get('CONNECTOR_TIMEOUT_MS')).toBe('5000');
    expect(settings.get('BOT_TENANT_RATE_PER_SECOND')).toBe('20');
  });

  it('creates and uses the queue OUTBOUND_QUEUE names', () => {
    const { settings, resources } = site({ ...SCENARIOS.userAssignedMsi, outboundQueueName: 'courier-jobs' });
    expect(settings.get('OUTBOUND_QUEUE')).toBe('courier-jobs');
    const queues = resources
      .filter((r) => r.type === 'Microsoft.Storage/storageAccounts/queueServices/queues')
      .map((q) => q.name.split('/').at(-1));
    expect(queues.sort()).toEqual(['courier-jobs', 'courier-jobs-poison']);
  });
});

describe('bot credentials in app settings', () => {
  it('UserAssignedMSI: the identity is the bot, and no password or certificate is set (empty counts as unset)', () => {
    const { settings } = site(SCENARIOS.userAssignedMsi);
    expect(settings.get('MicrosoftAppType')).toBe('UserAssignedMSI');
    expect(settings.get('MicrosoftAppId')).toBe(moduleOutput('identity', 'clientId'));
    expect(settings.get('MicrosoftAppTenantId')).toBe('«tenant()».tenantId');
    expect(settings.get('MicrosoftAppPassword')).toBe('');
    expect(settings.get('BOT_CERTIFICATE')).toBe('');
  });

  it('SingleTenant: the registration id, and the secret only as a Key Vault reference resolved with the identity', () => {
    const { app, settings } = site(SCENARIOS.singleTenant);
    expect(settings.get('MicrosoftAppType')).toBe('SingleTenant');
    expect(settings.get('MicrosoftAppId')).toBe(SCENARIOS.singleTenant.botAppId);
    expect(settings.get('MicrosoftAppPassword')).toBe(
      `@Microsoft.KeyVault(SecretUri=${moduleOutput('keyVault', 'botSecretUri')})`,
    );
    expect(keyVaultSecretOf(SCENARIOS.singleTenant, settings.get('MicrosoftAppPassword'))).toBe(
      SCENARIOS.singleTenant.botAppPassword,
    );
    expect(settings.get('BOT_CERTIFICATE')).toBe('');
    expect(app.get('properties.keyVaultReferenceIdentity')).toBe(moduleOutput('identity', 'id'));
    expect(JSON.stringify(app.get('properties'))).not.toContain(SCENARIOS.singleTenant.botAppPassword);
  });

  it('SingleTenant with a certificate instead of a secret: BOT_CERTIFICATE is a Key Vault reference, no password is stored', () => {
    const pem =
      '-----BEGIN CERTIFICATE-----\nnot-a-real-cert\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n';
    const params = { ...SCENARIOS.singleTenant, botAppPassword: '', botCertificate: pem };
    const { app, settings, resources } = site(params);
    expect(settings.get('BOT_CERTIFICATE')).toBe(
      `@Microsoft.KeyVault(SecretUri=${moduleOutput('keyVault', 'botCertificateUri')})`,
    );
    expect(keyVaultSecretOf(params, settings.get('BOT_CERTIFICATE'))).toBe(pem);
    expect(settings.get('MicrosoftAppPassword')).toBe('');
    expect(
      resources.filter((r) => r.type === 'Microsoft.KeyVault/vaults/secrets').map((r) => r.name.split('/').at(-1)),
    ).toEqual(['bot-certificate']);
    expect(JSON.stringify(app.get('properties'))).not.toContain('not-a-real-key');
  });

  it('SingleTenant without an app id, or without both a secret and a certificate, fails the deployment with a clear message', () => {
    const { botAppId: _id, ...withoutId } = SCENARIOS.singleTenant;
    expect(() => site(withoutId)).toThrow(/botAppId is required when botAppType is SingleTenant/);
    expect(() => site({ ...SCENARIOS.singleTenant, botAppPassword: '' })).toThrow(
      /botAppPassword is required .*botCertificate/,
    );
  });
});
