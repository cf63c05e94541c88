import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, SCENARIOS, allResources, mainContext, type EvaluatedResource } from './arm';

// Built-in role definition ids (shared/reference/azure-functions.md §6; Key Vault Secrets User from
// the Azure built-in roles list).
const ROLE = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a',
  storageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
} as const;
const roleName = Object.fromEntries(Object.entries(ROLE).map(([name, id]) => [id, name]));

interface Grant {
  role: string;
  scope: string;
  principal: string;
  principalType: unknown;
}

function deployed(params: Record<string, unknown>) {
  const resources = allResources(mainContext(params));
  const one = (type: string): EvaluatedResource => {
    const found = resources.filter((r) => r.type === type);
    expect(found, type).toHaveLength(1);
    return found[0]!;
  };
  const grants: Grant[] = resources
    .filter((r) => r.type === 'Microsoft.Authorization/roleAssignments')
    .map((r) => {
      const roleDefinitionId = r.get('properties.roleDefinitionId') as string;
      const m = /^Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/.exec(roleDefinitionId);
      expect(m, `role definition id ${roleDefinitionId}`).not.toBeNull();
      return {
        role: roleName[m![1]!] ?? m![1]!,
        scope: r.get('scope') as string,
        principal: r.get('properties.principalId') as string,
        principalType: r.get('properties.principalType'),
      };
    });
  const identity = one('Microsoft.ManagedIdentity/userAssignedIdentities');
  return {
    grants,
    // The app's identity, read where the assignment is made: reference(<identity id>).principalId.
    appPrincipal: `«reference(${identity.id},2024-11-30)».principalId`,
    account: one('Microsoft.Storage/storageAccounts').id,
    queue: resources.find(
      (r) => r.type === 'Microsoft.Storage/storageAccounts/queueServices/queues' && !r.name.endsWith('-poison'),
    )!.id,
    appInsights: one('Microsoft.Insights/components').id,
    vault: resources.find((r) => r.type === 'Microsoft.KeyVault/vaults')?.id,
  };
}

const sortGrants = (grants: Grant[]) => [...grants].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('role assignments', () => {
  it("UserAssignedMSI defaults: the app identity gets its data roles; the deployer gets the docs' CLI roles", () => {
    const d = deployed(SCENARIOS.userAssignedMsi);
    const app = (role: string, scope: string) => ({
      role,
      scope,
      principal: d.appPrincipal,
      principalType: 'ServicePrincipal',
    });
    // principalId defaults to deployer().objectId; principalType is left out, so Azure looks it up.
    const deployer = (role: string, scope: string) => ({
      role,
      scope,
      principal: '«deployer()».objectId',
      principalType: null,
    });
    expect(d.vault).toBeUndefined();
    expect(sortGrants(d.grants)).toEqual(
      sortGrants([
        app('storageBlobDataOwner', d.account),
        app('storageQueueDataContributor', d.account),
        app('storageTableDataContributor', d.account),
        app('monitoringMetricsPublisher', d.appInsights),
        deployer('storageQueueDataMessageSender', d.queue),
        deployer('storageQueueDataReader', d.account),
        deployer('storageTableDataReader', d.account),
      ]),
    );
  });

  it('SingleTenant + producer: adds Key Vault Secrets User on the vault and Message Sender on the queue for the producer', () => {
    const params = SCENARIOS.singleTenant;
    const d = deployed(params);
    const app = (role: string, scope: string) => ({
      role,
      scope,
      principal: d.appPrincipal,
      principalType: 'ServicePrincipal',
    });
    const deployer = (role: string, scope: string) => ({
      role,
      scope,
      principal: params.principalId,
      principalType: params.principalType,
    });
    expect(d.vault).toBeDefined();
    expect(sortGrants(d.grants)).toEqual(
      sortGrants([
        app('storageBlobDataOwner', d.account),
        app('storageQueueDataContributor', d.account),
        app('storageTableDataContributor', d.account),
        app('monitoringMetricsPublisher', d.appInsights),
        app('keyVaultSecretsUser', d.vault!),
        {
          role: 'storageQueueDataMessageSender',
          scope: d.queue,
          principal: params.producerPrincipalId,
          principalType: 'ServicePrincipal',
        },
        deployer('storageQueueDataMessageSender', d.queue),
        deployer('storageQueueDataReader', d.account),
        deployer('storageTableDataReader', d.account),
      ]),
    );
  });

  it("the deployer's principal type is looked up by Azure unless given, so a service principal can run the CLI path", () => {
    const types = (params: Record<string, unknown>) => {
      const d = deployed(params);
      return [...new Set(d.grants.filter((g) => g.principal !== d.appPrincipal).map((g) => g.principalType))];
    };
    // `az deployment sub create` as a service principal: no principalType, so no fixed 'User' to fail on.
    expect(types(SCENARIOS.userAssignedMsi)).toEqual([null]);
    // azd passes the type it signed in with (AZURE_PRINCIPAL_TYPE).
    expect(types({ ...SCENARIOS.userAssignedMsi, principalType: 'ServicePrincipal' })).toEqual(['ServicePrincipal']);
    expect(types({ ...SCENARIOS.userAssignedMsi, principalType: 'User' })).toEqual(['User']);
  });

  it('an empty principalId assigns nothing to the deployer', () => {
    const d = deployed({ ...SCENARIOS.userAssignedMsi, principalId: '' });
    expect(d.grants.map((g) => g.principal)).toEqual(Array(4).fill(d.appPrincipal));
  });

  it('gives every role assignment in the Bicep a comment saying what needs it', () => {
    const modules = path.join(REPO_ROOT, 'infra/modules');
    const files = ['main.bicep', ...fs.readdirSync(modules).map((f) => `modules/${f}`)].filter((f) =>
      f.endsWith('.bicep'),
    );
    let count = 0;
    for (const file of files) {
      const lines = fs.readFileSync(path.join(REPO_ROOT, 'infra', file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/^\s*resource \w+ 'Microsoft\.Authorization\/roleAssignments@/.test(line)) return;
        count++;
        expect(lines[i - 1], `${file}:${i + 1} needs a comment above it`).toMatch(/^\s*\/\/ \S/);
      });
    }
    expect(count).toBe(9);
  });
});
