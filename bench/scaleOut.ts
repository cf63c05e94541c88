/**
 * Bench section "scale": one broadcast sent by 1, 3 and 6 app instances sharing one storage account,
 * against a Bot Connector stub that enforces Teams' limits across all of them; then three tenants at
 * once. See bench/README.md "5. Scale-out".
 *
 *   node dist/bench/scaleOut.js [--quick] [--scenario=<instances>x<tenants>x<recipients per tenant> ...]
 *
 * Each scenario gets a fresh world (bench/lib/scaleWorld.ts): Azurite, the stub world in its own
 * process, N `node dist/host/main.js` processes, and a counting proxy in front of Azurite.
 */
import os from 'node:os';
import { fmt, fmtInt, installLoopbackGuard, renderTable } from './lib/common';
import {
  TENANT_CAP_PER_SECOND,
  runBroadcast,
  scaleTenantId,
  startScaleWorld,
  storageBreakdown,
  type BroadcastRun,
} from './lib/instances';

export interface ScaleOutScenario {
  readonly instances: number;
  readonly tenants: number;
  readonly recipientsPerTenant: number;
}

export interface ScaleOutParams {
  readonly scenarios: readonly ScaleOutScenario[];
  /** Per scenario: limit for the broadcast(s) to finish. */
  readonly deadlineMs: number;
  /** Extra app settings for every instance. */
  readonly appEnv?: Readonly<Record<string, string | undefined>>;
}

export const SCALE_OUT_FULL: ScaleOutParams = {
  scenarios: [
    { instances: 1, tenants: 1, recipientsPerTenant: 1500 },
    { instances: 3, tenants: 1, recipientsPerTenant: 1500 },
    { instances: 6, tenants: 1, recipientsPerTenant: 1500 },
    { instances: 3, tenants: 3, recipientsPerTenant: 500 },
  ],
  deadlineMs: 180_000,
};

export const SCALE_OUT_QUICK: ScaleOutParams = {
  scenarios: [
    { instances: 1, tenants: 1, recipientsPerTenant: 300 },
    { instances: 3, tenants: 1, recipientsPerTenant: 300 },
  ],
  deadlineMs: 60_000,
};

/** The targets of the broadcast section, applied to every scenario and every tenant. */
export const SCALE_OUT_TARGETS = { maxThrottledShare: 0.01, minSteadyShareOfCap: 0.9 };

const pct = (x: number, digits = 1): string => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)} %` : '-');

function label(s: ScaleOutScenario): string {
  return s.tenants === 1 ? `${fmtInt(s.recipientsPerTenant)}` : `${s.tenants} x ${fmtInt(s.recipientsPerTenant)}`;
}

function meetsTargets(run: BroadcastRun): boolean {
  return (
    !run.timedOut &&
    run.deliveredExactlyOnce &&
    run.throttledShare < SCALE_OUT_TARGETS.maxThrottledShare &&
    run.tenants.every((t) => t.steadyShareOfCap >= SCALE_OUT_TARGETS.minSteadyShareOfCap)
  );
}

/** Runs every scenario (a fresh world each) and prints one table. Returns whether every scenario met the targets; throws if one could not run. */
export async function scaleOut(
  params: ScaleOutParams = SCALE_OUT_FULL,
  print: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
): Promise<boolean> {
  const results: { scenario: ScaleOutScenario; run?: BroadcastRun; error?: string; seconds: number }[] = [];
  for (const scenario of params.scenarios) {
    const started = Date.now();
    const world = await startScaleWorld({
      instances: scenario.instances,
      ...(params.appEnv === undefined ? {} : { appEnv: params.appEnv }),
    }).catch((err: unknown) => err as Error);
    if (world instanceof Error) {
      results.push({ scenario, error: world.message, seconds: (Date.now() - started) / 1000 });
      continue;
    }
    try {
      const tenants = Array.from({ length: scenario.tenants }, (_, k) => ({
        tenantId: scaleTenantId(k + 1),
        recipients: scenario.recipientsPerTenant,
      }));
      const run = await runBroadcast(world, { tenants, deadlineMs: params.deadlineMs });
      results.push({ scenario, run, seconds: (Date.now() - started) / 1000 });
    } catch (err) {
      results.push({
        scenario,
        error: err instanceof Error ? err.message : String(err),
        seconds: (Date.now() - started) / 1000,
      });
    } finally {
      await world.close();
    }
  }

  // Extra storage per message: against the first single-instance scenario of this run.
  const baseline = results.find((r) => r.run !== undefined && r.scenario.instances === 1)?.run;
  const rows = results.map(({ scenario, run, error }) => {
    if (run === undefined)
      return [fmtInt(scenario.instances), label(scenario), `ERROR: ${(error ?? '').split('\n')[0]!.slice(0, 120)}`];
    const delivered = run.tenants.reduce((sum, t) => sum + t.delivered, 0);
    return [
      fmtInt(scenario.instances),
      label(scenario),
      `${fmt(run.durationMs / 1000, 1)}${run.timedOut ? ' (TIMED OUT)' : ''}`,
      run.tenants.map((t) => pct(t.shareOfCap, 0)).join(' / '),
      run.tenants.map((t) => pct(t.steadyShareOfCap, 0)).join(' / '),
      `${pct(run.throttledShare)} (${fmtInt(run.throttled)} / ${fmtInt(run.connectorRequests)})`,
      fmtInt(run.duplicates),
      fmt(run.storagePerMessage, 2),
      baseline === undefined || run === baseline ? '-' : fmt(run.storagePerMessage - baseline.storagePerMessage, 2),
      run.deliveredExactlyOnce && delivered === run.recipients
        ? 'yes'
        : `NO (${[run.missing > 0 ? `${run.missing} missing` : '', (run.children.byStatus.failed ?? 0) > 0 ? `${run.children.byStatus.failed} failed` : '', run.duplicates > 0 ? `${run.duplicates} duplicated` : '', run.unexpected > 0 ? `${run.unexpected} unexpected` : '', run.timedOut ? 'timed out' : ''].filter((x) => x !== '').join(', ')})`,
    ];
  });
  const met = results.every((r) => r.run !== undefined && meetsTargets(r.run));
  const notes = [
    `Target for every scenario and tenant: every recipient exactly once, under ${pct(SCALE_OUT_TARGETS.maxThrottledShare, 0)} of Connector requests throttled, at least ${pct(SCALE_OUT_TARGETS.minSteadyShareOfCap, 0)} of the cap (${TENANT_CAP_PER_SECOND}/s per bot per tenant) over the steady part -> ${met ? 'MET' : 'MISSED'}.`,
    'Duration: enqueue of the broadcast job(s) to the last delivery at the stub. Share of the cap: (deliveries - 1) / (last - first delivery) / cap, per tenant; steady: the middle 80 % of the deliveries (10th to 90th by arrival time) over their own span.',
    "Throttled: 429s / all Connector write requests (sends, creates) over the run, as the stub counted them; the stub enforces Teams' limits across every instance (50/s per bot per tenant, 7/1 s, 8/2 s, 60/30 s per conversation).",
    'Storage transactions: every HTTP request the app instances sent to storage (tables, queues, blobs) from just before the broadcast was enqueued until every child was recorded, counted by a proxy on loopback in front of Azurite, divided by messages delivered. Included: queue polls (also empty ones), message deletes and puts back, table reads, writes and queries, SDK retries; a table batch counts as one request. Not included: the rig\'s own calls (seeding, enqueueing, polling for the end), which go to Azurite directly. "Extra" = this row minus the 1-instance row.',
    `Broadcast: {"to": {"allInstalled": true, "tenantId": T, "conversationType": "personal"}} per tenant, all enqueued at once; fan-out and children go through the instances' queue triggers (host.json: batch 16, threshold 8, max polling 2 s). Each instance is a separate node dist/host/main.js; the app's own per-instance limiter runs at its default ${TENANT_CAP_PER_SECOND}/s.`,
    ...results.map(({ scenario, run, seconds }) => {
      if (run === undefined)
        return `${scenario.instances} instance(s), ${label(scenario)}: could not run (${seconds.toFixed(0)} s).`;
      const delivered = run.tenants.reduce((sum, t) => sum + t.delivered, 0) || 1;
      return [
        `${scenario.instances} instance(s), ${label(scenario)} (${seconds.toFixed(0)} s with start-up):`,
        `429s by limit ${JSON.stringify(run.throttledBy)};`,
        `children ${JSON.stringify(run.children.byStatus)}, ${fmtInt(run.children.retried)} retried, ${fmtInt(run.children.ambiguousResends)} ambiguous resends;`,
        `sender outcomes ${JSON.stringify(run.outcomes)}; sent per instance ${run.outcomesPerInstance.map((o) => fmtInt(o['job.sent'] ?? 0)).join(' / ')};`,
        `token requests ${fmtInt(run.tokenRequests)};`,
        `CPU ms per message: instances ${fmt(run.cpuMs.instances / delivered, 2)}, Azurite ${fmt(run.cpuMs.azurite / delivered, 2)}, stub ${fmt(run.cpuMs.stub / delivered, 2)};`,
        `storage per message: ${storageBreakdown(run.storage, delivered, 10)};`,
        `deliveries per second after the enqueue${run.tenants.length > 1 ? ', per tenant' : ''}: ${run.tenants.map((t) => t.perSecond.join(' ')).join(' | ')}.`,
        ...(run.problems.length > 0 ? [`Unexpected log lines: ${run.problems.slice(0, 3).join(' | ')}`] : []),
      ].join(' ');
    }),
  ];
  print(
    renderTable(
      "5. Scale-out: one storage account, N instances, Teams' limits enforced across all of them",
      [
        'Instances',
        'Recipients',
        'Duration s',
        'Share of cap, per tenant',
        'Steady share, per tenant',
        'Throttled (429s / requests)',
        'Duplicates',
        'Storage req/msg',
        'Extra vs 1 instance',
        'Exactly once',
      ],
      rows,
      notes,
    ),
  );
  const errors = results.filter((r) => r.error !== undefined);
  if (errors.length > 0)
    throw new Error(
      `scale-out: ${errors.length} scenario(s) could not run:\n${errors.map((r) => r.error).join('\n---\n')}`,
    );
  return met;
}

function parseScenario(text: string): ScaleOutScenario {
  const match = /^(\d+)x(\d+)x(\d+)$/.exec(text);
  if (!match)
    throw new Error(`--scenario=${text}: expected <instances>x<tenants>x<recipients per tenant>, e.g. 3x1x300`);
  const [instances, tenants, recipientsPerTenant] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (
    instances < 1 ||
    instances > 16 ||
    tenants < 1 ||
    tenants > 10 ||
    recipientsPerTenant < 1 ||
    tenants * recipientsPerTenant > 2000
  ) {
    throw new Error(
      `--scenario=${text}: 1-16 instances, 1-10 tenants, at most 2,000 recipients in all (Azurite slows down past ~2k queued messages)`,
    );
  }
  return { instances, tenants, recipientsPerTenant };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(
      'usage: node dist/bench/scaleOut.js [--quick] [--scenario=<instances>x<tenants>x<recipients per tenant> ...]   (npm run build first)',
    );
    return;
  }
  const unknown = argv.filter((a) => a !== '--quick' && !a.startsWith('--scenario='));
  if (unknown.length > 0) throw new Error(`unknown argument(s) ${unknown.join(' ')} (try --help)`);
  const quick = argv.includes('--quick');
  const custom = argv
    .filter((a) => a.startsWith('--scenario='))
    .map((a) => parseScenario(a.slice('--scenario='.length)));
  const base = quick ? SCALE_OUT_QUICK : SCALE_OUT_FULL;
  const params: ScaleOutParams = custom.length > 0 ? { ...base, scenarios: custom } : base;
  installLoopbackGuard();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const watchdog = setTimeout(
    () => {
      console.log('scale-out: the run exceeded its time limit; stopping.');
      process.exit(2);
    },
    params.scenarios.length * (params.deadlineMs + 120_000),
  );
  watchdog.unref();
  console.log(
    `# teams-courier scale-out bench\n\nNode ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? '?'}), load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}, ${new Date().toISOString()}\n`,
  );
  const t0 = Date.now();
  const met = await scaleOut(params);
  console.log(
    `(scale-out took ${((Date.now() - t0) / 1000).toFixed(1)} s; targets ${met ? 'MET' : 'MISSED'}; load at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')})`,
  );
  clearTimeout(watchdog);
}

if (require.main === module) {
  main()
    .then(() => setTimeout(() => process.exit(0), 200).unref())
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 200).unref();
    });
}
