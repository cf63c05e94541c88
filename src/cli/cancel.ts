/**
 * `teams-courier cancel <jobId>`: cancels a Teams batch job (src/flows/cancelJob.ts, the same as
 * DELETE /api/notify/{id}): the flag on its record, and a poll on the queue that makes the app
 * cancel the operations Teams is running.
 */
import { cancelBatchJob } from '../flows/cancelJob';
import { parseJobArgs } from './args';
import { fetchView, waitForJobs, type CliContext } from './context';
import { progressLine, renderStatus } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import { quoteArg, reportOne } from './report';

export const CANCEL_HELP = `usage: teams-courier cancel <jobId> [--json] [--watch [--timeout <seconds>]]

Cancels a Teams batch job (a job sent with to.batch): no request of it starts after this, and the
app cancels, in Teams, the operations still running (its next poll, queued at once). What Teams
already delivered stays delivered. Other jobs cannot be cancelled: delete what they sent with
send --delete.

  --json                 the job's status JSON on stdout
  --watch                follow the job until the cancelled operations have finished
  --timeout <seconds>    how long --watch waits (default 60; 0 waits without limit)

Needs Storage Table Data Contributor (the record) and Storage Queue Data Message Sender (the poll).

exit codes: 0 cancelled (or cancelling), 1 unknown, not a batch job, or already over, 2 usage error`;

export async function cancelCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const { id, json, watch, timeoutMs } = parseJobArgs(argv, 'cancel');

  const storage = ctx.storage();
  const deliveries = storage.deliveries();
  const queue = { requeue: (text: string, delayMs: number) => storage.enqueue(text, delayMs / 1000) };
  const outcome = await cancelBatchJob({ deliveries, queue }, id, ctx.now());
  if (outcome.kind === 'unknown') {
    if (json) out(ctx.io, JSON.stringify({ id, status: 'unknown' }, null, 2));
    err(ctx.io, `no job "${id}" is known`);
    return EXIT_FAILED;
  }
  if (outcome.kind !== 'cancelling') {
    const view = await fetchView(deliveries, id, ctx.now());
    if (json && view !== undefined) out(ctx.io, JSON.stringify(view.body, null, 2));
    err(
      ctx.io,
      outcome.kind === 'notBatch'
        ? `job "${id}" is not a batch job (to.batch); only those can be cancelled`
        : `job "${id}" is over (${String(view?.body.status ?? outcome.record.status)}); there is nothing to cancel`,
    );
    return EXIT_FAILED;
  }
  err(
    ctx.io,
    outcome.again
      ? `job ${id} was already being cancelled (since ${outcome.record.cancelRequestedAt ?? '?'})`
      : `cancelled job ${id}: no request starts from now on; the app cancels the running operations in Teams`,
  );
  if (watch) {
    const result = await waitForJobs(ctx, [id], timeoutMs, (views) => {
      const view = views.get(id);
      return view === undefined ? `${id}: ?` : progressLine(view);
    });
    const code = reportOne(ctx, id, result.views.get(id), result.timedOut, timeoutMs, json);
    return result.timedOut ? code : EXIT_OK;
  }
  const view = await fetchView(deliveries, id, ctx.now());
  if (json) out(ctx.io, JSON.stringify(view?.body ?? { id }, null, 2));
  else if (view !== undefined) for (const line of renderStatus(view)) out(ctx.io, line);
  if (view?.done !== true) err(ctx.io, `follow it with: teams-courier status ${quoteArg(id)} --watch`);
  return EXIT_OK;
}
