/**
 * Which injected failure (§7), if any, a request gets: queued rules first (in order, each for a
 * number of requests), then a handler function, then a seeded random plan.
 */
import { type Fault, RandomFaultPlan, type RandomFaultOptions } from '../faults';
import type { ConnectorOperation } from './route';

export interface FaultContext {
  readonly seq: number;
  readonly method: string;
  readonly operation: ConnectorOperation;
  readonly servicePrefix: string;
  readonly conversationId?: string;
  readonly activityId?: string;
  readonly body: unknown;
  readonly appId?: string;
}

export type FaultMatch =
  | {
      readonly operation?: ConnectorOperation | readonly ConnectorOperation[];
      readonly method?: string;
      readonly conversationId?: string | RegExp;
      readonly servicePrefix?: string;
    }
  | ((ctx: FaultContext) => boolean);

export interface FaultRule {
  readonly fault: Fault;
  readonly match?: FaultMatch;
  /** Requests to apply it to; default 1; `Infinity` until cleared. */
  readonly times?: number;
}

function matches(match: FaultMatch | undefined, ctx: FaultContext): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(ctx);
  if (match.method !== undefined && match.method.toUpperCase() !== ctx.method) return false;
  if (match.servicePrefix !== undefined && match.servicePrefix !== ctx.servicePrefix) return false;
  if (match.operation !== undefined) {
    const ops: readonly ConnectorOperation[] =
      typeof match.operation === 'string' ? [match.operation] : match.operation;
    if (!ops.includes(ctx.operation)) return false;
  }
  if (match.conversationId !== undefined) {
    if (ctx.conversationId === undefined) return false;
    if (
      typeof match.conversationId === 'string'
        ? match.conversationId !== ctx.conversationId
        : !match.conversationId.test(ctx.conversationId)
    )
      return false;
  }
  return true;
}

export class FaultInjector {
  readonly #rules: { rule: FaultRule; remaining: number }[] = [];
  #handler: ((ctx: FaultContext) => Fault | undefined) | undefined;
  #random: RandomFaultPlan | undefined;

  constructor(rules: readonly FaultRule[] = [], random?: RandomFaultOptions) {
    for (const rule of rules) this.add(rule);
    this.setRandom(random);
  }

  add(rule: FaultRule): void {
    this.#rules.push({ rule, remaining: rule.times ?? 1 });
  }

  setHandler(handler: ((ctx: FaultContext) => Fault | undefined) | undefined): void {
    this.#handler = handler;
  }

  setRandom(options: RandomFaultOptions | undefined): void {
    this.#random = options ? new RandomFaultPlan(options) : undefined;
  }

  clear(): void {
    this.#rules.length = 0;
    this.#handler = undefined;
    this.#random = undefined;
  }

  /** The fault for this request, using up one application of a queued rule. */
  next(ctx: FaultContext): Fault | undefined {
    const index = this.#rules.findIndex(({ rule }) => matches(rule.match, ctx));
    const entry = this.#rules[index];
    if (entry) {
      entry.remaining -= 1;
      if (entry.remaining <= 0) this.#rules.splice(index, 1);
      return entry.rule.fault;
    }
    return this.#handler?.(ctx) ?? this.#random?.pick();
  }
}
