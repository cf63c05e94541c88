import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
    const values = Object.fromEntries(Object.entries<Json>(template.outputs).map(([name, o]) => [name, ctx.evaluate(o.value)]));
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
    expect(channels[0]!.get('properties')).toMatchObject({ channelName: 'MsTeamsChannel', properties: { isEnabled: true } });
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
    expect(allResources(mainContext(SCENARIOS.userAssignedMsi)).some((r) => r.type.startsWith('Microsoft.KeyVault/'))).toBe(false);
  });
});

describe('azd wiring', () => {
  const parameters = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra/main.parameters.json'), 'utf8')).parameters as Record<string, { value: string }>;

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
    const rg = allResources(mainContext(SCENARIOS.userAssignedMsi)).find((r) => r.type === 'Microsoft.Resources/resourceGroups')!;
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
