import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Local HTTPS stubs (OpenID metadata, Entra token endpoint, Bot Connector) use a test-only
// self-signed certificate. Node reads NODE_EXTRA_CA_CERTS when a process starts, so it is set here,
// before vitest forks its workers, and inherited by every child process the tests start. It is set
// unconditionally: machines often point it at the system bundle already, which tests do not need.
process.env.NODE_EXTRA_CA_CERTS = fileURLToPath(new URL('./host/emulator/certs/localhost.crt', import.meta.url));

// `npm run test:chaos` = `vitest run --mode chaos test/chaos`: the chaos suite at full size.
// (A mode instead of `CHAOS_SIZE=full vitest …` keeps the script working in every shell.)
export default defineConfig(({ mode }) => ({
  test: {
    include: ['test/**/*.test.ts'],
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
