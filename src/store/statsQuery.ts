/** Reading table `stats`: the sums `teams-courier stats` prints (statsRollup.ts explains the rows). */
import { odata } from '@azure/data-tables';
import { emptyCounts, hourKey, hourKeys, mergeCounts, type OutcomeCounts } from '../core/stats';
import { fromTableKey, toTableKey } from '../core/tableKeys';
import { ALL, after, fromEntity, TENANT } from './statsRows';
import { guardStorage, statusOf, type TableClient } from './tableClients';

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
