/**
 * The HTTP side for flows: POST /api/notify takes the same job JSON as the queue (one job, or an
 * array of up to 100), validates it all at once, queues it and answers 202 with a Location to
 * poll; GET /api/notify/{id} is that status. Independent of the Functions runtime.
 */
import { randomUUID } from 'node:crypto';
import { MAX_JOB_ID_LENGTH, MAX_SCHEDULE_MS, parseJob, toEnvelope, type Job } from '../core/job';
import { BadRequestError, JobValidationError, StorageUnavailableError, type Problem } from '../errors';
import { readBodyCapped, type MessagesRequest, type MessagesResponse } from '../inbound/handleMessages';
import type { Logger } from '../log';
import type { DeliveryStore } from '../store/deliveryStore';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes, type JobQueue } from '../store/jobQueue';
import { toStatusView } from './statusView';

export const MAX_JOBS_PER_REQUEST = 100;
export const MAX_NOTIFY_BODY_BYTES = 1024 * 1024;

export interface NotifyDeps {
  readonly deliveries: DeliveryStore;
  readonly queue: Pick<JobQueue, 'requeue'>;
  readonly now: () => Date;
  readonly newId?: () => string;
  readonly log: Logger;
}

export interface NotifyRequest extends MessagesRequest {
  /** The request URL: the status URL is built on its origin, keeping a `code` query (function key). */
  readonly url: string;
}

function statusUrl(requestUrl: string, id: string): string {
  const url = new URL(`/api/notify/${encodeURIComponent(id)}`, requestUrl);
  // The caller authenticated with ?code=<function key>: the poll needs it too.
  const code = new URL(requestUrl).searchParams.get('code');
  if (code !== null) url.searchParams.set('code', code);
  return url.toString();
}

function toErrorResponse(err: unknown, log: Logger): MessagesResponse {
  if (err instanceof BadRequestError) return { status: err.status, jsonBody: { error: err.message } };
  if (err instanceof StorageUnavailableError) {
    log.error('notify.unavailable', { reason: err.message });
    return { status: 503, headers: { 'Retry-After': '5' }, jsonBody: { error: 'Service unavailable; nothing was queued for jobs not listed as accepted' } };
  }
  log.error('notify.failed', { error: err });
  return { status: 500, jsonBody: { error: 'Internal error' } };
}

/** Validates every job; returns the jobs (with ids assigned) and the bodies to queue, or all problems. */
export function validateSubmission(body: unknown, now: Date, newId: () => string): { jobs: { job: Job; body: Record<string, unknown> }[] } | { problems: Problem[] } {
  const isArray = Array.isArray(body);
  const items = isArray ? (body as unknown[]) : [body];
  if (isArray && items.length === 0) return { problems: [{ path: '(body)', message: 'is an empty array' }] };
  if (items.length > MAX_JOBS_PER_REQUEST) return { problems: [{ path: '(body)', message: `has ${items.length} jobs; at most ${MAX_JOBS_PER_REQUEST} per request` }] };

  const problems: Problem[] = [];
  const jobs: { job: Job; body: Record<string, unknown> }[] = [];
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const prefix = isArray ? `[${i}]` : '';
    const at = (path: string): string => (prefix === '' ? path : path === '(job)' ? prefix : `${prefix}.${path}`);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push({ path: at('(job)'), message: 'must be a JSON object' });
      return;
    }
    const withId: Record<string, unknown> = { ...(item as Record<string, unknown>) };
    if (withId.id === undefined) withId.id = newId();
    try {
      const job = parseJob(withId, String(withId.id));
      if (job.notBefore !== undefined && job.notBefore.getTime() - now.getTime() > MAX_SCHEDULE_MS) {
        problems.push({ path: at('notBefore'), message: 'is more than 7 days ahead; a queue cannot hold a message that long' });
      }
      if (seen.has(job.id)) problems.push({ path: at('id'), message: `"${job.id}" appears more than once in this request` });
      const bytes = queueMessageBytes(JSON.stringify(withId));
      if (bytes > MAX_ENVELOPED_JOB_BYTES) problems.push({ path: at('(job)'), message: `is ${bytes} bytes; a job must fit in ${MAX_ENVELOPED_JOB_BYTES} bytes (a queue message is 64 KiB)` });
      seen.add(job.id);
      jobs.push({ job, body: withId });
    } catch (err) {
      if (!(err instanceof JobValidationError)) throw err;
      for (const p of err.problems) problems.push({ path: at(p.path), message: p.message });
    }
  });
  return problems.length > 0 ? { problems } : { jobs };
}

export async function handleNotifyPost(request: NotifyRequest, deps: NotifyDeps): Promise<MessagesResponse> {
  const { log } = deps;
  const newId = deps.newId ?? randomUUID;
  try {
    if (request.method.toUpperCase() !== 'POST') return { status: 405, headers: { Allow: 'POST' }, jsonBody: { error: 'Only POST is allowed.' } };
    const bytes = await readBodyCapped(request.body, MAX_NOTIFY_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new BadRequestError('The body is not valid JSON.');
    }
    const now = deps.now();
    const validated = validateSubmission(body, now, newId);
    if ('problems' in validated) {
      log.warn('notify.rejected', { problems: validated.problems.length });
      return { status: 400, jsonBody: { error: `Invalid job${Array.isArray(body) ? 's' : ''}: ${validated.problems.length} problem(s)`, problems: validated.problems } };
    }

    const delayOf = (job: Job): number => Math.max(0, (job.notBefore?.getTime() ?? 0) - now.getTime());
    if (!Array.isArray(body)) {
      const [{ job, body: jobBody }] = validated.jobs as [{ job: Job; body: Record<string, unknown> }];
      const created = await deps.deliveries.createPending(job.id, { kind: job.kind, ...(job.notBefore === undefined ? {} : { notBefore: job.notBefore }) }, now);
      // A repeated submission of the same id is accepted again and queued nothing new.
      if (created) await deps.queue.requeue(JSON.stringify(jobBody), delayOf(job));
      const location = statusUrl(request.url, job.id);
      log.info('notify.accepted', { jobId: job.id, jobKind: job.kind, repeated: !created || undefined });
      return { status: 202, headers: { Location: location, 'Retry-After': '2' }, jsonBody: { id: job.id, status: 'pending', statusUrl: location } };
    }

    // An array is a batch: a parent record counts its jobs, and its Location reports them all.
    const batchId = newId();
    await deps.deliveries.createPending(batchId, { kind: 'batch', total: validated.jobs.length, fanOutComplete: true }, now);
    await deps.deliveries.addChildren(batchId, validated.jobs.map((j) => j.job.id));
    for (const { job, body: jobBody } of validated.jobs) {
      const created = await deps.deliveries.createPending(job.id, { kind: job.kind, parentId: batchId, ...(job.notBefore === undefined ? {} : { notBefore: job.notBefore }) }, now);
      if (created) {
        await deps.queue.requeue(toEnvelope(jobBody, { jobId: job.id, deferrals: 0, parentId: batchId }), delayOf(job));
        continue;
      }
      // Submitted before: count its outcome in this batch if it has one.
      const existing = await deps.deliveries.get(job.id);
      if (existing?.status === 'sent' || existing?.status === 'failed') await deps.deliveries.setChildOutcome(batchId, job.id, existing.status);
    }
    const location = statusUrl(request.url, batchId);
    log.info('notify.accepted', { jobId: batchId, jobKind: 'batch', jobs: validated.jobs.length });
    return {
      status: 202,
      headers: { Location: location, 'Retry-After': '2' },
      jsonBody: { id: batchId, status: 'pending', statusUrl: location, jobs: validated.jobs.map(({ job }) => ({ id: job.id, statusUrl: statusUrl(request.url, job.id) })) },
    };
  } catch (err) {
    return toErrorResponse(err, log);
  }
}

export async function handleNotifyGet(id: string | undefined, deps: Pick<NotifyDeps, 'deliveries' | 'now' | 'log'>): Promise<MessagesResponse> {
  try {
    if (id === undefined || id === '' || id.length > 512) throw new BadRequestError('A job id is required: GET /api/notify/{id}.');
    const record = await deps.deliveries.get(id);
    if (record === undefined) return { status: 404, jsonBody: { error: `No job "${id.slice(0, MAX_JOB_ID_LENGTH)}" is known.` } };
    const counts = record.kind === 'broadcast' || record.kind === 'batch' ? await deps.deliveries.countChildren(id) : undefined;
    const view = toStatusView(record, counts, deps.now());
    return {
      status: view.done ? 200 : 202,
      ...(view.retryAfterSeconds === undefined ? {} : { headers: { 'Retry-After': String(view.retryAfterSeconds) } }),
      jsonBody: view.body,
    };
  } catch (err) {
    return toErrorResponse(err, deps.log);
  }
}
