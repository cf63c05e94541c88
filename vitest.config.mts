import { defineConfig } from 'vitest/config';

// `npm run test:chaos` = `vitest run --mode chaos test/chaos`: the chaos suite at full size.
// (A mode instead of `CHAOS_SIZE=full vitest …` keeps the script working in every shell.)
export default defineConfig(({ mode }) => ({
  test: {
    include: ['test/**/*.test.ts'],
    // Makes the emulator's localhost certificate (once per machine) and points NODE_EXTRA_CA_CERTS at it.
    globalSetup: ['test/host/globalSetup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration and end-to-end files each start their own Azurite and stubs on free ports.
    fileParallelism: true,
    maxWorkers: 2,
    restoreMocks: true,
    env: { CHAOS_SIZE: process.env.CHAOS_SIZE ?? (mode === 'chaos' ? 'full' : 'small') },
    // In CI, also a JSON report: .ci/run prints its plain "N passed, N failed" line from it.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
}));
