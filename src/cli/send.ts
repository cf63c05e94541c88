/**
 * `teams-courier send`: builds a job from options (or reads jobs from a file), validates every job
 * locally with the sender's own rules (parseJob), puts each on the job queue as plain JSON, and
 * optionally waits for the delivery records.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { admitJobs } from '../core/admission';
import type { Job } from '../core/job';
import type { Problem } from '../errors';
import type { StatusView } from '../flows/statusView';
import { parseArgs, parseSeconds, UsageError, type OptionSpecs } from './args';
import { seconds, waitForJobs, type CliContext } from './context';
import { countsLine, notYetKnownLine, plural, progressLine, renderTable } from './format';
import { CliFailure, err, EXIT_FAILED, EXIT_OK, EXIT_USAGE, out } from './io';
import { describeStorage } from './settings';
import { outcomeCode, quoteArg, reportOne } from './report';
import { describeStorageError } from './storage';

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

exit codes: 0 queued (with --wait: sent), 1 failed (a job failed, timed out, or storage refused),
2 usage error or invalid job (nothing was queued)`;

const OPTIONS: OptionSpecs = {
  to: { kind: 'list', value: '<aadObjectId>' },
  tenant: { kind: 'string', value: '<tenantId>' },
  conversation: { kind: 'string', value: '<conversationId>' },
  channel: { kind: 'string', value: '<channelId>' },
  thread: { kind: 'string', value: '<rootMessageId>' },
  'all-installed': { kind: 'boolean' },
  type: { kind: 'string', value: 'personal|groupChat|channel' },
  update: { kind: 'string', value: '<jobId>' },
  delete: { kind: 'string', value: '<jobId>' },
  file: { kind: 'string', value: '<jobs.json>' },
  text: { kind: 'string', value: '"..."' },
  format: { kind: 'string', value: 'markdown|plain|xml' },
  card: { kind: 'string', value: '<card.json>' },
  summary: { kind: 'string', value: '"..."' },
  id: { kind: 'string', value: '<jobId>' },
  'not-before': { kind: 'string', value: '<ISO 8601 date-time>' },
  wait: { kind: 'boolean' },
  timeout: { kind: 'string', value: '<seconds>' },
  json: { kind: 'boolean' },
  'dry-run': { kind: 'boolean' },
};

const TARGETS = ['to', 'conversation', 'channel', 'all-installed', 'update', 'delete', 'file'] as const;
type Target = (typeof TARGETS)[number];
const CONTENT = ['text', 'format', 'card', 'summary'] as const;

/** The option that set each job field, so a problem names what the user typed. */
const FLAG_OF: readonly (readonly [string, string])[] = [
  ['to.aadObjectIds', '--to'],
  ['to.aadObjectId', '--to'],
  ['to.tenantId', '--tenant'],
  ['to.conversationId', '--conversation'],
  ['to.channelId', '--channel'],
  ['to.threadId', '--thread'],
  ['to.conversationType', '--type'],
  ['to.allInstalled', '--all-installed'],
  ['textFormat', '--format'],
  ['text', '--text'],
  ['summary', '--summary'],
  ['adaptiveCard', '--card'],
  ['mentions', '--text'],
  ['notBefore', '--not-before'],
  ['update', '--update'],
  ['delete', '--delete'],
  ['id', '--id'],
];

function flagFor(path: string): string | undefined {
  return FLAG_OF.find(([field]) => path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`))?.[1];
}

export interface PreparedJob {
  readonly job: Job;
  readonly body: Record<string, unknown>;
  readonly text: string;
  readonly delaySeconds: number;
  /** The job had no id of its own. */
  readonly generatedId: boolean;
}

/**
 * Admits jobs exactly as POST /api/notify and the sender do (src/core/admission.ts), without the
 * API's 100-job cap: every problem of every job, with `[i].` in front for arrays; a missing id gets
 * `newId()`. The CLI has storage rights, so it writes plain jobs to the queue, as any flow may.
 */
export function prepareJobs(
  body: unknown,
  now: Date,
  newId: () => string,
): { jobs: PreparedJob[] } | { problems: Problem[] } {
  const generated = new Set<string>();
  const admitted = admitJobs(body, {
    now,
    rootPath: '(file)',
    newId: () => {
      const id = newId();
      generated.add(id);
      return id;
    },
  });
  if ('problems' in admitted) return admitted;
  return {
    jobs: admitted.jobs.map(({ job, body: jobBody, delayMs }) => ({
      job,
      body: jobBody,
      text: JSON.stringify(jobBody),
      delaySeconds: Math.ceil(delayMs / 1000),
      generatedId: generated.has(job.id),
    })),
  };
}

function readJsonFile(ctx: CliContext, file: string, option: string): unknown {
  const full = ctx.resolvePath(file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${option}: cannot read ${full}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
  } catch (error) {
    throw new UsageError(`${option}: ${full} is not valid JSON: ${(error as Error).message}`);
  }
}

/** The job the options describe (not yet validated). */
function buildJob(ctx: CliContext, target: Target, args: ReturnType<typeof parseArgs>): Record<string, unknown> {
  const s = (name: string): string | undefined => args.strings.get(name);
  const tenant = s('tenant');
  const body: Record<string, unknown> = { id: s('id') ?? randomUUID() };
  switch (target) {
    case 'to': {
      const users = args.lists.get('to') ?? [];
      body.to =
        users.length === 1
          ? { aadObjectId: users[0], ...(tenant === undefined ? {} : { tenantId: tenant }) }
          : { aadObjectIds: users, ...(tenant === undefined ? {} : { tenantId: tenant }) };
      break;
    }
    case 'conversation':
      body.to = { conversationId: s('conversation') };
      break;
    case 'channel':
      body.to = { channelId: s('channel'), ...(s('thread') === undefined ? {} : { threadId: s('thread') }) };
      break;
    case 'all-installed':
      body.to = {
        allInstalled: true,
        ...(tenant === undefined ? {} : { tenantId: tenant }),
        ...(s('type') === undefined ? {} : { conversationType: s('type') }),
      };
      break;
    case 'update':
      body.update = s('update');
      break;
    case 'delete':
      body.delete = s('delete');
      break;
    case 'file':
      throw new Error('unreachable');
  }
  if (s('text') !== undefined) body.text = s('text');
  if (s('format') !== undefined) body.textFormat = s('format');
  if (s('summary') !== undefined) body.summary = s('summary');
  const card = s('card');
  if (card !== undefined) body.adaptiveCard = readJsonFile(ctx, card, '--card');
  if (s('not-before') !== undefined) body.notBefore = s('not-before');
  return body;
}

function checkCombination(args: ReturnType<typeof parseArgs>): Target {
  const given = (name: string): boolean => args.given.includes(name);
  const targets = TARGETS.filter(given);
  if (targets.length === 0)
    throw new UsageError(
      'say where the message goes: --to, --conversation, --channel, --all-installed, --update, --delete or --file',
    );
  if (targets.length > 1) throw new UsageError(`choose one target, not ${targets.map((t) => `--${t}`).join(' and ')}`);
  const target = targets[0]!;
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument "${args.positionals[0]}" (put the message in --text "...")`);
  const misplaced = (names: readonly string[], why: string): void => {
    const found = names.filter(given);
    if (found.length > 0) throw new UsageError(`${found.map((n) => `--${n}`).join(', ')} ${why}`);
  };
  if (target === 'file')
    misplaced(
      [...CONTENT, 'tenant', 'thread', 'type', 'id', 'not-before'],
      'cannot be combined with --file (put them in the file)',
    );
  if (target === 'delete') misplaced(CONTENT, 'cannot be combined with --delete (a delete job has no content)');
  if (target !== 'to' && target !== 'all-installed') misplaced(['tenant'], 'goes with --to or --all-installed');
  if (target !== 'channel') misplaced(['thread'], 'goes with --channel');
  if (target !== 'all-installed') misplaced(['type'], 'goes with --all-installed');
  if (!args.flags.has('wait')) misplaced(['timeout'], 'goes with --wait');
  if (args.flags.has('dry-run')) misplaced(['wait'], 'cannot be combined with --dry-run');
  return target;
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

export async function sendCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, OPTIONS, 'send');
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

  const storage = ctx.storage();
  const where = `${storage.settings.queueName} at ${describeStorage(storage.settings.storage)}`;
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
  progress.done(jobs.length > 1 ? `queued ${jobs.length}/${jobs.length} on ${where}` : undefined);

  if (!args.flags.has('wait')) {
    if (json) {
      const list = jobs.map(({ job, delaySeconds }) => ({
        id: job.id,
        kind: job.kind,
        ...(delaySeconds > 0 ? { notBefore: job.notBefore?.toISOString() } : {}),
      }));
      out(
        ctx.io,
        JSON.stringify(
          many
            ? { queue: storage.settings.queueName, jobs: list }
            : { queue: storage.settings.queueName, ...list[0], status: 'queued' },
          null,
          2,
        ),
      );
    } else {
      for (const { job } of jobs) out(ctx.io, job.id);
    }
    if (!many) {
      const job = jobs[0]!.job;
      err(
        ctx.io,
        `queued ${job.kind} job ${job.id} on ${where}${job.notBefore === undefined ? '' : ` for ${job.notBefore.toISOString()}`}`,
      );
      err(ctx.io, `follow it with: teams-courier status ${quoteArg(job.id)} --watch`);
    }
    return EXIT_OK;
  }

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
              : body.kind === 'broadcast' || body.kind === 'batch'
                ? countsLine(body)
                : '';
      return [id, String(body?.status ?? 'queued'), detail];
    });
    for (const line of renderTable(['JOB', 'STATUS', 'DETAIL'], rows)) out(ctx.io, line);
  }
  if (timedOut) err(ctx.io, `gave up waiting after ${seconds(timeoutMs)}: ${describeMany(views)}`);
  return timedOut || ids.some((id) => outcomeCode(views.get(id)) !== EXIT_OK) ? EXIT_FAILED : EXIT_OK;
}
