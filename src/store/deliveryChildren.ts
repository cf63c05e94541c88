/**
 * The children of a broadcast or batch: rows in the parent's partition of `deliveries`, RowKey
 * `child:<escaped id>`, so counting them is one single-partition query and registering them uses
 * batch transactions of 100.
 *
 * A finished child's row also carries its record's `installed` (proactive installation through
 * Graph, docs/graph-install.md), so the parent counts the users teams-courier installed the app for
 * (`installedByUs`) in the same query.
 */
import { odata } from '@azure/data-tables';
import { toTableKey } from '../core/tableKeys';
import type { ChildCounts } from './deliveryRecord';
import { guardStorage, type TableClient } from './tableClients';

const CHILD_PREFIX = 'child:';
/** The first RowKey after every `child:` row (`;` follows `:`). */
const CHILD_END = 'child;';
const childRow = (childId: string): string => `${CHILD_PREFIX}${toTableKey(childId)}`;

/** Registers children (idempotent: a child that already finished keeps its outcome). */
export async function addChildren(table: TableClient, parentId: string, childIds: readonly string[]): Promise<void> {
  const partitionKey = toTableKey(parentId);
  for (let i = 0; i < childIds.length; i += 100) {
    // Merge without a status: a child that already finished keeps its outcome.
    const actions = childIds
      .slice(i, i + 100)
      .map((id) => ['upsert', { partitionKey, rowKey: childRow(id), childId: id }, 'Merge'] as const);
    await guardStorage('submitTransaction', () => table.submitTransaction(actions as never));
  }
}

/**
 * Sets a child's status on its parent (idempotent). `pending` when a replay re-arms it. `installed`:
 * the child's DeliveryRecord.installed, which its caller has at hand (no read here).
 */
export async function setChildStatus(
  table: TableClient,
  parentId: string,
  childId: string,
  status: 'sent' | 'failed' | 'pending',
  installed?: 'new' | 'already',
): Promise<void> {
  await guardStorage('upsertEntity', () =>
    table.upsertEntity(
      {
        partitionKey: toTableKey(parentId),
        rowKey: childRow(childId),
        childId,
        status,
        // Merge: a re-armed child keeps what it had (the installation happened all the same).
        ...(installed === undefined ? {} : { installed }),
      },
      'Merge',
    ),
  );
}

/** Exact counts over the registered children. */
export async function countChildren(table: TableClient, parentId: string): Promise<ChildCounts> {
  const partitionKey = toTableKey(parentId);
  let total = 0;
  let sent = 0;
  let failed = 0;
  let installedByUs = 0;
  const rows = table.listEntities<Record<string, unknown>>({
    queryOptions: {
      filter: odata`PartitionKey eq ${partitionKey} and RowKey ge ${CHILD_PREFIX} and RowKey lt ${CHILD_END}`,
      select: ['status', 'installed'],
    },
  });
  await guardStorage('listEntities', async () => {
    for await (const row of rows) {
      total += 1;
      if (row.status === 'sent') sent += 1;
      else if (row.status === 'failed') failed += 1;
      if (row.installed === 'new') installedByUs += 1;
    }
  });
  return { total, pending: total - sent - failed, sent, failed, ...(installedByUs === 0 ? {} : { installedByUs }) };
}
