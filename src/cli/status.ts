/**
 * `teams-courier status <id>`: a job's delivery record, as GET /api/notify/{id} shows it
 * (toStatusView, with child counts for broadcasts and batches), read straight from the
 * `deliveries` table.
 */
import { parseJobArgs } from './args';
import { fetchView, seconds, waitForJobs, type CliContext } from './context';
import { notYetKnownLine, progressLine, renderStatus } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import { quoteArg, reportOne } from './report';

export const STATUS_HELP = `usage: teams-courier status <jobId> [--json] [--watch [--timeout <seconds>]]

Shows a job's delivery record from the deliveries table: pending, retrying, sent (with the Teams
activity id) or failed (with the error code and reason), the attempts, and, for a broadcast or a
batch, how many of its messages were sent, failed or are pending.

  --json                 the status JSON of GET /api/notify/{id} on stdout
  --watch                poll until the job is done, showing progress on one line
  --timeout <seconds>    how long --watch waits (default 60; 0 waits without limit)

A job put on the queue has no record until the sender picks it up (a second or two), unless it
came through POST /api/notify. A record never shows the message text.

exit codes: 0 found (with --watch: sent), 1 unknown, failed, partly failed or still pending after
--timeout, 2 usage error`;

export async function statusCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const { id, json, watch, timeoutMs } = parseJobArgs(argv, 'status');

  if (watch) {
    const result = await waitForJobs(ctx, [id], timeoutMs, (views) => {
      const view = views.get(id);
      return view === undefined ? notYetKnownLine(id) : progressLine(view);
    });
    const view = result.views.get(id);
    if (view === undefined && result.timedOut) {
      if (json) out(ctx.io, JSON.stringify({ id, status: 'unknown' }, null, 2));
      err(
        ctx.io,
        `no job "${id}" appeared within ${seconds(timeoutMs)}; check the id, and that the app is running and reads ${ctx.storage().settings.queueName}`,
      );
      return EXIT_FAILED;
    }
    return reportOne(ctx, id, view, result.timedOut, timeoutMs, json);
  }

  const view = await fetchView(ctx.storage().deliveries(), id, ctx.now());
  if (view === undefined) {
    if (json) out(ctx.io, JSON.stringify({ id, status: 'unknown' }, null, 2));
    err(
      ctx.io,
      `no job "${id}" is known. A job just put on the queue has no record until the sender picks it up; try: teams-courier status ${quoteArg(id)} --watch`,
    );
    return EXIT_FAILED;
  }
  if (json) out(ctx.io, JSON.stringify(view.body, null, 2));
  else for (const line of renderStatus(view)) out(ctx.io, line);
  const status = view.body.status;
  return status === 'failed' || status === 'partial' ? EXIT_FAILED : EXIT_OK;
}
