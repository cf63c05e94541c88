import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config';
import { SCENARIOS, allResources, mainContext, type EvaluatedResource } from './arm';

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

function site(params: Record<string, unknown>) {
  const resources = allResources(mainContext(params));
  const sites = resources.filter((r) => r.type === 'Microsoft.Web/sites');
  expect(sites).toHaveLength(1);
  const app = sites[0]!;
  const list = app.get('properties.siteConfig.appSettings') as { name: string; value: unknown }[];
  const settings = new Map(list.map((s) => [s.name, s.value]));
  expect(settings.size, 'no duplicate names').toBe(list.length);
  const identity = resources.find((r) => r.type === 'Microsoft.ManagedIdentity/userAssignedIdentities') as EvaluatedResource;
  return { app, settings, resources, identity };
}

// main passes module outputs on as `reference('<module>').outputs.<name>.value`.
const moduleOutput = (module: string, output: string) => `«reference(${module})».outputs.${output}.value`;

describe.each(Object.entries(SCENARIOS))('Function App settings (%s)', (_scenario, params) => {
  const { app, settings, resources, identity } = site(params);
  const names = [...settings.keys()];

  it('sets every setting src/config.ts marks `deployed: true`', () => {
    const deployed = SETTINGS.filter((s) => s.deployed).map((s) => s.name);
    expect(deployed.length).toBeGreaterThan(0);
    expect(names).toEqual(expect.arrayContaining(deployed));
  });

  it('sets nothing the app does not read, except the host\'s Application Insights settings', () => {
    const known = new Set(SETTINGS.filter((s) => s.deployed).map((s) => s.name));
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
    expect(app.get('identity')).toEqual({ type: 'UserAssigned', userAssignedIdentities: { [moduleOutput('identity', 'id')]: {} } });
  });

  it('sends telemetry with Entra auth (local auth is off on the component)', () => {
    expect(settings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe(`ClientId=${moduleOutput('identity', 'clientId')};Authorization=AAD`);
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
});

describe('bot credentials in app settings', () => {
  it('UserAssignedMSI: the identity is the bot, and no password is set (empty counts as unset)', () => {
    const { settings } = site(SCENARIOS.userAssignedMsi);
    expect(settings.get('MicrosoftAppType')).toBe('UserAssignedMSI');
    expect(settings.get('MicrosoftAppId')).toBe(moduleOutput('identity', 'clientId'));
    expect(settings.get('MicrosoftAppTenantId')).toBe('«tenant()».tenantId');
    expect(settings.get('MicrosoftAppPassword')).toBe('');
  });

  it('SingleTenant: the registration id, and the secret only as a Key Vault reference resolved with the identity', () => {
    const { app, settings } = site(SCENARIOS.singleTenant);
    expect(settings.get('MicrosoftAppType')).toBe('SingleTenant');
    expect(settings.get('MicrosoftAppId')).toBe(SCENARIOS.singleTenant.botAppId);
    expect(settings.get('MicrosoftAppPassword')).toBe(`@Microsoft.KeyVault(SecretUri=${moduleOutput('keyVault', 'botSecretUri')})`);
    expect(app.get('properties.keyVaultReferenceIdentity')).toBe(moduleOutput('identity', 'id'));
    expect(JSON.stringify(app.get('properties'))).not.toContain(SCENARIOS.singleTenant.botAppPassword);
  });

  it('SingleTenant without an app id or secret fails the deployment with a clear message', () => {
    const { botAppId: _id, ...withoutId } = SCENARIOS.singleTenant;
    expect(() => site(withoutId)).toThrow(/botAppId is required when botAppType is SingleTenant/);
    expect(() => site({ ...SCENARIOS.singleTenant, botAppPassword: '' })).toThrow(/botAppPassword is required/);
  });
});
