/**
 * The outcome of a job as `send --wait` and `status` print it, and the exit code it means.
 */
import type { StatusView } from '../flows/statusView';
import { seconds, type CliContext } from './context';
import { notYetKnownLine, progressLine, renderStatus } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';

/** Exit 0 only when everything was sent. */
export function outcomeCode(view: StatusView | undefined): number {
  return view?.done === true && view.body.status === 'sent' ? EXIT_OK : EXIT_FAILED;
}

export function reportOne(
  ctx: CliContext,
  id: string,
  view: StatusView | undefined,
  timedOut: boolean,
  timeoutMs: number,
  json: boolean,
): number {
  if (json) out(ctx.io, JSON.stringify(view?.body ?? { id, status: 'queued' }, null, 2));
  else if (view !== undefined) for (const line of renderStatus(view)) out(ctx.io, line);
  if (timedOut) {
    err(
      ctx.io,
      `gave up waiting after ${seconds(timeoutMs)}: ${view === undefined ? notYetKnownLine(id) : progressLine(view)}`,
    );
    if (view === undefined)
      err(
        ctx.io,
        `nothing has picked the job up: is the app running and reading the queue ${ctx.storage().settings.queueName}?`,
      );
    err(ctx.io, `keep watching with: teams-courier status ${quoteArg(id)} --watch`);
    return EXIT_FAILED;
  }
  return outcomeCode(view);
}

/** Quotes an id for a shell command line when it needs it. */
export function quoteArg(value: string): string {
  return /^[A-Za-z0-9._:@~+=,/-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
