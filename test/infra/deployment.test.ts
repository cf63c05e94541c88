import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config';
import { REPO_ROOT, SCENARIOS, allResources, allTemplates, mainContext, readMainTemplate, type Json } from './arm';

const template = readMainTemplate();

describe('outputs', () => {
  it('has the azd conventional outputs and the ones the docs use', () => {
    expect(Object.keys(template.outputs)).toEqual(
      expect.arrayContaining([
        'AZURE_LOCATION',
        'AZURE_TENANT_ID',
        'AZURE_RESOURCE_GROUP',
        'SERVICE_API_NAME',
        'AZURE_FUNCTION_NAME',
        'BOT_APP_ID',
        'BOT_MESSAGING_ENDPOINT',
        'MANAGED_IDENTITY_CLIENT_ID',
        'AZURE_STORAGE_ACCOUNT_NAME',
        'OUTBOUND_QUEUE_ENDPOINT',
        'OUTBOUND_QUEUE_NAME',
      ]),
    );
  });

  it('contains no secret, in main or in any module', () => {
    for (const { label, template: t } of allTemplates(template)) {
      const secureParams = Object.entries<Json>(t.parameters ?? {})
        .filter(([, p]) => /^secure/i.test(p.type))
        .map(([name]) => name);
      for (const [name, output] of Object.entries<Json>(t.outputs ?? {})) {
        const where = `${label} output ${name}`;
        expect(output.type, where).not.toMatch(/^secure/i);
        const text = JSON.stringify(output.value);
        expect(text, where).not.toMatch(/list[A-Z]\w*\(|listKeys|listSecrets|ConnectionString|properties\.value/i);
        for (const secure of secureParams) expect(text, where).not.toContain(`parameters('${secure}')`);
      }
    }
  });

  it('never echoes the bot secret (SingleTenant)', () => {
    const ctx = mainContext(SCENARIOS.singleTenant);
    const values = Object.fromEntries(
      Object.entries<Json>(template.outputs).map(([name, o]) => [name, ctx.evaluate(o.value)]),
    );
    expect(JSON.stringify(values)).not.toContain(SCENARIOS.singleTenant.botAppPassword);
    expect(values.BOT_APP_ID).toBe(SCENARIOS.singleTenant.botAppId);
    expect(values.OUTBOUND_QUEUE_NAME).toBe('«reference(storage)».outputs.queueName.value');
    expect(values.BOT_MESSAGING_ENDPOINT).toBe('https://«reference(app)».outputs.defaultHostName.value/api/messages');
  });

  it('takes the bot secret only as a secure parameter', () => {
    expect(template.parameters.botAppPassword.type).toBe('securestring');
    expect(template.parameters.botAppPassword.defaultValue).toBe('');
  });
});

describe('bot', () => {
  const botOf = (params: Record<string, unknown>) => {
    const resources = allResources(mainContext(params));
    const bot = resources.find((r) => r.type === 'Microsoft.BotService/botServices')!;
    const channels = resources.filter((r) => r.type === 'Microsoft.BotService/botServices/channels');
    return { bot, channels };
  };

  it('is a global Azure Bot with the Teams channel, pointing at /api/messages on the app', () => {
    const { bot, channels } = botOf(SCENARIOS.userAssignedMsi);
    expect(bot.raw.apiVersion).toBe('2022-09-15');
    expect(bot.get('kind')).toBe('azurebot');
    expect(bot.get('location')).toBe('global');
    // main builds the endpoint from the app module's default host name.
    expect(bot.get('properties.endpoint')).toBe('https://«reference(app)».outputs.defaultHostName.value/api/messages');
    expect(channels).toHaveLength(1);
    expect(channels[0]!.get('properties')).toMatchObject({
      channelName: 'MsTeamsChannel',
      properties: { isEnabled: true },
    });
  });

  it('UserAssignedMSI by default: the app identity is the bot', () => {
    const { bot } = botOf(SCENARIOS.userAssignedMsi);
    expect(bot.get('properties')).toMatchObject({
      msaAppType: 'UserAssignedMSI',
      msaAppId: '«reference(identity)».outputs.clientId.value',
      msaAppMSIResourceId: '«reference(identity)».outputs.id.value',
      msaAppTenantId: '«tenant()».tenantId',
    });
  });

  it('SingleTenant: the given app registration, no managed identity', () => {
    const { bot } = botOf(SCENARIOS.singleTenant);
    expect(bot.get('properties')).toMatchObject({
      msaAppType: 'SingleTenant',
      msaAppId: SCENARIOS.singleTenant.botAppId,
      msaAppMSIResourceId: null,
    });
  });

  it('SingleTenant: the secret lives in an RBAC-authorized Key Vault', () => {
    const resources = allResources(mainContext(SCENARIOS.singleTenant));
    const vault = resources.find((r) => r.type === 'Microsoft.KeyVault/vaults')!;
    expect(vault.get('properties.enableRbacAuthorization')).toBe(true);
    const secret = resources.find((r) => r.type === 'Microsoft.KeyVault/vaults/secrets')!;
    expect(secret.get('properties.value')).toBe(SCENARIOS.singleTenant.botAppPassword);
    // The module receives it as a secure parameter, so it is not logged with the deployment.
    expect(secret.ctx.template.parameters.botAppPassword.type).toBe('securestring');
    expect(
      allResources(mainContext(SCENARIOS.userAssignedMsi)).some((r) => r.type.startsWith('Microsoft.KeyVault/')),
    ).toBe(false);
  });
});

describe('azd wiring', () => {
  const parameters = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra/main.parameters.json'), 'utf8'))
    .parameters as Record<string, { value: string }>;

  it('main.parameters.json only sets parameters main.bicep declares, and every required one', () => {
    const declared = Object.keys(template.parameters);
    expect(declared).toEqual(expect.arrayContaining(Object.keys(parameters)));
    const required = Object.entries<Json>(template.parameters)
      .filter(([, p]) => !('defaultValue' in p))
      .map(([name]) => name);
    expect(Object.keys(parameters)).toEqual(expect.arrayContaining(required));
  });

  it('maps the azd environment', () => {
    expect(parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
    expect(parameters.location?.value).toBe('${AZURE_LOCATION}');
    expect(parameters.principalId?.value).toBe('${AZURE_PRINCIPAL_ID}');
  });

  it('creates the resource group rg-<environmentName> at subscription scope', () => {
    expect(template.$schema).toMatch(/subscriptionDeploymentTemplate\.json/);
    const rg = allResources(mainContext(SCENARIOS.userAssignedMsi)).find(
      (r) => r.type === 'Microsoft.Resources/resourceGroups',
    )!;
    expect(rg.name).toBe(`rg-${SCENARIOS.userAssignedMsi.environmentName}`);
  });

  it('azure.yaml deploys the repository root as the TypeScript function service `api`', () => {
    const yaml = fs.readFileSync(path.join(REPO_ROOT, 'azure.yaml'), 'utf8');
    const api = /^ {2}api:\n((?: {4}.*\n|\s*\n)+)/m.exec(yaml)?.[1] ?? '';
    expect(api).toMatch(/^ {4}project: \.$/m);
    expect(api).toMatch(/^ {4}language: ts$/m);
    expect(api).toMatch(/^ {4}host: function$/m);
  });
});

describe('scale (Flex Consumption)', () => {
  const siteOf = (params: Record<string, unknown>) =>
    allResources(mainContext(params)).find((r) => r.type === 'Microsoft.Web/sites')!;
  const parameters = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra/main.parameters.json'), 'utf8'))
    .parameters as Record<string, { value: string }>;

  it('caps each function group at 40 instances by default, the lowest every region accepts; 1-1000 may be given', () => {
    expect(template.parameters.maximumInstanceCount).toMatchObject({ defaultValue: 40, minValue: 1, maxValue: 1000 });
    expect(
      siteOf(SCENARIOS.userAssignedMsi).get('properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount'),
    ).toBe(40);
    expect(
      siteOf({ ...SCENARIOS.userAssignedMsi, maximumInstanceCount: 10 }).get(
        'properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount',
      ),
    ).toBe(10);
    expect(parameters.maximumInstanceCount?.value).toBe('${MAXIMUM_INSTANCE_COUNT=40}');
  });

  it("sends at most BOT_TENANT_RATE_PER_SECOND per tenant, all instances together, with the app's default", () => {
    const spec = SETTINGS.find((s) => s.name === 'BOT_TENANT_RATE_PER_SECOND')!;
    expect(String(template.parameters.tenantRatePerSecond.defaultValue)).toBe(spec.default);
    expect(template.parameters.tenantRatePerSecond.metadata.description).toMatch(/all instances together/);
    expect(parameters.tenantRatePerSecond?.value).toBe(`\${BOT_TENANT_RATE_PER_SECOND=${spec.default}}`);
  });

  it('keeps no instance always ready by default, and one for the HTTP group when asked', () => {
    const alwaysReady = (params: Record<string, unknown>) =>
      siteOf(params).get('properties.functionAppConfig.scaleAndConcurrency.alwaysReady');
    expect(template.parameters.alwaysReadyHttpInstances.defaultValue).toBe(0);
    expect(alwaysReady(SCENARIOS.userAssignedMsi)).toEqual([]);
    expect(alwaysReady({ ...SCENARIOS.userAssignedMsi, alwaysReadyHttpInstances: 1 })).toEqual([
      { name: 'http', instanceCount: 1 },
    ]);
  });
});

describe('docs/deploy.md', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/deploy.md'), 'utf8');
  const section = (title: string) => {
    const start = doc.indexOf(`\n## ${title}\n`);
    expect(start, `section ${title}`).toBeGreaterThanOrEqual(0);
    const end = doc.indexOf('\n## ', start + 1);
    return doc.slice(start, end === -1 ? undefined : end);
  };
  const parameters = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra/main.parameters.json'), 'utf8'))
    .parameters as Record<string, { value: string }>;

  it('documents every azd variable main.parameters.json reads', () => {
    const variables = Object.values(parameters).map(({ value }) => /^\$\{(\w+)/.exec(value)![1]!);
    expect(
      variables.filter((v) => !['AZURE_ENV_NAME', 'AZURE_LOCATION'].includes(v) && !doc.includes(`\`${v}`)),
    ).toEqual([]);
  });

  it("says up front that the subscription's tenant and the Teams tenant must be the same", () => {
    const first = section('Prerequisites').split('\n- ')[1] ?? '';
    expect(first).toMatch(/One tenant for Azure and Teams/);
    expect(first).toMatch(/must be the\s+same tenant/);
  });

  it('has a troubleshooting row, with a fix, for each failure of issue 17', () => {
    const rows = section('Troubleshooting')
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| Symptom') && !l.startsWith('|---'))
      .map((l) => l.split(' | '));
    expect(
      rows.every((cells) => cells.length === 2 && cells.every((c) => c.replace(/\|/g, '').trim().length > 10)),
    ).toBe(true);
    const row = (pattern: RegExp) => rows.find(([symptom]) => pattern.test(symptom!))?.[1] ?? '';
    expect(row(/403/)).toMatch(/azd deploy/);
    expect(row(/BOT_APP_TYPE/)).toMatch(/az bot delete/);
    expect(row(/service principal.*principal type/)).toMatch(/ServicePrincipal/);
    expect(row(/Key Vault:.*deleted state/)).toMatch(/az keyvault purge.*az keyvault recover/s);
    expect(row(/SingleTenant.*AADSTS/)).toMatch(/az ad sp create/);
    expect(row(/Key Vault reference the platform could not resolve/)).toMatch(/restart/);
    expect(row(/401/)).toMatch(/App Service Authentication/);
    expect(row(/set in the portal/)).toMatch(/azd env set/);
    expect(row(/MAXIMUM_INSTANCE_COUNT/)).toMatch(/40/);
  });

  it('never recommends App Service Authentication, and says /api/messages must be excluded if it is on', () => {
    const paragraphs = doc.split(/\n\s*\n/).filter((p) => /App Service Authentication/.test(p));
    expect(paragraphs.length).toBeGreaterThan(0);
    for (const p of paragraphs)
      expect(p).toMatch(
        /Do not turn on App Service Authentication|Turn it off|exclude `\/api\/messages`|`\/api\/messages` must be excluded/,
      );
    expect(section('Authentication in front of the app')).toMatch(/`\/api\/messages` must be excluded/);
  });

  it('states the scale defaults the template has', () => {
    const scale = section('Scale');
    expect(scale).toMatch(
      new RegExp(`\`maximumInstanceCount\`: ${template.parameters.maximumInstanceCount.defaultValue} by default`),
    );
    expect(scale).toMatch(
      new RegExp(`\`BOT_TENANT_RATE_PER_SECOND\`: ${template.parameters.tenantRatePerSecond.defaultValue} by default`),
    );
    expect(scale).toMatch(/all instances together/);
    expect(scale).toMatch(/`alwaysReadyHttpInstances`: 0 by default/);
    expect(section('Costs')).toMatch(/a month/);
  });
});
