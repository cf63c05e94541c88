/**
 * The stub world (host/emulator/world.ts: the Bot Framework issuer, the Entra authority and the Bot
 * Connector) in a child process of its own (bench/stubProcess.ts), so that its CPU is not counted
 * against what is measured: how to start it, what it answers with, and the figures it reports.
 *
 * Protocol (bench/lib/common.ts): the child emits `StubReady` first, then answers `stats`,
 * `arrivals`, `snapshot`, `progress`, `reset` and `close` on stdin.
 */
import type { StubWorld } from '../../host/emulator/world';
import { startChild, stubClientEnv, type ChildHandle } from './common';
import { STUB_PROCESS_JS } from './build';

export interface StubConfig {
  /** true: Teams' published limits (50/s per bot per tenant, 7/1 s, 8/2 s, 60/30 s per conversation ...); false: none. */
  readonly rateLimit: boolean;
  /**
   * false lets a reply to an activity id the stub never issued through, as Teams does in a personal
   * chat (botbuilder's proactive sendActivity replies to the continuation id). Default true.
   */
  readonly strictActivities?: boolean;
}

export interface StubReady {
  readonly pid: number;
  readonly authorityHost: string;
  readonly connectorOrigin: string;
  /** Where the seeded references point (`<origin>/amer/`). */
  readonly serviceUrl: string;
  /** BOT_GLOBAL_SERVICE_URL (`<origin>/teams/`). */
  readonly globalServiceUrl: string;
  /** The app settings that point an app at this world (`StubWorld.appSettings()`, the bench bot). */
  readonly appSettings: Record<string, string>;
}

/** `stats`: the Connector's counters, by status, operation and limit, and the first and last delivery. */
export interface StubStats {
  readonly stats: {
    requests: number;
    delivered: number;
    throttled: number;
    faults: number;
    unauthorized: number;
    dropped: number;
  };
  readonly byStatus: Record<string, number>;
  readonly byOperation: Record<string, number>;
  /** 429s by the limit that refused them: thread (per bot per conversation), threadAllBots, tenant. */
  readonly throttledBy: Record<string, number>;
  readonly firstDeliveryAt: number | null;
  readonly lastDeliveryAt: number | null;
  readonly tokenRequests: number;
  readonly cpuMs: number;
}

export interface TenantTraffic {
  /** Write requests (send, reply, create conversation ...) to this tenant's conversations. */
  requests: number;
  throttled: number;
  delivered: number;
  /** Arrival times (epoch ms, the stub's clock) of the delivered messages, ascending. */
  deliveryTimes: number[];
}

/** `snapshot`: the same, per conversation and per tenant. */
export interface StubSnapshot {
  readonly requests: number;
  readonly delivered: number;
  readonly throttled: number;
  readonly byStatus: Record<string, number>;
  readonly byOperation: Record<string, number>;
  /** 429s by the limit that refused them: thread (per bot per conversation), threadAllBots, tenant. */
  readonly throttledBy: Record<string, number>;
  /** Delivered messages per conversation id. */
  readonly perConversation: Record<string, number>;
  readonly perTenant: Record<string, TenantTraffic>;
  readonly tokenRequests: number;
  readonly cpuMs: number;
}

/** Starts the child. Stop it with `handle.stop()` (also when `ready` rejects). */
export function startStubProcess(
  config: StubConfig,
  label = 'stubs',
): { handle: ChildHandle; ready: Promise<StubReady> } {
  const handle = startChild({ label, args: [STUB_PROCESS_JS], env: stubClientEnv(), config, firstTimeoutMs: 30_000 });
  return { handle, ready: handle.first.then((message) => message as unknown as StubReady) };
}

// ---- In the child ---------------------------------------------------------------------------------

function cpuMs(): number {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1000;
}

export function stubStats(world: StubWorld): StubStats {
  const { connector, entra } = world;
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
  return {
    stats: { ...connector.stats },
    byStatus,
    byOperation,
    throttledBy,
    firstDeliveryAt: firstAt ?? null,
    lastDeliveryAt: lastAt ?? null,
    tokenRequests: entra.tokenRequests(),
    cpuMs: cpuMs(),
  };
}

/** Arrival time of every send, per conversation, in order (for limiter slot -> arrival delays). */
export function stubArrivals(world: StubWorld): Record<string, number[]> {
  const arrivals: Record<string, number[]> = {};
  for (const r of world.connector.requests) {
    if (r.operation !== 'sendToConversation' || r.conversationId === undefined) continue;
    (arrivals[r.conversationId] ??= []).push(r.time);
  }
  return arrivals;
}

export function stubSnapshot(world: StubWorld): StubSnapshot {
  const { connector, entra } = world;
  const byStatus: Record<string, number> = {};
  const byOperation: Record<string, number> = {};
  const throttledBy: Record<string, number> = {};
  const perTenant: Record<string, TenantTraffic> = {};
  const tenant = (id: string | undefined): TenantTraffic =>
    (perTenant[id ?? 'unknown'] ??= { requests: 0, throttled: 0, delivered: 0, deliveryTimes: [] });
  for (const r of connector.requests) {
    const status = r.status === null ? 'none' : String(r.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    byOperation[r.operation] = (byOperation[r.operation] ?? 0) + 1;
    if (r.throttled !== undefined) throttledBy[r.throttled] = (throttledBy[r.throttled] ?? 0) + 1;
    if (r.operation === 'getMember' || r.operation === 'unknown') continue;
    const t = tenant(r.tenantId);
    t.requests += 1;
    if (r.throttled !== undefined || r.status === 429) t.throttled += 1;
  }
  const perConversation: Record<string, number> = {};
  for (const d of connector.delivered) {
    if (d.operation === 'deleteActivity' || d.operation === 'updateActivity') continue;
    perConversation[d.conversationId] = (perConversation[d.conversationId] ?? 0) + 1;
    const t = tenant(d.tenantId);
    t.delivered += 1;
    t.deliveryTimes.push(d.time);
  }
  for (const t of Object.values(perTenant)) t.deliveryTimes.sort((a, b) => a - b);
  return {
    requests: connector.stats.requests,
    delivered: connector.stats.delivered,
    throttled: connector.stats.throttled,
    byStatus,
    byOperation,
    throttledBy,
    perConversation,
    perTenant,
    tokenRequests: entra.tokenRequests(),
    cpuMs: cpuMs(),
  };
}
