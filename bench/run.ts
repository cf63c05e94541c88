/**
 * `npm run bench` (`npm run bench -- --quick` for a smoke run): teams-courier's performance figures
 * next to baselines measured in the same run, printed as tables. See bench/README.md.
 *
 *   1. Inbound (inbound.ts): POST /api/messages on the local Functions host vs bare Azurite operations.
 *   2. Cold start (coldStart.ts): loading the function app's entry modules vs require('botbuilder').
 *   3. Outbound throughput (outbound.ts): processJobMessage vs botbuilder CloudAdapter, CPU per message.
 *   4. Broadcast under Teams' limits (broadcast.ts): time vs the theoretical minimum, 429s.
 *   5. Scale-out (scaleOut.ts): one broadcast sent by several app instances.
 *
 * This file is the orchestrator: arguments, the environment table, each section in turn (what a
 * section started is stopped after it, whatever happened), and the targets table. Everything runs on
 * loopback, every loop is bounded in count and time, and every process and server started is
 * stopped before exit.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { BROADCAST_FULL, BROADCAST_QUICK, broadcast } from './broadcast';
import { COLD_START_FULL, COLD_START_QUICK, coldStart } from './coldStart';
import { INBOUND_FULL, INBOUND_QUICK, inbound } from './inbound';
import { BenchRig } from './lib/benchRig';
import { REPO_ROOT, fmt, installLoopbackGuard, print, renderTable, verdict } from './lib/common';
import { OUTBOUND_FULL, OUTBOUND_QUICK, outbound } from './outbound';
import { scaleOut, SCALE_OUT_FULL, SCALE_OUT_QUICK } from './scaleOut';

const SECTIONS = ['inbound', 'coldstart', 'outbound', 'broadcast', 'scale'] as const;
type Section = (typeof SECTIONS)[number];

interface Args {
  readonly quick: boolean;
  readonly only: readonly Section[];
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let only: Section[] = [...SECTIONS];
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg.startsWith('--only=')) {
      const wanted = arg
        .slice('--only='.length)
        .split(',')
        .map((s) => s.trim());
      const unknown = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
      if (unknown.length > 0)
        throw new Error(`unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
      only = wanted as Section[];
    } else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench [-- --quick] [-- --only=inbound,coldstart,outbound,broadcast,scale]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return { quick, only };
}

function gitDescription(): string {
  try {
    const git = (args: string[]): string =>
      execFileSync('git', args, {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 5_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const commit = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--', 'src', 'host', 'package.json', 'package-lock.json']);
    return dirty === '' ? commit : `${commit} (with uncommitted changes in src/host)`;
  } catch {
    return 'unknown';
  }
}

function printEnvironment(args: Args): void {
  const cpus = os.cpus();
  const rows: [string, string][] = [
    ['Node', `${process.version} (${process.arch})`],
    ['CPU', `${cpus[0]?.model.trim() ?? 'unknown'}`],
    ['Cores', `${cpus.length} (availableParallelism ${os.availableParallelism()})`],
    ['Memory', `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`],
    [
      'Load average at start (1/5/15 min)',
      os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' / '),
    ],
    ['OS', `${os.type()} ${os.release()}`],
    ['Commit', gitDescription()],
    ['Mode', args.quick ? 'quick (--quick: smaller N, smoke run)' : 'full'],
    ['Sections', args.only.join(', ')],
    ['Started', new Date().toISOString()],
  ];
  print('# teams-courier benchmark');
  print();
  print(renderTable('Environment', ['', ''], rows));
}

/** What the sections start; stopped after each section and before exit. */
const rig = new BenchRig();

// ---- Main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { quick } = args;
  installLoopbackGuard();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  // A bound on the whole run, whatever happens inside.
  const watchdog = setTimeout(
    () => {
      print(`bench: the whole run exceeded its time limit; stopping.`);
      process.exit(2);
    },
    args.quick ? 240_000 : 1_500_000,
  );
  watchdog.unref();

  printEnvironment(args);
  const verdicts: [string, boolean | 'error'][] = [];
  const sections: Record<Section, [string, () => Promise<boolean>]> = {
    inbound: ['1. Inbound', () => inbound(quick ? INBOUND_QUICK : INBOUND_FULL, rig)],
    coldstart: ['2. Cold start', () => coldStart(quick ? COLD_START_QUICK : COLD_START_FULL)],
    outbound: ['3. Outbound throughput', () => outbound(quick ? OUTBOUND_QUICK : OUTBOUND_FULL, rig)],
    broadcast: ['4. Broadcast under limits', () => broadcast(quick ? BROADCAST_QUICK : BROADCAST_FULL, rig)],
    scale: ['5. Scale-out', () => scaleOut(quick ? SCALE_OUT_QUICK : SCALE_OUT_FULL, print)],
  };
  for (const key of args.only) {
    const [name, run] = sections[key];
    const t0 = Date.now();
    try {
      verdicts.push([name, await run()]);
    } catch (err) {
      verdicts.push([name, 'error']);
      print(`### ${name}: FAILED TO RUN\n\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    } finally {
      await rig.close();
    }
    print(`(${name} took ${fmt((Date.now() - t0) / 1000, 1)} s)`);
    print();
  }
  print(
    renderTable(
      'Targets',
      ['Section', 'Target'],
      verdicts.map(([name, v]) => [name, v === 'error' ? 'ERROR (did not run)' : verdict(v)]),
      [
        `Load average at the end (1/5/15 min): ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' / ')}; anything else busy on the machine skews every figure above.`,
      ],
    ),
  );
  clearTimeout(watchdog);
  process.exitCode = verdicts.some(([, v]) => v === 'error') ? 1 : 0;
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => {
    void rig.close().then(() => {
      // Children are gone; leave even if a keep-alive socket lingers.
      setTimeout(() => process.exit(), 200).unref();
    });
  });
