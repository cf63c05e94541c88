/**
 * The chaos suite's parameters: the bot, the queue and the app's timeouts it runs with, the size
 * (CHAOS_SIZE: small by default, full with `npm run test:chaos`) and the seed (CHAOS_SEED) every
 * part draws its randomness from.
 */
import { mulberry32 } from '../../../host/emulator';

export const APP_ID = '00000000-0000-4000-8000-0000000c4a05';
export const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
export const OUTBOUND_QUEUE = 'outbound-messages';
export const POISON_QUEUE = `${OUTBOUND_QUEUE}-poison`;
/** Connect, header and body timeout of one Bot Connector call in the app: small, so "slower than the timeout" is quick. */
export const CONNECTOR_TIMEOUT_MS = 1_000;
export const MAX_ATTEMPTS = 5;
/** Lease of a dequeued message in the local host: after a SIGKILL, held messages come back after this. */
export const QUEUE_LEASE_SECONDS = 10;

// ---- Size and seed ---------------------------------------------------------------------------

export type ChaosSize = 'small' | 'full';

function readSize(): ChaosSize {
  const raw = (process.env.CHAOS_SIZE ?? 'small').trim().toLowerCase();
  if (raw === 'small' || raw === '') return 'small';
  if (raw === 'full') return 'full';
  throw new Error(`CHAOS_SIZE must be "small" or "full" (got "${process.env.CHAOS_SIZE}")`);
}

function readSeed(): number {
  const raw = process.env.CHAOS_SEED?.trim();
  if (raw === undefined || raw === '') return 20_261_125;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff)
    throw new Error(`CHAOS_SEED must be an integer 0..4294967295 (got "${raw}")`);
  return seed;
}

export const SIZE: ChaosSize = readSize();
export const SEED: number = readSeed();

export interface ChaosPlan {
  /** Part 1: jobs, conversations, tenants, storage outage length, drain limit. */
  readonly jobs: number;
  readonly conversations: number;
  readonly tenants: number;
  readonly outageMs: number;
  readonly drainLimitMs: number;
  /** Part 2: conversations and install/uninstall steps per conversation. */
  readonly inboundConversations: number;
  readonly inboundSteps: number;
  /** Part 3. */
  readonly fuzzRequests: number;
  readonly fuzzMessages: number;
  /** Part 5. */
  readonly loadRps: number;
  readonly loadSeconds: number;
  /** Per-part vitest timeout. */
  readonly partTimeoutMs: number;
}

export const PLANS: Readonly<Record<ChaosSize, ChaosPlan>> = {
  small: {
    jobs: 150,
    conversations: 30,
    tenants: 3,
    outageMs: 3_000,
    drainLimitMs: 150_000,
    inboundConversations: 20,
    inboundSteps: 4,
    fuzzRequests: 1_500,
    fuzzMessages: 1_000,
    loadRps: 50,
    loadSeconds: 10,
    partTimeoutMs: 240_000,
  },
  full: {
    jobs: 1_000,
    conversations: 100,
    tenants: 5,
    outageMs: 5_000,
    drainLimitMs: 480_000,
    inboundConversations: 100,
    inboundSteps: 6,
    fuzzRequests: 10_000,
    fuzzMessages: 10_000,
    loadRps: 200,
    loadSeconds: 60,
    partTimeoutMs: 900_000,
  },
};
export const PLAN: ChaosPlan = PLANS[SIZE];

/** A seeded PRNG per part, so one part's draws do not shift another's. */
export function rngFor(part: string): Rng {
  let h = SEED ^ 0x9e37_79b9;
  for (let i = 0; i < part.length; i += 1) h = Math.imul(h ^ part.charCodeAt(i), 0x0100_0193) >>> 0;
  return new Rng(h >>> 0);
}

export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  float(): number {
    return this.#next();
  }
  int(maxExclusive: number): number {
    return Math.floor(this.#next() * maxExclusive);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    const total = entries.reduce((a, [w]) => a + w, 0);
    let r = this.#next() * total;
    for (const [w, value] of entries) {
      r -= w;
      if (r < 0) return value;
    }
    return entries[entries.length - 1]![1];
  }
}
