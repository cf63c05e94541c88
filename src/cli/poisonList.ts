/** `teams-courier poison list` and `poison show <jobId>`: read the poison queue, change nothing. */
import { matchesFilter } from '../core/poison';
import { parseArgs, parseCount, UsageError, type OptionSpecs } from './args';
import { fetchView, type CliContext } from './context';
import { plural, renderStatus, renderTable } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import { operatorStorage } from './operatorStorage';
import {
  DEFAULT_LIMIT,
  ENTRY_HEADERS,
  entryRows,
  FILTER_OPTIONS,
  filterFrom,
  receiveAll,
  release,
  toJson,
} from './poisonEntries';
import { quoteArg } from './report';

const SHOW_OPTIONS: OptionSpecs = { json: { kind: 'boolean' } };

export async function poisonListCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, FILTER_OPTIONS, 'poison list');
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
    else if (entries.length > 0) for (const line of renderTable(ENTRY_HEADERS, entryRows(entries))) out(ctx.io, line);
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

export async function poisonShowCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
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
      if (entries.length > 0) for (const line of renderTable(ENTRY_HEADERS, entryRows(entries))) out(ctx.io, line);
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
