/**
 * BATCH_MEMBERS_PER_REQUEST and BATCH_POLL_INTERVAL_MS: Teams' batch messaging (docs/flows.md,
 * "Batch jobs"). Microsoft documents neither figure precisely, so both are settings.
 */
import type { Problem } from '../errors';
import { parseInteger, type Env } from './parsers';

export interface BatchConfig {
  /** Members (users or channels) per batch request; lists are split into balanced requests. */
  readonly membersPerRequest: number;
  /** The first wait before a batch operation's state is read; later polls back off from it. */
  readonly pollIntervalMs: number;
}

export const BATCH_DEFAULTS: BatchConfig = Object.freeze({ membersPerRequest: 100, pollIntervalMs: 10_000 });

export function loadBatch(env: Env, problems: Problem[]): BatchConfig {
  return {
    membersPerRequest: parseInteger(
      env,
      'BATCH_MEMBERS_PER_REQUEST',
      BATCH_DEFAULTS.membersPerRequest,
      10,
      1000,
      problems,
    ),
    pollIntervalMs: parseInteger(env, 'BATCH_POLL_INTERVAL_MS', BATCH_DEFAULTS.pollIntervalMs, 1000, 300_000, problems),
  };
}
