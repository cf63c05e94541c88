/**
 * Bench section 2, cold start: how long a fresh Node process takes to load the function app's entry
 * modules, next to `require('botbuilder')`, in the same run. See bench/README.md "2. Cold start".
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findFiles } from '../host/glob';
import { baselineVersion, ensureBaselineInstalled } from './lib/baseline';
import { BASELINE_DIR, REPO_ROOT, fmt, killOnExit, median, print, renderTable, verdict } from './lib/common';

export interface ColdStartParams {
  /** Timed runs of each variant. */
  readonly runs: number;
}

export const COLD_START_FULL: ColdStartParams = { runs: 15 };
export const COLD_START_QUICK: ColdStartParams = { runs: 5 };

/** The target from the issue: the app's entry modules load in at most a quarter of botbuilder's time. */
export const COLD_START_MAX_RATIO = 0.25;

interface ColdRun {
  readonly wallMs: number;
  readonly loadMs?: number;
}

/** Spawns `node -e code` and returns its whole wall time and the load time it reports. */
function spawnTimed(code: string, cwd: string): Promise<ColdRun> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    // Same conditions for every variant: no preloads, no compile cache, no extra CA bundle to parse.
    if (k === 'NODE_OPTIONS' || k === 'NODE_COMPILE_CACHE' || k === 'NODE_EXTRA_CA_CERTS') continue;
    env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const proc = spawn(process.execPath, ['-e', code], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('exit', (codeNum) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (codeNum !== 0) return reject(new Error(`node -e exited ${codeNum}: ${err.slice(-1000)}`));
      const line = out.split('\n').find((l) => l.startsWith('@@cold '));
      const loadMs = line === undefined ? undefined : Number((JSON.parse(line.slice(7)) as { loadMs: number }).loadMs);
      resolve(loadMs === undefined ? { wallMs } : { wallMs, loadMs });
    });
  });
}

export async function coldStart(p: ColdStartParams): Promise<boolean> {
  ensureBaselineInstalled();
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
  const entryFiles = findFiles(pkg.main, REPO_ROOT).map((f) => path.join(REPO_ROOT, f));
  if (entryFiles.length === 0) throw new Error(`no files match package.json main "${pkg.main}" (run npm run build)`);
  const core = path.join(REPO_ROOT, 'dist', 'host', 'functionsCore.js');
  const report =
    "process.stdout.write('@@cold ' + JSON.stringify({ loadMs: Number(process.hrtime.bigint() - s) / 1e6 }) + '\\n');";
  // (a) As the worker does: @azure/functions-core is provided first (dist/host/functionsCore.js,
  // not timed), then every file matching package.json main is required (timed).
  const appCode = [
    `const { FunctionsCore, installCoreModule } = require(${JSON.stringify(core)});`,
    'const core = new FunctionsCore(() => {}); installCoreModule(core.api);',
    'const s = process.hrtime.bigint();',
    `for (const f of ${JSON.stringify(entryFiles)}) { core.currentEntryPoint = f; require(f); }`,
    report,
    "if (core.functions.size === 0) { console.error('no functions registered'); process.exit(3); }",
  ].join('\n');
  const libraryCode = [
    `const { FunctionsCore, installCoreModule } = require(${JSON.stringify(core)});`,
    'const core = new FunctionsCore(() => {}); installCoreModule(core.api);',
    'const s = process.hrtime.bigint();',
    "require('@azure/functions');",
    report,
  ].join('\n');
  const botbuilderCode = ['const s = process.hrtime.bigint();', "require('botbuilder');", report].join('\n');

  const variants = [
    {
      key: 'app',
      label: `(a) app entry modules (${pkg.main}: ${entryFiles.length} files)`,
      code: appCode,
      cwd: REPO_ROOT,
    },
    { key: 'botbuilder', label: "(b) require('botbuilder') (bench/baseline)", code: botbuilderCode, cwd: BASELINE_DIR },
    { key: 'empty', label: '(c) node -e 0', code: '0', cwd: REPO_ROOT },
    { key: 'library', label: "    of (a): require('@azure/functions') alone", code: libraryCode, cwd: REPO_ROOT },
  ];
  const runs = new Map<string, ColdRun[]>(variants.map((v) => [v.key, []]));
  // One untimed run of each first (file-system cache), then rounds in rotating order.
  for (const v of variants) await spawnTimed(v.code, v.cwd);
  const deadline = Date.now() + 240_000;
  for (let round = 0; round < p.runs && Date.now() < deadline; round += 1) {
    for (let k = 0; k < variants.length; k += 1) {
      const v = variants[(round + k) % variants.length]!;
      runs.get(v.key)!.push(await spawnTimed(v.code, v.cwd));
    }
  }

  const stat = (key: string, field: 'wallMs' | 'loadMs'): { median: number; min: number } => {
    const values = runs
      .get(key)!
      .map((r) => r[field])
      .filter((x): x is number => x !== undefined);
    return { median: median(values), min: Math.min(...values) };
  };
  const app = stat('app', 'loadMs');
  const bb = stat('botbuilder', 'loadMs');
  const emptyWall = stat('empty', 'wallMs');
  const ratio = app.median / bb.median;
  const wallRatio =
    (stat('app', 'wallMs').median - emptyWall.median) / (stat('botbuilder', 'wallMs').median - emptyWall.median);
  const met = ratio <= COLD_START_MAX_RATIO;
  const bbVersion = baselineVersion();
  print(
    renderTable(
      `2. Cold start: fresh node processes, ${runs.get('app')!.length} runs each, rotating order`,
      ['Variant', 'load median ms', 'load min ms', 'process median ms', 'process min ms'],
      variants.map((v) => {
        const load = stat(v.key, 'loadMs');
        const wall = stat(v.key, 'wallMs');
        return [v.label, fmt(load.median, 1), fmt(load.min, 1), fmt(wall.median, 1), fmt(wall.min, 1)];
      }),
      [
        `Ratio app / botbuilder (median load time): ${fmt(ratio, 3)} -> target at most ${fmt(COLD_START_MAX_RATIO, 3)}: ${verdict(met)}. On whole-process time minus the empty process: ${fmt(wallRatio, 3)}.`,
        `"load" is measured inside the child with process.hrtime around the require(s); "process" is spawn to exit as seen by this process. botbuilder ${bbVersion} from bench/baseline/node_modules.`,
        "(a) installs the local host's @azure/functions-core first (untimed), as the Functions worker provides it, so @azure/functions registers the functions for real; nothing else (config, storage, identity, undici) is loaded until a request needs it.",
        "Warm file-system cache (one untimed run of each first); NODE_OPTIONS, NODE_COMPILE_CACHE and NODE_EXTRA_CA_CERTS are removed from the children's environment.",
      ],
    ),
  );
  return met;
}
