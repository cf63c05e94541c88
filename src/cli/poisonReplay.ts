/**
 * `teams-courier poison replay`: puts chosen poison jobs back on the job queue under their own ids
 * (src/flows/replayJob.ts), or with --dry-run says what it would do. What it does not replay is
 * made visible again before it exits.
 */
import { matchesFilter, type PoisonEntry } from '../core/poison';
import { planReplay, replayPoisoned, type ReplayResult } from '../flows/replayJob';
import { parseArgs, parseCount, UsageError, type OptionSpecs } from './args';
import type { CliContext } from './context';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import { operatorStorage } from './operatorStorage';
import { DEFAULT_LIMIT, FILTER_OPTIONS, filterFrom, receiveAll, toJson, type Received } from './poisonEntries';
import { quoteArg } from './report';

const REPLAY_OPTIONS: OptionSpecs = { ...FILTER_OPTIONS, all: { kind: 'boolean' }, 'dry-run': { kind: 'boolean' } };

type Outcome = ReplayResult | { readonly kind: 'duplicate'; readonly jobId: string };

interface Replayed {
  readonly entry: PoisonEntry;
  readonly result: Outcome;
}

export async function poisonReplayCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, REPLAY_OPTIONS, 'poison replay');
  const ids = args.positionals;
  for (const id of ids) if (id.trim() === '' || id.length > 512) throw new UsageError('a job id is 1-512 characters');
  const filter = filterFrom(args, ctx, ids);
  const all = args.flags.has('all');
  if (
    !all &&
    ids.length === 0 &&
    filter.code === undefined &&
    filter.since === undefined &&
    filter.parentId === undefined
  ) {
    throw new UsageError(
      'which jobs? give job ids, --reason <code>, --since <when>, --parent <jobId>, or --all (try --dry-run first)',
    );
  }
  if (all && ids.length > 0) throw new UsageError('--all replays every job: give either job ids or --all');
  const dryRun = args.flags.has('dry-run');
  const limit = parseCount(args.strings.get('limit'), 'limit') ?? DEFAULT_LIMIT;

  const received = await receiveAll(ctx, limit);
  const chosen = received.filter((r) => matchesFilter(r.entry, filter));
  const left: Received[] = received.filter((r) => !chosen.includes(r));
  let results: Replayed[];
  try {
    results = await replayEach(ctx, chosen, left, dryRun);
  } finally {
    await operatorStorage(ctx)
      .poison()
      .release(left.map((r) => r.message));
  }

  const missing = ids.filter((id) => !chosen.some((r) => r.entry.jobId === id));
  printReplayed(ctx, results, missing, dryRun, args.flags.has('json'));
  const count = (kind: string): number => results.filter((r) => r.result.kind === kind).length;
  const requeued = count('requeued');
  const refused = count('refused');
  err(
    ctx.io,
    `${dryRun ? 'dry run: would requeue' : 'requeued'} ${requeued}, already sent ${count('alreadySent')}, not replayable ${refused}${count('duplicate') > 0 ? `, duplicates ${count('duplicate')}` : ''}${received.length >= limit ? ` (looked at the first ${limit} messages only)` : ''}`,
  );
  if (!dryRun && requeued > 0) {
    const one = results.find((r) => r.result.kind === 'requeued')?.entry.jobId;
    if (one !== undefined) err(ctx.io, `follow a job with: teams-courier status ${quoteArg(one)} --watch`);
  }
  return refused > 0 || missing.length > 0 ? EXIT_FAILED : EXIT_OK;
}

/**
 * Replays (or with `dryRun` plans) each chosen message in order. Messages to make visible again
 * are added to `left`: every one on a dry run, the refused ones otherwise.
 */
async function replayEach(
  ctx: CliContext,
  chosen: readonly Received[],
  left: Received[],
  dryRun: boolean,
): Promise<Replayed[]> {
  const storage = operatorStorage(ctx);
  const deliveries = ctx.storage().deliveries();
  const results: Replayed[] = [];
  const done = new Map<string, ReplayResult['kind']>();
  const progress = ctx.progress();
  try {
    for (const [i, { message, entry }] of chosen.entries()) {
      progress.update(`${dryRun ? 'checking' : 'replaying'} ${i + 1}/${chosen.length}…`);
      const first = entry.jobId === undefined ? undefined : done.get(entry.jobId);
      if (first !== undefined && first !== 'refused') {
        // The same job twice in the poison queue (the host moved a copy too): one replay is enough.
        // A dry run changes nothing: the copy is made visible again with the others it looked at.
        if (dryRun) left.push({ message, entry });
        else await storage.poison().remove(message);
        results.push({ entry, result: { kind: 'duplicate', jobId: entry.jobId! } });
        continue;
      }
      let result: ReplayResult;
      if (dryRun) {
        const record = entry.jobId === undefined || !entry.replay.ok ? undefined : await deliveries.get(entry.jobId);
        const { plan, why } = planReplay(entry, record);
        result =
          plan === 'refused'
            ? { kind: 'refused', ...(entry.jobId === undefined ? {} : { jobId: entry.jobId }), why: why ?? '' }
            : plan === 'alreadySent'
              ? { kind: 'alreadySent', jobId: entry.jobId! }
              : { kind: 'requeued', jobId: entry.jobId!, was: record?.status ?? 'unknown' };
        left.push({ message, entry });
      } else {
        result = await replayPoisoned(entry, message, {
          deliveries,
          queue: storage.jobs(),
          poison: storage.poison(),
          now: ctx.now,
        });
        if (result.kind === 'refused') left.push({ message, entry });
      }
      if (entry.jobId !== undefined) done.set(entry.jobId, result.kind);
      results.push({ entry, result });
    }
  } finally {
    progress.done();
  }
  return results;
}

/** One line (or JSON object) per message, then the ids given that are not in the poison queue. */
function printReplayed(
  ctx: CliContext,
  results: readonly Replayed[],
  missing: readonly string[],
  dryRun: boolean,
  json: boolean,
): void {
  if (json) {
    out(
      ctx.io,
      JSON.stringify(
        {
          dryRun,
          results: results.map(({ entry, result }) => ({
            ...toJson(entry),
            result: result.kind,
            ...('was' in result ? { was: result.was } : {}),
            ...('why' in result ? { why: result.why } : {}),
          })),
          notFound: missing,
        },
        null,
        2,
      ),
    );
  } else {
    for (const { entry, result } of results) out(ctx.io, `${dryRun ? 'would be: ' : ''}${resultLine(result, entry)}`);
  }
  for (const id of missing) err(ctx.io, `job "${id}" is not in ${operatorStorage(ctx).poisonQueueName}`);
}

function resultLine(result: Outcome, entry: PoisonEntry): string {
  const id = entry.jobId ?? '(no id)';
  switch (result.kind) {
    case 'requeued':
      return `requeued      ${id}  (failed with ${entry.code}; record was ${result.was})`;
    case 'alreadySent':
      return `already sent  ${id}  (never sent twice; removed from the poison queue)`;
    case 'duplicate':
      return `duplicate     ${id}  (another poison message of the same job; removed)`;
    case 'refused':
      return `not replayed  ${id}  (${result.why})`;
  }
}
