/**
 * Teams' rate limits (§4) on writes: per bot per conversation, per conversation for all bots, and
 * per app per tenant. A write counts against all three only when all three allow it.
 */
import {
  type RateWindow,
  SlidingWindowLimiter,
  TEAMS_PER_APP_PER_TENANT_RPS,
  TEAMS_PER_BOT_PER_THREAD,
  TEAMS_PER_THREAD_ALL_BOTS,
} from '../rateLimiter';

export interface ConnectorRateLimitOptions {
  /** Default TEAMS_PER_BOT_PER_THREAD (7/1s, 8/2s, 60/30s, 1800/3600s). */
  readonly perBotPerThread?: readonly RateWindow[];
  /** Default TEAMS_PER_THREAD_ALL_BOTS (14/1s, 16/2s). */
  readonly perThreadAllBots?: readonly RateWindow[];
  /** Default 50 (§4, per app per tenant). */
  readonly perTenantPerSecond?: number;
}

export type ThrottleScope = 'thread' | 'threadAllBots' | 'tenant';

export interface Throttled {
  readonly scope: ThrottleScope;
  /** Whole seconds, at least 1: the Retry-After to send. */
  readonly retryAfterSeconds: number;
  readonly window: RateWindow;
}

export class ConnectorRateLimits {
  readonly #thread: SlidingWindowLimiter;
  readonly #threadAllBots: SlidingWindowLimiter;
  readonly #tenant: SlidingWindowLimiter;

  constructor(options: ConnectorRateLimitOptions, now: () => number) {
    this.#thread = new SlidingWindowLimiter(options.perBotPerThread ?? TEAMS_PER_BOT_PER_THREAD, now);
    this.#threadAllBots = new SlidingWindowLimiter(options.perThreadAllBots ?? TEAMS_PER_THREAD_ALL_BOTS, now);
    this.#tenant = new SlidingWindowLimiter(
      [{ windowMs: 1_000, max: options.perTenantPerSecond ?? TEAMS_PER_APP_PER_TENANT_RPS }],
      now,
    );
  }

  /** Records one write by `appId` to `conversationId` in `tenantId`, or says which limit refuses it. */
  admit(appId: string | undefined, conversationId: string, tenantId: string | undefined): Throttled | undefined {
    const bot = appId ?? 'anonymous';
    const checks = [
      ['thread', this.#thread, `${bot}|${conversationId}`],
      ['threadAllBots', this.#threadAllBots, conversationId],
      ['tenant', this.#tenant, `${bot}|${tenantId ?? 'unknown'}`],
    ] as const;
    for (const [scope, limiter, key] of checks) {
      const decision = limiter.check(key);
      if (!decision.allowed)
        return {
          scope,
          retryAfterSeconds: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
          window: decision.window,
        };
    }
    for (const [, limiter, key] of checks) limiter.record(key);
    return undefined;
  }
}
