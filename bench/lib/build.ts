/**
 * The compiled app and bench in `dist/`, which the rigs run as child processes (the app instances,
 * the chaos suite's app, the stub world): built once when missing or older than the sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './common';

/** `npm start`'s entry: the local Functions host with the app. */
export const HOST_MAIN_JS = path.join(REPO_ROOT, 'dist', 'host', 'main.js');
/** The stub world's child process (bench/stubProcess.ts). */
export const STUB_PROCESS_JS = path.join(REPO_ROOT, 'dist', 'bench', 'stubProcess.js');

function newestMtime(dir: string, budget = { files: 20_000 }): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (budget.files <= 0) break;
    if (entry.name === 'node_modules' || entry.name === 'baseline') continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(file, budget));
    else if (entry.name.endsWith('.ts')) {
      budget.files -= 1;
      newest = Math.max(newest, statSync(file).mtimeMs);
    }
  }
  return newest;
}

/**
 * Builds `dist/` (`tsc -p tsconfig.build.json`) when it is missing or older than src/, host/ or
 * bench/. CI builds before the tests, so there this does nothing. tsc emits even when it reports type
 * errors (the CI type-check step reports those): what it emitted is used, with a warning.
 */
export function ensureBuilt(): void {
  const outputs = [HOST_MAIN_JS, STUB_PROCESS_JS];
  const sources = Math.max(...['src', 'host', 'bench'].map((d) => newestMtime(path.join(REPO_ROOT, d))));
  const built = outputs.every((f) => existsSync(f)) ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : 0;
  if (built >= sources) return;
  const result = spawnSync(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  if (!outputs.every((f) => existsSync(f)))
    throw new Error(
      `the build did not produce ${outputs.map((f) => path.relative(REPO_ROOT, f)).join(' and ')}:\n${result.stdout}\n${result.stderr}`,
    );
  if (result.status !== 0)
    console.warn(`tsc reported errors while building dist; running what it emitted:\n${result.stdout.slice(0, 2000)}`);
}
