/**
 * `send --wait`: waits for the delivery records of the jobs just queued and prints the outcome,
 * one job as `status` shows it, several as a table.
 */
import type { StatusView } from '../flows/statusView';
import { seconds, waitForJobs, type CliContext } from './context';
import { countsLine, isParentView, notYetKnownLine, progressLine, renderTable } from './format';
import { err, EXIT_FAILED, EXIT_OK, out } from './io';
import type { PreparedJob } from './prepareJobs';
import { outcomeCode, reportOne } from './report';

/** Waits up to `timeoutMs` (0: no limit) for the jobs' outcomes and prints them; the exit code. */
export async function waitAndReport(
  ctx: CliContext,
  jobs: readonly PreparedJob[],
  many: boolean,
  timeoutMs: number,
  json: boolean,
): Promise<number> {
  const latest = Math.max(...jobs.map((j) => j.delaySeconds)) * 1000;
  if (timeoutMs > 0 && latest > timeoutMs)
    err(
      ctx.io,
      `note: a job is scheduled ${seconds(latest)} ahead, after --timeout ${seconds(timeoutMs)}; --timeout 0 waits without limit`,
    );
  const ids = jobs.map((j) => j.job.id);
  const result = await waitForJobs(ctx, ids, timeoutMs, (views) =>
    ids.length === 1 ? describeOne(ids[0]!, views.get(ids[0]!)) : describeMany(views),
  );
  return many
    ? reportMany(ctx, ids, result.views, result.timedOut, timeoutMs, json)
    : reportOne(ctx, ids[0]!, result.views.get(ids[0]!), result.timedOut, timeoutMs, json);
}

function describeOne(id: string, view: StatusView | undefined): string {
  return view === undefined ? notYetKnownLine(id) : progressLine(view);
}

function describeMany(views: ReadonlyMap<string, StatusView | undefined>): string {
  let sent = 0;
  let failed = 0;
  for (const view of views.values()) {
    if (view?.done !== true) continue;
    if (view.body.status === 'sent') sent += 1;
    else failed += 1;
  }
  return countsLine({ sent, failed, pending: views.size - sent - failed, total: views.size });
}

function reportMany(
  ctx: CliContext,
  ids: readonly string[],
  views: ReadonlyMap<string, StatusView | undefined>,
  timedOut: boolean,
  timeoutMs: number,
  json: boolean,
): number {
  if (json) {
    out(
      ctx.io,
      JSON.stringify(
        ids.map((id) => views.get(id)?.body ?? { id, status: 'queued' }),
        null,
        2,
      ),
    );
  } else {
    const rows = ids.map((id) => {
      const body = views.get(id)?.body;
      const error = body?.error as { code?: string; reason?: string } | undefined;
      const detail =
        body === undefined
          ? 'not picked up yet'
          : error?.code !== undefined
            ? `${error.code}${error.reason ? `: ${error.reason}` : ''}`
            : typeof body.activityId === 'string'
              ? `activity ${body.activityId}`
              : isParentView(body)
                ? countsLine(body)
                : '';
      return [id, String(body?.status ?? 'queued'), detail];
    });
    for (const line of renderTable(['JOB', 'STATUS', 'DETAIL'], rows)) out(ctx.io, line);
  }
  if (timedOut) err(ctx.io, `gave up waiting after ${seconds(timeoutMs)}: ${describeMany(views)}`);
  return timedOut || ids.some((id) => outcomeCode(views.get(id)) !== EXIT_OK) ? EXIT_FAILED : EXIT_OK;
}
