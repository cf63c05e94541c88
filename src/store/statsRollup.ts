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
import { odata } from '@azure/data-tables';
import {
  addOutcome,
  emptyCounts,
  hourKey,
  hourKeys,
  LATENCY_BUCKETS_MS,
  mergeCounts,
  type OutcomeCounts,
  type StatsOutcome,
} from '../core/stats';
import { fromTableKey, toTableKey } from '../core/tableKeys';
import type { Logger } from '../log';
import { ensureTable, guardStorage, statusOf, type TableClient } from './tableClients';

/** How often an instance writes what it counted (when it counted anything). */
export const STATS_FLUSH_INTERVAL_MS = 15_000;

/** The tenant of outcomes whose tenant is not known (a job refused before its target was resolved). */
export const UNKNOWN_TENANT = '(unknown)';

const ALL = 'all|';
const TENANT = 't|';
/** The character after `|`: `prefix` ≤ RowKey < `prefix` with `|` replaced by it selects a prefix. */
const after = (prefix: string): string => `${prefix.slice(0, -1)}}`;

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

interface Row {
  readonly hour: string;
  /** undefined: the all-tenants row. */
  readonly tenantId: string | undefined;
  counts: OutcomeCounts;
  /** Bumped on every change; the flush marks a row clean only if nothing changed meanwhile. */
  version: number;
  flushedVersion: number;
}

function rowKeyOf(tenantId: string | undefined, instanceId: string): string {
  return tenantId === undefined ? `${ALL}${instanceId}` : `${TENANT}${toTableKey(tenantId)}|${instanceId}`;
}

function toEntity(
  row: Row,
  instanceId: string,
  now: Date,
): Record<string, unknown> & { partitionKey: string; rowKey: string } {
  const { counts } = row;
  return {
    partitionKey: row.hour,
    rowKey: rowKeyOf(row.tenantId, instanceId),
    instance: instanceId,
    ...(row.tenantId === undefined ? {} : { tenantId: row.tenantId }),
    sent: counts.sent,
    failed: counts.failed,
    retried: counts.retried,
    throttled: counts.throttled,
    failedByCode: JSON.stringify(counts.failedByCode),
    latency: JSON.stringify(counts.latency),
    latencyMaxMs: counts.latencyMaxMs,
    updatedAt: now.toISOString(),
  };
}

function fromEntity(entity: Record<string, unknown>): OutcomeCounts {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const json = <T>(v: unknown, fallback: T): T => {
    try {
      return typeof v === 'string' ? (JSON.parse(v) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  const counts = emptyCounts();
  counts.sent = num(entity.sent);
  counts.failed = num(entity.failed);
  counts.retried = num(entity.retried);
  counts.throttled = num(entity.throttled);
  const byCode = json<Record<string, unknown>>(entity.failedByCode, {});
  for (const [code, n] of Object.entries(byCode)) counts.failedByCode[code] = num(n);
  // A row written with other buckets (a later version of this file) still adds up in its total count.
  const latency = json<unknown[]>(entity.latency, []);
  if (Array.isArray(latency) && latency.length === LATENCY_BUCKETS_MS.length + 1) counts.latency = latency.map(num);
  counts.latencyMaxMs = num(entity.latencyMaxMs);
  return counts;
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

// ---- Reading ----------------------------------------------------------------------------------

export interface StatsQuery {
  readonly from: Date;
  readonly to: Date;
  /** Only this tenant. */
  readonly tenantId?: string;
  /** Also the counts per tenant (reads the tenant rows of every hour). */
  readonly byTenant?: boolean;
}

export interface StatsReport {
  /** The start of the first hour read (the rollup is hourly). */
  readonly from: Date;
  readonly to: Date;
  readonly hours: number;
  /** Rows read (instances × hours, × tenants with byTenant). */
  readonly rows: number;
  readonly totals: OutcomeCounts;
  readonly byTenant?: ReadonlyMap<string, OutcomeCounts>;
}

const SELECT = [
  'RowKey',
  'tenantId',
  'sent',
  'failed',
  'retried',
  'throttled',
  'failedByCode',
  'latency',
  'latencyMaxMs',
];

/** Sums the rollup rows of every hour from `from` to `to`: one single-partition query per hour. */
export async function readStats(table: TableClient, query: StatsQuery): Promise<StatsReport> {
  const keys = hourKeys(query.from, query.to);
  const prefix =
    query.tenantId !== undefined ? `${TENANT}${toTableKey(query.tenantId)}|` : query.byTenant === true ? TENANT : ALL;
  let totals = emptyCounts();
  const byTenant = new Map<string, OutcomeCounts>();
  let rows = 0;
  for (const hour of keys) {
    const entities = table.listEntities<Record<string, unknown>>({
      queryOptions: {
        filter: odata`PartitionKey eq ${hour} and RowKey ge ${prefix} and RowKey lt ${after(prefix)}`,
        select: SELECT,
      },
    });
    try {
      await guardStorage('listEntities', async () => {
        for await (const entity of entities) {
          // A key range is a prefix match: `t|ab|` would also match a tenant called `ab|c`.
          if (query.tenantId !== undefined && entity.tenantId !== query.tenantId) continue;
          rows += 1;
          const counts = fromEntity(entity);
          totals = mergeCounts(totals, counts);
          if (query.byTenant === true) {
            const rowKey = String(entity.rowKey ?? entity.RowKey ?? '');
            const tenant =
              typeof entity.tenantId === 'string'
                ? entity.tenantId
                : fromTableKey(rowKey.slice(TENANT.length, rowKey.lastIndexOf('|')));
            byTenant.set(tenant, mergeCounts(byTenant.get(tenant) ?? emptyCounts(), counts));
          }
        }
      });
    } catch (err) {
      // Nothing was ever flushed here: no table yet.
      if (statusOf(err) !== 404) throw err;
    }
  }
  return {
    from: new Date(Date.parse(`${keys[0] ?? hourKey(query.from)}:00:00Z`)),
    to: query.to,
    hours: keys.length,
    rows,
    totals,
    ...(query.byTenant === true ? { byTenant } : {}),
  };
}
