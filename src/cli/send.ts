/**
 * `teams-courier send`: builds a job from options (./sendOptions.ts) or reads jobs from a file,
 * validates every job locally with the sender's own rules (./prepareJobs.ts), puts each on the job
 * queue as plain JSON, and optionally waits for the delivery records (./sendWait.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Problem } from '../errors';
import { parseArgs, parseSeconds } from './args';
import type { CliContext } from './context';
import { plural } from './format';
import { CliFailure, err, EXIT_OK, EXIT_USAGE, out } from './io';
import { prepareJobs, type PreparedJob } from './prepareJobs';
import { quoteArg } from './report';
import { describeStorage } from './settings';
import { buildJob, checkCombination, flagFor, readJsonFile, SEND_OPTIONS } from './sendOptions';
import { waitAndReport } from './sendWait';
import { describeStorageError } from './storage';

export { prepareJobs, type PreparedJob } from './prepareJobs';

export const SEND_HELP = `usage: teams-courier send <target> [content] [options]

Puts a job on the job queue (OUTBOUND_QUEUE, default outbound-messages) and prints its id.
Every job is checked first with the sender's own rules; an invalid job is not queued.

target (exactly one):
  --to <aadObjectId>          a user's personal chat (their Entra object id); repeat --to for a
                              broadcast to several users (one personal chat each)
    --tenant <tenantId>       the user's tenant (needed when the bot knows the user in several
                              tenants, or must create the chat)
  --conversation <id>         any conversation the bot has seen (personal, group chat or channel)
  --channel <channelId>       a new post in a channel
    --thread <rootMessageId>  ... or a reply in that thread
  --all-installed             a broadcast to every conversation where the bot is installed
    --tenant <tenantId>       ... in one tenant
    --type <type>             ... of one type: personal, groupChat or channel
  --batch-to <id>             a Teams batch to users (repeat; at least 5): Entra object ids or
                              29: ids, with --tenant (one request per BATCH_MEMBERS_PER_REQUEST)
  --batch-tenant <tenantId>   a Teams batch to every user of the tenant who has the app
  --batch-team <teamId>       a Teams batch to every member of a team [--tenant]
  --batch-channel <id>        a Teams batch post to channels (repeat; at least 5) [--tenant]
                              Batches reach users with no stored chat in fewer requests, but
                              cannot be updated or deleted, nor mention anyone (docs/flows.md)
  --update <jobId>            replace what an earlier job sent (give new content)
  --delete <jobId>            delete what an earlier job sent
  --file <jobs.json>          a job, or an array of jobs, in the JSON format of the queue and of
                              POST /api/notify (schemas/job.schema.json); queued one by one

content:
  --text "..."                the message text
  --format <format>           markdown (default), plain or xml
  --card <card.json>          an Adaptive Card from a file
  --summary "..."             what notifications and the activity feed show

options:
  --id <jobId>                the job id (default: a new UUID). A job id is delivered at most once,
                              so sending the same id again is safe
  --not-before <ISO 8601>     deliver no earlier than this, e.g. 2026-11-26T08:00:00Z (at most 7 days ahead)
  --wait                      wait for the outcome and print it (exit code 1 if it failed)
  --timeout <seconds>         how long --wait waits (default 60; 0 waits without limit)
  --json                      machine-readable output on stdout
  --dry-run                   check and print the job(s) without queueing anything

examples:
  teams-courier send --to 6f2c1a4e-1b7d-4c38-9d5e-0000000000a1 --tenant 72f988bf-0000-4000-8000-00000000c0de \\
    --text "Invoice **4711** is overdue." --id invoice-4711 --wait
  teams-courier send --channel "19:abc@thread.tacv2" --thread 1763660000000 --text "Fixed." --format plain
  teams-courier send --update invoice-4711 --text "Invoice 4711 was paid, thank you."
  teams-courier send --file samples/jobs/broadcast-users.json --wait --timeout 300
  teams-courier send --batch-tenant 72f988bf-0000-4000-8000-00000000c0de --text "Maintenance tonight" \
    --id maint-2026-11-28 --wait --timeout 0

exit codes: 0 queued (with --wait: sent), 1 failed (a job failed, timed out, or storage refused),
2 usage error or invalid job (nothing was queued)`;

export async function sendCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, SEND_OPTIONS, 'send');
  const target = checkCombination(args);
  const json = args.flags.has('json');
  const timeoutMs = parseSeconds(args.strings.get('timeout'), 'timeout', 60) * 1000;

  const fromOptions = target !== 'file';
  const input = fromOptions ? buildJob(ctx, target, args) : readJsonFile(ctx, args.strings.get('file')!, '--file');
  const prepared = prepareJobs(input, ctx.now(), randomUUID);
  if ('problems' in prepared) {
    printProblems(ctx, prepared.problems, fromOptions);
    return EXIT_USAGE;
  }
  const { jobs } = prepared;
  const many = Array.isArray(input);

  if (args.flags.has('dry-run')) {
    out(ctx.io, JSON.stringify(many ? jobs.map((j) => j.body) : jobs[0]!.body, null, 2));
    err(ctx.io, `${many ? `${plural(jobs.length, 'job')} are` : 'the job is'} valid; nothing was queued (--dry-run)`);
    return EXIT_OK;
  }

  await enqueueAll(ctx, jobs, json);
  if (args.flags.has('wait')) return waitAndReport(ctx, jobs, many, timeoutMs, json);
  printQueued(ctx, jobs, many, json);
  return EXIT_OK;
}

function printProblems(ctx: CliContext, problems: readonly Problem[], fromOptions: boolean): void {
  err(
    ctx.io,
    `invalid job${problems.some((p) => p.path.startsWith('[')) ? 's' : ''}: ${plural(problems.length, 'problem')}; nothing was queued`,
  );
  for (const p of problems) {
    const flag = fromOptions ? flagFor(p.path) : undefined;
    err(ctx.io, `  ${p.path}${flag === undefined ? '' : ` (${flag})`}: ${p.message}`);
  }
}

function queueDescription(ctx: CliContext): string {
  const { settings } = ctx.storage();
  return `${settings.queueName} at ${describeStorage(settings.storage)}`;
}

/**
 * Queues the jobs in order. When one fails, the ids of those already queued go to stdout and the
 * CliFailure says whether sending the file again is safe.
 */
async function enqueueAll(ctx: CliContext, jobs: readonly PreparedJob[], json: boolean): Promise<void> {
  const storage = ctx.storage();
  const progress = ctx.progress();
  let queued = 0;
  try {
    for (const { text, delaySeconds } of jobs) {
      await storage.enqueue(text, delaySeconds);
      queued += 1;
      if (jobs.length > 1) progress.update(`queued ${queued}/${jobs.length}`);
    }
  } catch (error) {
    progress.done();
    const done = jobs.slice(0, queued).map((j) => j.job.id);
    if (done.length > 0) {
      if (json) out(ctx.io, JSON.stringify({ queue: storage.settings.queueName, queued: done }, null, 2));
      else for (const id of done) out(ctx.io, id);
    }
    const anonymous = jobs.some((j) => j.generatedId);
    throw new CliFailure(
      [
        `could not queue ${queued === 0 ? 'the job' : `job ${queued + 1} of ${jobs.length} (${jobs[queued]!.job.id})`}: ${ctx.redact(describeStorageError(error, 'queue'))}`,
        ...(queued > 0
          ? [`${plural(queued, 'job')} before it ${queued === 1 ? 'is' : 'are'} on the queue (ids on stdout).`]
          : []),
        ...(queued > 0 && !anonymous ? ['Sending the file again is safe: a job id is delivered at most once.'] : []),
        ...(queued > 0 && anonymous
          ? ['Some jobs have no "id", so sending the file again would send those twice; give every job an id.']
          : []),
      ].join('\n'),
    );
  }
  progress.done(jobs.length > 1 ? `queued ${jobs.length}/${jobs.length} on ${queueDescription(ctx)}` : undefined);
}

/** Without --wait: the ids on stdout (or JSON), and for one job where it went and how to follow it. */
function printQueued(ctx: CliContext, jobs: readonly PreparedJob[], many: boolean, json: boolean): void {
  const queue = ctx.storage().settings.queueName;
  if (json) {
    const list = jobs.map(({ job, delaySeconds }) => ({
      id: job.id,
      kind: job.kind,
      ...(delaySeconds > 0 ? { notBefore: job.notBefore?.toISOString() } : {}),
    }));
    out(ctx.io, JSON.stringify(many ? { queue, jobs: list } : { queue, ...list[0], status: 'queued' }, null, 2));
  } else {
    for (const { job } of jobs) out(ctx.io, job.id);
  }
  if (!many) {
    const job = jobs[0]!.job;
    err(
      ctx.io,
      `queued ${job.kind} job ${job.id} on ${queueDescription(ctx)}${job.notBefore === undefined ? '' : ` for ${job.notBefore.toISOString()}`}`,
    );
    err(ctx.io, `follow it with: teams-courier status ${quoteArg(job.id)} --watch`);
  }
}
