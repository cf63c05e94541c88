/**
 * What the poison commands share: the filter options, receiving the poison messages (hidden
 * meanwhile, so a receive sees more than a peek's 32) and releasing them, and an entry as a table
 * row or as JSON.
 */
import { parsePoisonMessage, type PoisonEntry, type PoisonFilter } from '../core/poison';
import { parseSince } from '../core/stats';
import type { PoisonMessage } from '../store/poisonQueue';
import { UsageError, type OptionSpecs, type ParsedArgs } from './args';
import type { CliContext } from './context';
import { operatorStorage } from './operatorStorage';

/** How many poison messages a command looks at, unless --limit says otherwise. */
export const DEFAULT_LIMIT = 5_000;
/** How long messages stay hidden while a command works on them (released before it exits). */
const HIDE_SECONDS = 300;

/** The options of `poison list`; `replay` has them too. */
export const FILTER_OPTIONS: OptionSpecs = {
  reason: { kind: 'string', value: '<code>' },
  parent: { kind: 'string', value: '<jobId>' },
  since: { kind: 'string', value: '<when>' },
  limit: { kind: 'string', value: '<n>' },
  json: { kind: 'boolean' },
};

export interface Received {
  readonly message: PoisonMessage;
  readonly entry: PoisonEntry;
}

export function filterFrom(args: ParsedArgs, ctx: CliContext, jobIds: readonly string[]): PoisonFilter {
  const since = args.strings.get('since');
  const code = args.strings.get('reason');
  if (code !== undefined && code.trim() === '') throw new UsageError('--reason must not be empty');
  const parentId = args.strings.get('parent');
  if (parentId !== undefined && parentId.trim() === '') throw new UsageError('--parent must not be empty');
  let from: Date | undefined;
  if (since !== undefined) {
    try {
      from = parseSince(since, ctx.now());
    } catch (error) {
      throw new UsageError(`--since: ${(error as Error).message}`);
    }
  }
  return {
    ...(jobIds.length === 0 ? {} : { jobIds }),
    ...(code === undefined ? {} : { code }),
    ...(from === undefined ? {} : { since: from }),
    ...(parentId === undefined ? {} : { parentId }),
  };
}

/** Receives up to `limit` poison messages (hidden meanwhile) and reads each. */
export async function receiveAll(ctx: CliContext, limit: number): Promise<Received[]> {
  const progress = ctx.progress();
  try {
    progress.update(`reading ${operatorStorage(ctx).poisonQueueName}…`);
    const messages = await operatorStorage(ctx).poison().receive({ max: limit, hideSeconds: HIDE_SECONDS });
    return messages.map((message) => ({ message, entry: parsePoisonMessage(message.text, message) }));
  } finally {
    progress.done();
  }
}

export async function release(ctx: CliContext, received: readonly Received[]): Promise<void> {
  await operatorStorage(ctx)
    .poison()
    .release(received.map((r) => r.message));
}

export function toJson(entry: PoisonEntry): Record<string, unknown> {
  return {
    jobId: entry.jobId ?? null,
    code: entry.code,
    reason: entry.reason,
    failedAt: entry.failedAt ?? null,
    attempts: entry.attempts ?? null,
    ...(entry.caller === undefined ? {} : { caller: entry.caller }),
    ...(entry.parentId === undefined ? {} : { parentId: entry.parentId }),
    source: entry.source,
    replayable: entry.replay.ok,
    ...(entry.replay.ok ? {} : { why: entry.replay.why }),
  };
}

const shorten = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export function entryRows(entries: readonly PoisonEntry[]): string[][] {
  return entries.map((e) => [
    e.jobId ?? '(no id)',
    e.code,
    e.failedAt ?? '',
    e.attempts === undefined ? '' : String(e.attempts),
    e.replay.ok ? 'yes' : 'no',
    shorten(e.replay.ok ? e.reason : `${e.replay.why} (${e.reason})`, 120),
  ]);
}

export const ENTRY_HEADERS = ['JOB', 'CODE', 'FAILED', 'ATTEMPTS', 'REPLAY', 'REASON'];
