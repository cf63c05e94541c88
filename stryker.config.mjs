// Mutation testing: `npm run test:mutation` (README, "Mutation testing"). Slow and CPU-heavy, so
// not part of CI; run it after changing the modules below or their tests.
//
// Mutated: the pure core, inbound and caller token checks, the trust check before the bot token
// leaves (assertTrustedServiceUrl), and the delivery record's claim / finish / release with the
// table calls under them. The send budget is left to its integration and scale-out tests (timers
// and a shared roster: too slow per mutant). The tests run against each mutant are listed in
// vitest.mutation.config.mts.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `file:first-last` for the named functions and methods of a file, found by their opening lines, so
 * the ranges follow the code as it moves. Each ends at the brace that closes it.
 */
function ranges(file, openings) {
  const lines = readFileSync(file, 'utf8').split('\n');
  return openings.map((opening) => {
    const start = lines.findIndex((line) => line.trimStart().startsWith(opening));
    if (start < 0) throw new Error(`stryker.config.mjs: "${opening}" not found in ${file}`);
    let depth = 0;
    for (let i = start; i < lines.length; i += 1) {
      for (const ch of lines[i]) depth += ch === '{' ? 1 : ch === '}' ? -1 : 0;
      if (depth === 0 && lines[i].includes('}')) return `${file}:${start + 1}-${i + 1}`;
    }
    throw new Error(`stryker.config.mjs: no end for "${opening}" in ${file}`);
  });
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  // forks, not Stryker's default threads: the stubs' certificate reaches a worker only through
  // NODE_EXTRA_CA_CERTS, which Node reads when a process starts.
  vitest: { configFile: 'vitest.mutation.config.mts', related: false, pool: 'forks' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  mutate: [
    'src/core/**/*.ts',
    'src/auth/**/*.ts',
    // The delivery record: its fields, its state changes, and the conditional reads and writes of
    // the claim, finish and release.
    'src/store/deliveryRecord.ts',
    'src/store/deliveryTransitions.ts',
    ...ranges('src/store/deliveryStore.ts', [
      'async release(',
      'async createPending(',
      'async claim(',
      'async finish(',
      'async recordRejected(',
    ]),
    // The conditional reads and writes under them, and the direct REST calls they go through.
    ...ranges('src/store/tableClients.ts', [
      'export async function readEntity(',
      'export async function writeConditional(',
    ]),
    'src/store/tableRest.ts',
    // The host check before the bot token is attached, and the URL it is attached to.
    ...ranges('src/connector/connectorClient.ts', [
      'export function assertTrustedServiceUrl(',
      'export function connectorUrl(',
    ]),
  ],
  coverageAnalysis: 'perTest',
  // Two cores: one test worker and the checker share them.
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: null },
  // Sandboxes live outside the working tree, so `eslint .`, tsc and vitest never see mutated copies.
  tempDirName: path.join(os.tmpdir(), 'teams-courier-stryker'),
  ignorePatterns: [
    'dist',
    'reports',
    '.azurite',
    'coverage',
    'appPackage/build',
    'bench/baseline/node_modules',
    '*.log',
  ],
  cleanTempDir: true,
  // Reruns test only the mutants whose code or tests changed since the last run.
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
};
