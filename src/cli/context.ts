/**
 * Per-run state shared by the commands: the I/O, the clock, the settings and storage clients
 * (loaded only by commands that need them, so --help and --dry-run work without settings), and
 * the redactor that keeps secrets out of every message.
 */
import path from 'node:path';
import { toStatusView, type StatusView } from '../flows/statusView';
import type { DeliveryStore } from '../store/deliveryStore';
import { createRedactor, Progress, type CliIo } from './io';
import { loadCliSettings } from './settings';
import { createCliStorage, type CliStorage } from './storage';

export interface CliContext {
  readonly io: CliIo;
  now(): Date;
  sleep(ms: number): Promise<void>;
  readonly pollIntervalMs: number;
  /** Settings and clients; the first call reads the settings (and may throw a CliFailure). */
  storage(): CliStorage;
  redact(text: string): string;
  progress(): Progress;
  /** A path given on the command line, relative to the working directory. */
  resolvePath(file: string): string;
}

export function createContext(io: CliIo): CliContext {
  let storage: CliStorage | undefined;
  let redactor = createRedactor(collectSecrets(io.env));
  const now = io.now ?? (() => new Date());
  return {
    io,
    now,
    sleep: io.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    pollIntervalMs: io.pollIntervalMs ?? 1000,
    storage() {
      if (storage === undefined) {
        const settings = loadCliSettings(io.env, io.cwd);
        redactor = createRedactor([...collectSecrets(io.env), ...settings.secrets]);
        storage = createCliStorage(settings);
      }
      return storage;
    },
    redact: (text) => redactor(text),
    progress: () => new Progress(io.stderr, () => now().getTime()),
    resolvePath: (file) => path.resolve(io.cwd, file),
  };
}

function collectSecrets(env: Readonly<Record<string, string | undefined>>): string[] {
  const value = env.AzureWebJobsStorage?.trim();
  return value ? [value] : [];
}

/** The status view of a job, with child counts for broadcasts and batches; undefined if unknown. */
export async function fetchView(deliveries: DeliveryStore, id: string, now: Date): Promise<StatusView | undefined> {
  const record = await deliveries.get(id);
  if (record === undefined) return undefined;
  const counts =
    record.kind === 'broadcast' || record.kind === 'batch' ? await deliveries.countChildren(id) : undefined;
  return toStatusView(record, counts, now);
}

export interface WaitResult {
  readonly views: ReadonlyMap<string, StatusView | undefined>;
  readonly timedOut: boolean;
}

/**
 * Polls the delivery records of `ids` until each is done or `timeoutMs` passes (0: no limit),
 * showing `describe(views)` on the progress line.
 */
export async function waitForJobs(
  ctx: CliContext,
  ids: readonly string[],
  timeoutMs: number,
  describe: (views: ReadonlyMap<string, StatusView | undefined>) => string,
): Promise<WaitResult> {
  const deliveries = ctx.storage().deliveries();
  const views = new Map<string, StatusView | undefined>(ids.map((id) => [id, undefined]));
  const started = ctx.now().getTime();
  const progress = ctx.progress();
  try {
    for (;;) {
      const open = ids.filter((id) => views.get(id)?.done !== true);
      for (let i = 0; i < open.length; i += 8) {
        const chunk = open.slice(i, i + 8);
        const now = ctx.now();
        const fetched = await Promise.all(chunk.map((id) => fetchView(deliveries, id, now)));
        chunk.forEach((id, j) => views.set(id, fetched[j]));
      }
      const elapsed = ctx.now().getTime() - started;
      progress.update(describe(views), ` (${seconds(elapsed)})`);
      if (ids.every((id) => views.get(id)?.done === true)) return { views, timedOut: false };
      if (timeoutMs > 0 && elapsed >= timeoutMs) return { views, timedOut: true };
      // Many open jobs: read each less often (one point read per job per round).
      const interval = ctx.pollIntervalMs * Math.max(1, Math.ceil(open.length / 100));
      const wait = timeoutMs > 0 ? Math.min(interval, Math.max(1, timeoutMs - elapsed)) : interval;
      await ctx.sleep(wait);
    }
  } finally {
    progress.done();
  }
}

export function seconds(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms / 1000)} s`;
}
