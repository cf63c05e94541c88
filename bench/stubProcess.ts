/**
 * Child process: the stub world (host/emulator/world.ts) for the bench bot, so that its CPU is not
 * counted against what is measured. Emits `StubReady` (its URLs and the app settings pointing at
 * it) first, then answers commands on stdin (bench/lib/stubWorld.ts, bench/lib/common.ts protocol).
 *
 * BENCH_CONFIG: `StubConfig` ({ "rateLimit": boolean, "strictActivities"?: boolean })
 */
import { startStubWorld } from '../host/emulator/world';
import { childConfig, emit, installLoopbackGuard, onCommands } from './lib/common';
import { BENCH_APP_ID, BENCH_APP_SECRET, BENCH_BOT_TENANT } from './lib/identities';
import { stubArrivals, stubSnapshot, stubStats, type StubConfig, type StubReady } from './lib/stubWorld';

async function main(): Promise<void> {
  installLoopbackGuard();
  const config = childConfig<StubConfig>();
  const world = await startStubWorld({
    bot: { appId: BENCH_APP_ID, tenantId: BENCH_BOT_TENANT, secret: BENCH_APP_SECRET },
    connector: {
      // {} = the defaults, which are Teams' published limits (host/emulator/rateLimiter.ts); one limiter for every caller.
      rateLimit: config.rateLimit ? {} : false,
      strictActivities: config.strictActivities ?? true,
    },
  });
  const { connector, entra } = world;

  onCommands(
    async (command) => {
      switch (command.cmd) {
        case 'stats':
          return { ...stubStats(world) };
        case 'arrivals':
          return { arrivals: stubArrivals(world) };
        case 'snapshot':
          return { snapshot: stubSnapshot(world) };
        case 'progress':
          return { delivered: connector.stats.delivered, requests: connector.stats.requests };
        case 'reset':
          connector.reset();
          entra.resetCounters();
          return { ok: true };
        case 'close':
          await world.close();
          setImmediate(() => process.exit(0));
          return { ok: true };
        default:
          throw new Error(`unknown command ${String(command.cmd)}`);
      }
    },
    () => {
      void world.close().then(() => process.exit(0));
    },
  );

  const ready: StubReady = {
    pid: process.pid,
    authorityHost: entra.authorityHost,
    connectorOrigin: connector.origin,
    serviceUrl: connector.serviceUrl('amer'),
    globalServiceUrl: connector.serviceUrl('teams'),
    appSettings: world.appSettings(),
  };
  emit({ ready: true, ...ready });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
