/**
 * `teams-courier poison list | show <jobId> | replay`: the failed jobs in the poison queue, with
 * their reasons, and putting chosen ones back on the job queue under their own ids once the cause
 * is fixed (src/flows/replayJob.ts; docs/operate.md).
 *
 * The poison queue is read by receiving (a peek sees only 32 messages): what a command does not
 * replay is made visible again before it exits. A command that is killed leaves its messages hidden
 * for a few minutes at most; nothing is lost.
 */
import { HOST_POISONED, matchesFilter, parsePoisonMessage, type PoisonEntry, type PoisonFilter } from '../core/poison';
import { parseSince } from '../core/stats';
import { planReplay, replayPoisoned, type ReplayResult } from '../flows/replayJob';
import type { PoisonMessage } from '../store/poisonQueue';
import { parseArgs, parseCount, UsageError, wantsHelp, type OptionSpecs } from './args';
import { fetchView, type CliContext } from './context';
import { plural, renderStatus, renderTable } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import { explainRefusal, operatorStorage } from './operatorStorage';
import { quoteArg } from './report';

export const POISON_HELP = `usage: teams-courier poison list [--reason <code>] [--since <when>] [--parent <jobId>] [--limit <n>] [--json]
       teams-courier poison show <jobId> [--json]
       teams-courier poison replay [<jobId>...] [--reason <code>] [--since <when>] [--parent <jobId>]
                                   [--all] [--dry-run] [--limit <n>] [--json]

The poison queue (<OUTBOUND_QUEUE>-poison) holds every job that failed for good, with its reason.
After the cause is fixed (a rotated secret, a Graph consent, an expired certificate), replay puts
the chosen jobs back on the job queue under their own ids:

- a job Teams already accepted is never sent again (its record says sent: the poison message is
  only removed);
- a failed record goes back to pending first (a conditional write), and its history keeps the
  earlier attempts and a "replayed" entry; the attempts start over;
- the job keeps its caller (an Entra-authenticated flow's namespace and tenants) and its broadcast
  or batch, whose counts show it as pending again.

Jobs that would fail the same way again (InvalidJob, JobTooLarge, a job kept only in part) are
listed as not replayable and stay where they are.

  list                  the failed jobs: id, code, when, attempts, replayable, reason
  show <jobId>          one job's poison entries and its delivery record
  replay                put jobs back: the ids given, or those matching --reason / --since /
                        --parent, or --all of them
  --reason <code>       only this failure code (docs/delivery.md, "Failure reasons"), e.g.
                        Unauthorized; ${HOST_POISONED} for messages the Functions host moved
  --since <when>        only failures since then: 30m, 2h, 1d, or an ISO 8601 time
  --parent <jobId>      only the recipients of this broadcast (or the jobs of this batch)
  --all                 replay: every replayable job (needed when no id or filter is given)
  --dry-run             replay: show what would happen, change nothing
  --limit <n>           look at most at n poison messages (default 5000)
  --json                JSON on stdout

Job ids are the internal ones the poison queue shows: an Entra-authenticated caller's job is
<caller>:<id>. With Entra ID, list and show need Storage Queue Data Contributor on the poison
queue; replay also needs Storage Queue Data Message Sender on the job queue and Storage Table Data
Contributor.

exit codes: 0 ok, 1 a job was not found, not replayable, or storage failed, 2 usage error`;

const DEFAULT_LIMIT = 5_000;
/** How long messages stay hidden while a command works on them (released before it exits). */
const HIDE_SECONDS = 300;
const ROLES =
  'Storage Queue Data Contributor on the poison queue, Storage Queue Data Message Sender on the job queue and Storage Table Data Contributor';

const LIST_OPTIONS: OptionSpecs = {
  reason: { kind: 'string', value: '<code>' },
  parent: { kind: 'string', value: '<jobId>' },
  since: { kind: 'string', value: '<when>' },
  limit: { kind: 'string', value: '<n>' },
  json: { kind: 'boolean' },
};
const SHOW_OPTIONS: OptionSpecs = { json: { kind: 'boolean' } };
const REPLAY_OPTIONS: OptionSpecs = { ...LIST_OPTIONS, all: { kind: 'boolean' }, 'dry-run': { kind: 'boolean' } };

interface Received {
  readonly message: PoisonMessage;
  readonly entry: PoisonEntry;
}

export async function poisonCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new UsageError('poison needs a subcommand: list, show or replay');
  if (wantsHelp([sub, ...rest])) {
    out(ctx.io, POISON_HELP);
    return EXIT_OK;
  }
  try {
    switch (sub) {
      case 'list':
        return await listCommand(rest, ctx);
      case 'show':
        return await showCommand(rest, ctx);
      case 'replay':
        return await replayCommand(rest, ctx);
      default:
        throw new UsageError(`unknown subcommand "poison ${sub}"; the subcommands are list, show and replay`);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    return explainRefusal(error, ROLES);
  }
}

function filterFrom(args: ReturnType<typeof parseArgs>, ctx: CliContext, jobIds: readonly string[]): PoisonFilter {
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
async function receiveAll(ctx: CliContext, limit: number): Promise<Received[]> {
  const progress = ctx.progress();
  try {
    progress.update(`reading ${operatorStorage(ctx).poisonQueueName}…`);
    const messages = await operatorStorage(ctx).poison().receive({ max: limit, hideSeconds: HIDE_SECONDS });
    return messages.map((message) => ({ message, entry: parsePoisonMessage(message.text, message) }));
  } finally {
    progress.done();
  }
}

async function release(ctx: CliContext, received: readonly Received[]): Promise<void> {
  await operatorStorage(ctx)
    .poison()
    .release(received.map((r) => r.message));
}

function toJson(entry: PoisonEntry): Record<string, unknown> {
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

function entryRows(entries: readonly PoisonEntry[]): string[][] {
  return entries.map((e) => [
    e.jobId ?? '(no id)',
    e.code,
    e.failedAt ?? '',
    e.attempts === undefined ? '' : String(e.attempts),
    e.replay.ok ? 'yes' : 'no',
    shorten(e.replay.ok ? e.reason : `${e.replay.why} (${e.reason})`, 120),
  ]);
}

const HEADERS = ['JOB', 'CODE', 'FAILED', 'ATTEMPTS', 'REPLAY', 'REASON'];

async function listCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, LIST_OPTIONS, 'poison list');
  if (args.positionals.length > 0)
    throw new UsageError(
      `unexpected argument "${args.positionals[0]}" (to see one job: teams-courier poison show <jobId>)`,
    );
  const filter = filterFrom(args, ctx, []);
  const limit = parseCount(args.strings.get('limit'), 'limit') ?? DEFAULT_LIMIT;
  const received = await receiveAll(ctx, limit);
  try {
    const entries = received.map((r) => r.entry).filter((e) => matchesFilter(e, filter));
    if (args.flags.has('json')) out(ctx.io, JSON.stringify(entries.map(toJson), null, 2));
    else if (entries.length > 0) for (const line of renderTable(HEADERS, entryRows(entries))) out(ctx.io, line);
    const replayable = entries.filter((e) => e.replay.ok).length;
    const byCode = new Map<string, number>();
    for (const e of entries) byCode.set(e.code, (byCode.get(e.code) ?? 0) + 1);
    const codes = [...byCode]
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    const filtered =
      filter.code !== undefined || filter.since !== undefined || filter.parentId !== undefined ? ' matching' : '';
    err(
      ctx.io,
      entries.length === 0
        ? `no${filtered} failed jobs in ${operatorStorage(ctx).poisonQueueName}`
        : `${plural(entries.length, 'failed job')}${filtered} (${replayable} replayable): ${codes}${received.length >= limit ? ` (stopped at --limit ${limit}; there may be more)` : ''}`,
    );
    return EXIT_OK;
  } finally {
    await release(ctx, received);
  }
}

async function showCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, SHOW_OPTIONS, 'poison show');
  if (args.positionals.length !== 1) throw new UsageError('which job? teams-courier poison show <jobId>');
  const id = args.positionals[0]!;
  if (id.trim() === '' || id.length > 512) throw new UsageError('a job id is 1-512 characters');
  const received = await receiveAll(ctx, DEFAULT_LIMIT);
  try {
    const entries = received.map((r) => r.entry).filter((e) => e.jobId === id);
    const view = await fetchView(ctx.storage().deliveries(), id, ctx.now());
    if (args.flags.has('json')) {
      out(ctx.io, JSON.stringify({ id, poison: entries.map(toJson), record: view?.body ?? null }, null, 2));
    } else {
      if (entries.length > 0) for (const line of renderTable(HEADERS, entryRows(entries))) out(ctx.io, line);
      if (view !== undefined) {
        if (entries.length > 0) out(ctx.io);
        for (const line of renderStatus(view)) out(ctx.io, line);
      }
    }
    if (entries.length === 0) {
      err(
        ctx.io,
        `job "${id}" is not in ${operatorStorage(ctx).poisonQueueName}${view === undefined ? ', and no delivery record has that id' : ` (its record says ${String(view.body.status)})`}`,
      );
      return EXIT_FAILED;
    }
    if (entries.some((e) => e.replay.ok)) err(ctx.io, `replay it with: teams-courier poison replay ${quoteArg(id)}`);
    return EXIT_OK;
  } finally {
    await release(ctx, received);
  }
}

function resultLine(
  result: ReplayResult | { readonly kind: 'duplicate'; readonly jobId: string },
  entry: PoisonEntry,
): string {
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

async function replayCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
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
  const json = args.flags.has('json');
  const limit = parseCount(args.strings.get('limit'), 'limit') ?? DEFAULT_LIMIT;
  const storage = operatorStorage(ctx);

  const received = await receiveAll(ctx, limit);
  const chosen = received.filter((r) => matchesFilter(r.entry, filter));
  const left: Received[] = received.filter((r) => !chosen.includes(r));
  const results: { entry: PoisonEntry; result: ReplayResult | { kind: 'duplicate'; jobId: string } }[] = [];
  try {
    const deliveries = ctx.storage().deliveries();
    const done = new Map<string, ReplayResult['kind']>();
    const progress = ctx.progress();
    try {
      for (const [i, { message, entry }] of chosen.entries()) {
        progress.update(`${dryRun ? 'checking' : 'replaying'} ${i + 1}/${chosen.length}…`);
        const first = entry.jobId === undefined ? undefined : done.get(entry.jobId);
        if (first !== undefined && first !== 'refused') {
          // The same job twice in the poison queue (the host moved a copy too): one replay is enough.
          if (!dryRun) await storage.poison().remove(message);
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
  } finally {
    await storage.poison().release(left.map((r) => r.message));
  }

  const missing = ids.filter((id) => !chosen.some((r) => r.entry.jobId === id));
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
  const count = (kind: string): number => results.filter((r) => r.result.kind === kind).length;
  const requeued = count('requeued');
  const refused = count('refused');
  for (const id of missing) err(ctx.io, `job "${id}" is not in ${storage.poisonQueueName}`);
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
