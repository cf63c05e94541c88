/**
 * `teams-courier stats`: sent, failed by reason, throttled, pending, and the time from enqueue to
 * sent, from the hourly rollup the sender instances write (src/store/statsRollup.ts). A window of
 * h hours reads h small partitions plus two queue counts: never the deliveries table.
 */
import { LATENCY_BUCKETS_MS, parseSince, percentileMs, type OutcomeCounts } from '../core/stats';
import { readStats, UNKNOWN_TENANT, type StatsReport } from '../store/statsRollup';
import { parseArgs, UsageError, type OptionSpecs } from './args';
import type { CliContext } from './context';
import { plural, renderTable } from './format';
import { err, EXIT_OK, out } from './io';
import { explainRefusal, operatorStorage } from './operatorStorage';

export const STATS_HELP = `usage: teams-courier stats [--since <when>] [--tenant <tenantId> | --by-tenant] [--json]

What the sender did: jobs sent, failed (by reason), throttled by Teams (HTTP 429) and retried,
the jobs on the queue now, and the time from enqueue to sent (p50, p99, the slowest).

  --since <when>        from then until now: 30m, 1h (default), 24h, 7d (at most 31d), or an
                        ISO 8601 time. The counts are kept per hour, so the window starts at the
                        top of that hour
  --tenant <tenantId>   only this Teams tenant
  --by-tenant           one line per tenant as well
  --json                JSON on stdout

The counts come from each sender instance, which adds up what it did and writes it about every 15
seconds: the last few seconds may not be in yet, and what an instance counted since its last write
is lost if it crashes. Failures before the target was resolved (an invalid job, say) count under
the tenant ${UNKNOWN_TENANT}. "pending" is the job queue's approximate length now, including
scheduled jobs and retries waiting for their time.

With Entra ID this needs Storage Table Data Reader and Storage Queue Data Reader.

exit codes: 0 ok, 1 storage could not be read, 2 usage error`;

const OPTIONS: OptionSpecs = {
  since: { kind: 'string', value: '<when>' },
  tenant: { kind: 'string', value: '<tenantId>' },
  'by-tenant': { kind: 'boolean' },
  json: { kind: 'boolean' },
};

/** "850 ms", "4 s", "2 min", "1.5 h"; a percentile in the open last bucket is "> 24 h". The open bucket's bound is null in --json. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (!Number.isFinite(ms)) return `> ${formatMs(LATENCY_BUCKETS_MS.at(-1))}`;
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 6_000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

function latencyJson(c: OutcomeCounts): Record<string, unknown> {
  const p = (q: number): number | null => {
    const v = percentileMs(c.latency, q);
    return v === undefined ? null : Number.isFinite(v) ? v : null;
  };
  return {
    p50Ms: p(50),
    p99Ms: p(99),
    maxMs: c.sent > 0 ? c.latencyMaxMs : null,
    buckets: [
      ...LATENCY_BUCKETS_MS.map((le, i) => ({ leMs: le as number | null, count: c.latency[i] ?? 0 })),
      { leMs: null, count: c.latency.at(-1) ?? 0 },
    ],
  };
}

function countsJson(c: OutcomeCounts): Record<string, unknown> {
  return {
    sent: c.sent,
    failed: c.failed,
    failedByCode: c.failedByCode,
    throttled: c.throttled,
    retried: c.retried,
    enqueueToSent: latencyJson(c),
  };
}

function byCodeText(c: OutcomeCounts): string {
  return Object.entries(c.failedByCode)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}

function latencyText(c: OutcomeCounts): string {
  if (c.sent === 0 || c.latency.every((n) => n === 0)) return '-';
  return `p50 ≤ ${formatMs(percentileMs(c.latency, 50))}, p99 ≤ ${formatMs(percentileMs(c.latency, 99))}, slowest ${formatMs(c.latencyMaxMs)}`;
}

export async function statsCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, OPTIONS, 'stats');
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const tenantId = args.strings.get('tenant');
  if (tenantId !== undefined && tenantId.trim() === '') throw new UsageError('--tenant must not be empty');
  const byTenant = args.flags.has('by-tenant');
  if (byTenant && tenantId !== undefined) throw new UsageError('--tenant and --by-tenant do not go together');
  const now = ctx.now();
  let from: Date;
  try {
    from = parseSince(args.strings.get('since') ?? '1h', now);
  } catch (error) {
    throw new UsageError(`--since: ${(error as Error).message}`);
  }

  const storage = operatorStorage(ctx);
  let report: StatsReport;
  let pending: number;
  let poisoned: number;
  try {
    [report, pending, poisoned] = await Promise.all([
      readStats(storage.statsTable(), { from, to: now, ...(tenantId === undefined ? {} : { tenantId }), byTenant }),
      storage.jobCount(),
      storage.poison().approximateCount(),
    ]);
  } catch (error) {
    return explainRefusal(error, 'Storage Table Data Reader and Storage Queue Data Reader');
  }
  const { totals } = report;

  if (args.flags.has('json')) {
    out(
      ctx.io,
      JSON.stringify(
        {
          from: report.from.toISOString(),
          to: report.to.toISOString(),
          ...(tenantId === undefined ? {} : { tenantId }),
          ...countsJson(totals),
          pending,
          poisoned,
          ...(report.byTenant === undefined
            ? {}
            : { byTenant: Object.fromEntries([...report.byTenant].map(([t, c]) => [t, countsJson(c)])) }),
        },
        null,
        2,
      ),
    );
    return EXIT_OK;
  }

  const lines: string[][] = [
    ['sent', String(totals.sent), ''],
    ['failed', String(totals.failed), byCodeText(totals)],
    ['throttled', String(totals.throttled), 'HTTP 429 answers from Teams (the jobs were retried)'],
    ['retried', String(totals.retried), 'attempts that will be tried again'],
    ['pending', String(pending), `on ${storage.queueName} now (approximate; scheduled jobs and retries included)`],
    ['poisoned', String(poisoned), `in ${storage.poisonQueueName} now (teams-courier poison list)`],
    ['enqueue→sent', latencyText(totals), ''],
  ];
  const scope = tenantId === undefined ? '' : ` for tenant ${tenantId}`;
  out(ctx.io, `since ${report.from.toISOString().slice(0, 16)}Z${scope} (${plural(report.hours, 'hour')})`);
  for (const [name, value, note] of lines) out(ctx.io, `${name!.padEnd(14)}${value!.padStart(8)}  ${note}`.trimEnd());
  if (report.byTenant !== undefined && report.byTenant.size > 0) {
    out(ctx.io);
    const rows = [...report.byTenant]
      .sort((a, b) => b[1].sent - a[1].sent || a[0].localeCompare(b[0]))
      .map(([tenant, c]) => [
        tenant,
        String(c.sent),
        String(c.failed),
        String(c.throttled),
        formatMs(percentileMs(c.latency, 50)),
        formatMs(percentileMs(c.latency, 99)),
      ]);
    for (const line of renderTable(['TENANT', 'SENT', 'FAILED', 'THROTTLED', 'P50', 'P99'], rows)) out(ctx.io, line);
  }
  if (report.rows === 0)
    err(
      ctx.io,
      'no counts in this window: nothing was sent, or the sender has not written its counts yet (about every 15 s)',
    );
  return EXIT_OK;
}
