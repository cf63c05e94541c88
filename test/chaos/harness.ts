/**
 * The chaos suite's rig, in test/chaos/rig/:
 *
 * - `plan.ts`: the bot, queue and timeouts, the size (CHAOS_SIZE) and seed (CHAOS_SEED), seeded PRNGs;
 * - `storage.ts`: Azurite with its data on disk (stopped and started again on the same ports), and
 *   a proxy in front of its table endpoint that fails chosen requests;
 * - `appProcess.ts`: the app as `node dist/host/main.js` in its own process group, so it can be
 *   SIGKILLed and started again;
 * - `chaosRig.ts`: all of it with the stub world (host/emulator/world.ts: Bot Framework issuer,
 *   Entra, Bot Connector) and an untrusted "foreign" Connector;
 * - `logCapture.ts`: every line the app and the stubs log, in one file, searched for secrets at the
 *   end of the suite;
 * - `report.ts`, `helpers.ts`: Markdown tables, and the small async helpers (`waitFor`, `mapLimit` ...).
 *
 * Everything is on loopback. Every wait is bounded in time, every loop in count; `close()` stops
 * everything that was started, also after a failure. This module re-exports it all, for the suite's
 * parts and the end-to-end tests.
 */
export { HOST_MAIN_JS as MAIN_JS, ensureBuilt } from '../../bench/lib/build';
export { REPO_ROOT as ROOT } from '../../bench/lib/common';
export * from './rig/appProcess';
export * from './rig/chaosRig';
export * from './rig/helpers';
export * from './rig/logCapture';
export * from './rig/plan';
export * from './rig/report';
export * from './rig/storage';
