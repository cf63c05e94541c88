/**
 * The Bot Framework SDK baseline in bench/baseline: installed on first use (never a dependency of
 * the app; versions pinned by its package-lock.json).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BASELINE_DIR, REPO_ROOT, print } from './common';

const BOTBUILDER_PACKAGE_JSON = path.join(BASELINE_DIR, 'node_modules', 'botbuilder', 'package.json');

export function ensureBaselineInstalled(): void {
  // The queue worker baseline also needs the storage SDKs (bench/baseline/package.json).
  if (
    existsSync(BOTBUILDER_PACKAGE_JSON) &&
    existsSync(path.join(BASELINE_DIR, 'node_modules', '@azure', 'storage-queue', 'package.json'))
  )
    return;
  print(
    `(installing the botbuilder baseline into ${path.relative(REPO_ROOT, BASELINE_DIR)}/node_modules: npm install --prefix bench/baseline --no-audit --no-fund)`,
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['install', '--prefix', BASELINE_DIR, '--no-audit', '--no-fund'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 300_000,
  });
  if (result.status !== 0)
    throw new Error(
      `npm install --prefix bench/baseline failed (status ${result.status}${result.error ? `, ${result.error.message}` : ''})`,
    );
}

/** The installed botbuilder version, or `?`. */
export function baselineVersion(): string {
  try {
    return (JSON.parse(readFileSync(BOTBUILDER_PACKAGE_JSON, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
