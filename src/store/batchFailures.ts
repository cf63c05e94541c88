/**
 * A batch job's failed entries (docs/storage.md): rows in the job's own partition of `deliveries`,
 * RowKey `fail:<escaped entry id>`, one per user or channel Teams could not reach, with Teams'
 * error. Written in batch transactions of 100; writing one again changes nothing.
 */
import { createHash } from 'node:crypto';
import { odata } from '@azure/data-tables';
import type { FailedEntry } from '../core/batchState';
import { toTableKey } from '../core/tableKeys';
import { guardStorage, type TableClient } from './tableClients';

const PREFIX = 'fail:';
/** The first RowKey after every `fail:` row (`;` follows `:`), as for a broadcast's `child:` rows. */
const END = 'fail;';
/** Escaped ids longer than this are keyed by a hash (`%h` never comes out of the escaping). */
const MAX_ID_KEY = 400;

export interface StoredFailure extends FailedEntry {
  /** The request (chunk) whose operation reported it. */
  readonly chunk: number;
}

function rowKey(id: string): string {
  let key: string | undefined;
  try {
    key = toTableKey(id);
  } catch {
    key = undefined;
  }
  return key !== undefined && key.length <= MAX_ID_KEY
    ? `${PREFIX}${key}`
    : `${PREFIX}%h${createHash('sha256').update(id).digest('hex')}`;
}

export async function saveFailures(
  table: TableClient,
  jobId: string,
  chunk: number,
  entries: readonly FailedEntry[],
): Promise<void> {
  const partitionKey = toTableKey(jobId);
  // One row per id: a page that names an id twice must not put it twice in one transaction.
  const rows = new Map(entries.map((e) => [rowKey(e.id), e]));
  const all = [...rows];
  for (let i = 0; i < all.length; i += 100) {
    const actions = all
      .slice(i, i + 100)
      .map(
        ([key, e]) =>
          [
            'upsert',
            { partitionKey, rowKey: key, entryId: e.id, error: e.error.slice(0, 300), chunk },
            'Replace',
          ] as const,
      );
    await guardStorage('submitTransaction', () => table.submitTransaction(actions as never));
  }
}

/** The stored failures, up to `limit`, in RowKey order. */
export async function listFailures(table: TableClient, jobId: string, limit: number): Promise<StoredFailure[]> {
  const partitionKey = toTableKey(jobId);
  const out: StoredFailure[] = [];
  const rows = table.listEntities<Record<string, unknown>>({
    queryOptions: {
      filter: odata`PartitionKey eq ${partitionKey} and RowKey ge ${PREFIX} and RowKey lt ${END}`,
      select: ['entryId', 'error', 'chunk'],
    },
  });
  await guardStorage('listEntities', async () => {
    for await (const row of rows) {
      if (out.length >= limit) break;
      out.push({
        id: String(row.entryId ?? ''),
        error: String(row.error ?? 'Unknown'),
        chunk: typeof row.chunk === 'number' ? row.chunk : 0,
      });
    }
  });
  return out;
}
