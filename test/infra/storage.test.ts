import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config';
import { TABLES } from '../../src/store/tables';
import { MAIN_TEMPLATE_PATH, SCENARIOS, allResources, mainContext, moduleOf, type EvaluatedResource } from './arm';

const lastSegment = (name: string) => name.split('/').at(-1);
const outboundQueueDefault = SETTINGS.find((s) => s.name === 'OUTBOUND_QUEUE')?.default;

describe.each(Object.entries(SCENARIOS))('storage (%s)', (_scenario, params) => {
  const resources = allResources(mainContext(params));
  const ofType = (type: string): EvaluatedResource[] => resources.filter((r) => r.type === type);

  it('has exactly one storage account, locked to Entra auth over TLS 1.2+ with no public blobs', () => {
    const accounts = ofType('Microsoft.Storage/storageAccounts');
    expect(accounts).toHaveLength(1);
    const props = accounts[0]!.get('properties') as Record<string, unknown>;
    expect(props).toMatchObject({
      allowSharedKeyAccess: false,
      supportsHttpsTrafficOnly: true,
      minimumTlsVersion: 'TLS1_2',
      allowBlobPublicAccess: false,
    });
  });

  it('creates the outbound queue (OUTBOUND_QUEUE default) and its poison queue', () => {
    expect(outboundQueueDefault).toBe('outbound-messages');
    const queues = ofType('Microsoft.Storage/storageAccounts/queueServices/queues').map((q) => lastSegment(q.name));
    expect(queues.sort()).toEqual([outboundQueueDefault, `${outboundQueueDefault}-poison`].sort());
  });

  it('creates exactly the tables in src/store/tables.ts', () => {
    const tables = ofType('Microsoft.Storage/storageAccounts/tableServices/tables').map((t) => lastSegment(t.name));
    expect(tables.sort()).toEqual(Object.values(TABLES).sort());
  });

  it('creates a private deployment container that the Flex app deploys from with its identity', () => {
    const containers = ofType('Microsoft.Storage/storageAccounts/blobServices/containers');
    expect(containers).toHaveLength(1);
    expect(containers[0]!.get('properties.publicAccess')).toBe('None');

    // main passes the storage module's `deploymentContainerUrl` output, which is <blob endpoint><container>.
    const storage = moduleOf(mainContext(params), 'storage');
    const site = ofType('Microsoft.Web/sites')[0]!;
    const deployment = site.get('properties.functionAppConfig.deployment.storage') as Record<
      string,
      Record<string, unknown>
    >;
    expect(deployment.type).toBe('blobContainer');
    expect(deployment.value).toBe('«reference(storage)».outputs.deploymentContainerUrl.value');
    const account = ofType('Microsoft.Storage/storageAccounts')[0]!;
    const url = storage.ctx.evaluate(storage.ctx.template.outputs.deploymentContainerUrl.value) as string;
    expect(url).toContain(`reference(${account.id}`);
    expect(url).toMatch(new RegExp(`\\.primaryEndpoints\\.blob${lastSegment(containers[0]!.name)}$`));
    expect(deployment.authentication).toMatchObject({ type: 'UserAssignedIdentity' });
  });
});

describe('no storage keys anywhere', () => {
  it('never lists keys or builds a key-based connection string', () => {
    const text = fs.readFileSync(MAIN_TEMPLATE_PATH, 'utf8');
    expect(text).not.toMatch(/listKeys|listAccountSas|listServiceSas|AccountKey=/i);
  });
});
