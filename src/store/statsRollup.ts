/**
 * The stats rollup: table `stats`, what `teams-courier stats` reads (docs/storage.md, "stats").
 *
 * No storage work per message. Each instance counts outcomes in memory (src/core/stats.ts) and,
 * about every 15 seconds while it has something new, writes its own cumulative counts for the hour:
 *
 *   PartitionKey  the hour, UTC (`2026-11-25T10`)
 *   RowKey        `all|<instance>` (every tenant) and `t|<escaped tenant id>|<instance>` (one tenant)
 *
 * Every row has one writer, and each write replaces the row with the instance's running total for
 * that hour, so a write that is retried, or repeated after a lost answer, changes nothing: the rows
 * of all instances add up exactly, with no ETag race between instances. All rows of an hour share a
 * partition, so one flush is one batch transaction per 100 changed rows. Idle instances write
 * nothing. The cost of this design is what a crash loses: the counts since the last flush (at most
 * about 15 seconds of one instance), which is accepted and documented.
 *
 * Reading an hour is one query on one partition, narrowed by RowKey range to the totals, to one
 * tenant, or to the tenant rows; a window of h hours reads h small partitions.
 */
import { randomBytes } from 'node:crypto';
import { addOutcome, emptyCounts, hourKey, type StatsOutcome } from '../core/stats';
import type { Logger } from '../log';
import { toEntity, UNKNOWN_TENANT, type Row } from './statsRows';
import { ensureTable, guardStorage, statusOf, type TableClient } from './tableClients';

export { UNKNOWN_TENANT } from './statsRows';
export { readStats, type StatsQuery, type StatsReport } from './statsQuery';

/** How often an instance writes what it counted (when it counted anything). */
export const STATS_FLUSH_INTERVAL_MS = 15_000;

export interface StatsRecorder {
  /** Counts one outcome in memory. Never throws, never waits. */
  record(outcome: StatsOutcome): void;
}

export interface StatsRollup extends StatsRecorder {
  readonly instanceId: string;
  /** Writes the rows changed since the last flush; a failure is logged and retried next time. */
  flush(): Promise<void>;
  /** A last flush, then the timer stops. */
  close(): Promise<void>;
}

export interface StatsRollupOptions {
  readonly table: TableClient;
  /** This instance's rows; default a random id per process. */
  readonly instanceId?: string;
  readonly now?: () => Date;
  /** Default STATS_FLUSH_INTERVAL_MS; 0 turns the timer off (tests flush by hand). */
  readonly flushIntervalMs?: number;
  readonly log?: Logger;
}

export function createStatsRollup(options: StatsRollupOptions): StatsRollup {
  const { table, log } = options;
  const now = options.now ?? (() => new Date());
  const instanceId = options.instanceId ?? randomBytes(6).toString('hex');
  const intervalMs = options.flushIntervalMs ?? STATS_FLUSH_INTERVAL_MS;
  /** hour -> tenant ('' for all) -> row */
  const hours = new Map<string, Map<string, Row>>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let ready = false;

  function rowFor(hour: string, tenantId: string | undefined): Row {
    let rows = hours.get(hour);
    if (rows === undefined) {
      rows = new Map();
      hours.set(hour, rows);
    }
    const key = tenantId ?? '';
    let row = rows.get(key);
    if (row === undefined) {
      row = { hour, tenantId, counts: emptyCounts(), version: 0, flushedVersion: 0 };
      rows.set(key, row);
    }
    return row;
  }

  async function writeOnce(): Promise<void> {
    const at = now();
    // An hour is forgotten once written and an hour old: a late outcome for it (a slow invocation
    // that read the clock before the hour turned) still adds to its running total, never restarts it.
    const forgetBefore = hourKey(new Date(at.getTime() - 3_600_000));
    for (const [hour, rows] of [...hours]) {
      const dirty = [...rows.values()].filter((r) => r.version !== r.flushedVersion);
      if (dirty.length > 0) {
        if (!ready) {
          await ensureTable(table);
          ready = true;
        }
        for (let i = 0; i < dirty.length; i += 100) {
          const chunk = dirty
            .slice(i, i + 100)
            .map((row) => ({ row, version: row.version, entity: toEntity(row, instanceId, at) }));
          await guardStorage('submitTransaction', () =>
            table.submitTransaction(chunk.map(({ entity }) => ['upsert', entity, 'Replace'] as const) as never),
          );
          for (const { row, version } of chunk) row.flushedVersion = version;
        }
      }
      if (hour < forgetBefore && [...rows.values()].every((r) => r.version === r.flushedVersion)) hours.delete(hour);
    }
  }

  async function flush(): Promise<void> {
    // One flush at a time; a caller that comes while one runs waits for it and then flushes again.
    while (flushing !== undefined) await flushing;
    flushing = writeOnce()
      .catch((err: unknown) => {
        log?.warn('stats.flushFailed', {
          reason: err instanceof Error ? err.message : String(err),
          status: statusOf(err),
        });
      })
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  }

  function startTimer(): void {
    if (timer !== undefined || intervalMs <= 0) return;
    timer = setInterval(() => void flush(), intervalMs);
    // Never keeps the process alive: the counts since the last flush are an accepted loss.
    timer.unref();
  }

  return {
    instanceId,
    record(outcome) {
      const hour = hourKey(outcome.at);
      for (const tenantId of [undefined, outcome.tenantId ?? UNKNOWN_TENANT]) {
        const row = rowFor(hour, tenantId);
        addOutcome(row.counts, outcome);
        row.version += 1;
      }
      startTimer();
    },
    flush,
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await flush();
    },
  };
}
