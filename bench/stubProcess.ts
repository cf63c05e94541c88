/**
 * Child process: the Entra authority stub and the Bot Connector stub (host/emulator), so that their
 * CPU is not counted against the sender being measured. Prints its URLs as the first message, then
 * answers `stats`, `reset` and `close` on stdin (bench/lib/common.ts protocol).
 *
 * BENCH_CONFIG: { "rateLimit": boolean, "strictActivities": boolean }
 *   rateLimit: false = no limits at all; true = Teams' published limits.
 *   strictActivities: false lets a reply to an activity id the stub never issued through, as Teams
 *   does in a personal chat (botbuilder's proactive sendActivity replies to the continuation id).
 */
import { startConnectorServer, startEntraServer } from '../host/emulator';
import { childConfig, emit, installLoopbackGuard, onCommands, type Message } from './lib/common';
import { BENCH_APP_ID, BENCH_APP_SECRET, BENCH_BOT_TENANT, BOT_FRAMEWORK_RESOURCE } from './lib/identities';

interface StubConfig {
  readonly rateLimit: boolean;
  readonly strictActivities?: boolean;
}

async function main(): Promise<void> {
  installLoopbackGuard();
  const config = childConfig<StubConfig>();
  const entra = await startEntraServer({ apps: [{ clientId: BENCH_APP_ID, tenantId: BENCH_BOT_TENANT, clientSecret: BENCH_APP_SECRET }] });
  const connector = await startConnectorServer({
    auth: { jwks: () => entra.jwks(), audiences: [BOT_FRAMEWORK_RESOURCE], appIds: [BENCH_APP_ID] },
    // {} = the defaults, which are Teams' published limits (host/emulator/rateLimiter.ts).
    rateLimit: config.rateLimit ? {} : false,
    strictActivities: config.strictActivities ?? true,
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= Promise.allSettled([connector.close(), entra.close()]).then(() => undefined);
    return closing;
  };

  const stats = (): Message => {
    const byStatus: Record<string, number> = {};
    const byOperation: Record<string, number> = {};
    const throttledBy: Record<string, number> = {};
    let firstAt: number | undefined;
    let lastAt: number | undefined;
    for (const r of connector.requests) {
      const key = r.status === null ? 'none' : String(r.status);
      byStatus[key] = (byStatus[key] ?? 0) + 1;
      byOperation[r.operation] = (byOperation[r.operation] ?? 0) + 1;
      if (r.throttled !== undefined) throttledBy[r.throttled] = (throttledBy[r.throttled] ?? 0) + 1;
      if (r.delivered) {
        firstAt = firstAt === undefined ? r.time : Math.min(firstAt, r.time);
        lastAt = lastAt === undefined ? r.time : Math.max(lastAt, r.time);
      }
    }
    const cpu = process.cpuUsage();
    return {
      stats: { ...connector.stats },
      byStatus,
      byOperation,
      throttledBy,
      firstDeliveryAt: firstAt ?? null,
      lastDeliveryAt: lastAt ?? null,
      tokenRequests: entra.tokenRequests(),
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  };

  onCommands(
    async (command) => {
      switch (command.cmd) {
        case 'stats':
          return stats();
        case 'arrivals': {
          // Arrival time of every send, per conversation, in order (for slot -> arrival delays).
          const arrivals: Record<string, number[]> = {};
          for (const r of connector.requests) {
            if (r.operation !== 'sendToConversation' || r.conversationId === undefined) continue;
            (arrivals[r.conversationId] ??= []).push(r.time);
          }
          return { arrivals };
        }
        case 'reset':
          connector.reset();
          entra.resetCounters();
          return { ok: true };
        case 'close':
          await close();
          setImmediate(() => process.exit(0));
          return { ok: true };
        default:
          throw new Error(`unknown command ${String(command.cmd)}`);
      }
    },
    () => {
      void close().then(() => process.exit(0));
    },
  );

  emit({
    ready: true,
    pid: process.pid,
    authorityHost: entra.authorityHost,
    connectorOrigin: connector.origin,
    serviceUrl: connector.serviceUrl('amer'),
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
