/**
 * GET /api/health: 200 when the app can work (its configuration loads and storage answers), 503
 * otherwise. For uptime probes, Application Insights availability tests, and App Service's health
 * check where the plan has one (docs/operate.md). Independent of the Functions runtime.
 *
 * Anonymous, so it says nothing an attacker could use: no setting names, versions, hosts or
 * reasons, the same small body every time. The reason goes to the log. The result is kept for a
 * few seconds, and probes that arrive meanwhile share it (and one check in flight), so any number
 * of probes cost at most one storage request per HEALTH_CACHE_MS.
 */
import type { MessagesResponse } from '../inbound/handleMessages';
import type { Logger } from '../log';

/** How long one check's result answers every probe. */
export const HEALTH_CACHE_MS = 5_000;

export interface HealthDeps {
  /** Loads the configuration; throws when it is invalid. */
  readonly checkConfig: () => void;
  /** One cheap storage request; throws when storage cannot be used (unreachable, refused). */
  readonly probeStorage: () => Promise<void>;
  /** Milliseconds, for the cache. */
  readonly now: () => number;
}

export interface HealthCheck {
  /** Whether the app can work, from cache when fresh. `log` gets the reason of a failed check. */
  check(log: Logger): Promise<boolean>;
}

export function createHealthCheck(deps: HealthDeps, cacheMs = HEALTH_CACHE_MS): HealthCheck {
  let cached: { readonly healthy: boolean; readonly at: number } | undefined;
  let inFlight: Promise<boolean> | undefined;

  async function run(log: Logger): Promise<boolean> {
    let healthy = true;
    try {
      deps.checkConfig();
      await deps.probeStorage();
    } catch (err) {
      healthy = false;
      log.warn('health.unhealthy', { reason: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
    cached = { healthy, at: deps.now() };
    return healthy;
  }

  return {
    async check(log) {
      if (cached !== undefined && deps.now() - cached.at < cacheMs) return cached.healthy;
      inFlight ??= run(log).finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
  };
}

const NO_STORE = { 'Cache-Control': 'no-store' };

export async function handleHealth(
  request: { readonly method: string },
  health: HealthCheck,
  log: Logger,
): Promise<MessagesResponse> {
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD')
    return { status: 405, headers: { Allow: 'GET, HEAD' }, jsonBody: { error: 'Only GET and HEAD are allowed.' } };
  let healthy = false;
  try {
    healthy = await health.check(log);
  } catch (err) {
    log.warn('health.unhealthy', { reason: err instanceof Error ? err.message : String(err) });
  }
  return healthy
    ? { status: 200, headers: NO_STORE, jsonBody: { status: 'ok' } }
    : { status: 503, headers: { ...NO_STORE, 'Retry-After': '10' }, jsonBody: { status: 'unavailable' } };
}
