/**
 * The HTTP side for flows: POST /api/notify takes the same job JSON as the queue (one job, or an
 * array of up to 100), admits it all at once (src/core/admission.ts), queues it and answers 202
 * with a Location to poll; GET /api/notify/{id} is that status; DELETE /api/notify/{id} cancels a
 * Teams batch job (cancelJob.ts). Independent of the Functions runtime.
 *
 * Who may do what (docs/flows.md, trust model): a function key is full trust; a caller that
 * authenticates with Entra ID works in its own job-id namespace and, if so configured, only in
 * its tenants.
 */
import { randomUUID } from 'node:crypto';
import { admitJobs, fromInternalId, toInternalId, type AdmittedJob, type Submitter } from '../core/admission';
import { MAX_JOB_ID_LENGTH } from '../core/job';
import { BadRequestError } from '../errors';
import { readBodyCapped, type MessagesRequest, type MessagesResponse } from '../inbound/handleMessages';
import type { Logger } from '../log';
import type { DeliveryRecord, DeliveryStore } from '../store/deliveryStore';
import type { JobQueue } from '../store/jobQueue';
import { handleNotifyDelete } from './notifyCancel';
import { presentIds, toErrorResponse } from './notifyResponses';
import { toStatusView } from './statusView';

export const MAX_JOBS_PER_REQUEST = 100;
export const MAX_NOTIFY_BODY_BYTES = 1024 * 1024;

export interface NotifyDeps {
  readonly deliveries: DeliveryStore;
  readonly queue: Pick<JobQueue, 'requeue'>;
  readonly now: () => Date;
  readonly newId?: () => string;
  readonly log: Logger;
  /**
   * Who is calling. Undefined: full trust (the function key already let the request in). Throws
   * AuthError (401, or 403 for a valid token of a caller that is not allowed).
   */
  readonly authenticate: (request: MessagesRequest) => Promise<Submitter | undefined>;
}

export interface NotifyRequest extends MessagesRequest {
  /** The request URL: status URLs are built on its origin (never with its query: no key echoed). */
  readonly url: string;
}

function statusUrl(requestUrl: string, id: string): string {
  return new URL(`/api/notify/${encodeURIComponent(id)}`, requestUrl).toString();
}

/**
 * Records the job as pending and queues it. A repeat of an id that is still pending queues it again:
 * the first attempt may have recorded it and then failed to queue (503), and the sender's claim makes
 * a second message for one id harmless. Returns whether the id was new.
 */
async function submit(
  admitted: AdmittedJob,
  deps: NotifyDeps,
  now: Date,
  parentId?: string,
): Promise<{ created: boolean; existing?: DeliveryRecord }> {
  const { job } = admitted;
  const created = await deps.deliveries.createPending(
    job.id,
    {
      kind: job.kind,
      ...(parentId === undefined ? {} : { parentId }),
      ...(job.notBefore === undefined ? {} : { notBefore: job.notBefore }),
    },
    now,
  );
  if (created) {
    await deps.queue.requeue(admitted.queueText, admitted.delayMs);
    return { created };
  }
  const existing = await deps.deliveries.get(job.id);
  if (existing?.status === 'pending') await deps.queue.requeue(admitted.queueText, admitted.delayMs);
  return { created, ...(existing === undefined ? {} : { existing }) };
}

export async function handleNotifyPost(request: NotifyRequest, deps: NotifyDeps): Promise<MessagesResponse> {
  const { log } = deps;
  const newId = deps.newId ?? randomUUID;
  try {
    if (request.method.toUpperCase() !== 'POST')
      return { status: 405, headers: { Allow: 'POST' }, jsonBody: { error: 'Only POST is allowed.' } };
    const submitter = await deps.authenticate(request);
    const callerLog = submitter === undefined ? log : log.child({ caller: submitter.name });
    const bytes = await readBodyCapped(request.body, MAX_NOTIFY_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new BadRequestError('The body is not valid JSON.');
    }
    const now = deps.now();
    const batchId = Array.isArray(body) ? toInternalId(newId(), submitter) : undefined;
    const admitted = admitJobs(body, {
      now,
      newId,
      recorded: true,
      maxJobs: MAX_JOBS_PER_REQUEST,
      ...(submitter === undefined ? {} : { submitter }),
      ...(batchId === undefined ? {} : { batchId }),
    });
    if ('problems' in admitted) {
      callerLog.warn('notify.rejected', { problems: admitted.problems.length });
      return {
        status: 400,
        jsonBody: {
          error: `Invalid job${Array.isArray(body) ? 's' : ''}: ${admitted.problems.length} problem(s)`,
          problems: admitted.problems,
        },
      };
    }

    if (batchId === undefined) {
      const [one] = admitted.jobs as [AdmittedJob];
      const { created } = await submit(one, deps, now);
      const location = statusUrl(request.url, one.id);
      callerLog.info('notify.accepted', { jobId: one.job.id, jobKind: one.job.kind, repeated: !created || undefined });
      return {
        status: 202,
        headers: { Location: location, 'Retry-After': '2' },
        jsonBody: { id: one.id, status: 'pending', statusUrl: location },
      };
    }

    // An array is a batch: a parent record counts its jobs, and its Location reports them all.
    await deps.deliveries.createPending(
      batchId,
      { kind: 'batch', total: admitted.jobs.length, fanOutComplete: true },
      now,
    );
    await deps.deliveries.addChildren(
      batchId,
      admitted.jobs.map((j) => j.job.id),
    );
    for (const one of admitted.jobs) {
      const { existing } = await submit(one, deps, now, batchId);
      // Submitted before and done: count its outcome in this batch.
      if (existing?.status === 'sent' || existing?.status === 'failed')
        await deps.deliveries.setChildOutcome(batchId, one.job.id, existing.status);
    }
    const id = fromInternalId(batchId, submitter)!;
    const location = statusUrl(request.url, id);
    callerLog.info('notify.accepted', { jobId: batchId, jobKind: 'batch', jobs: admitted.jobs.length });
    return {
      status: 202,
      headers: { Location: location, 'Retry-After': '2' },
      jsonBody: {
        id,
        status: 'pending',
        statusUrl: location,
        jobs: admitted.jobs.map((j) => ({ id: j.id, statusUrl: statusUrl(request.url, j.id) })),
      },
    };
  } catch (err) {
    return toErrorResponse(err, log);
  }
}

export async function handleNotifyGet(
  request: MessagesRequest,
  id: string | undefined,
  deps: Omit<NotifyDeps, 'queue' | 'newId'>,
): Promise<MessagesResponse> {
  try {
    const submitter = await deps.authenticate(request);
    if (id === undefined || id === '' || id.length > 512)
      throw new BadRequestError('A job id is required: GET /api/notify/{id}.');
    const record = await deps.deliveries.get(toInternalId(id, submitter));
    if (record === undefined)
      return { status: 404, jsonBody: { error: `No job "${id.slice(0, MAX_JOB_ID_LENGTH)}" is known.` } };
    const counts =
      record.kind === 'broadcast' || record.kind === 'batch'
        ? await deps.deliveries.countChildren(record.jobId)
        : undefined;
    const view = toStatusView(record, counts, deps.now());
    return {
      status: view.done ? 200 : 202,
      ...(view.retryAfterSeconds === undefined ? {} : { headers: { 'Retry-After': String(view.retryAfterSeconds) } }),
      jsonBody: presentIds(view.body, submitter),
    };
  } catch (err) {
    return toErrorResponse(err, deps.log);
  }
}

/** One function serves every route, so a key scoped to it works for submitting, polling and cancelling. */
export async function handleNotify(
  request: NotifyRequest,
  id: string | undefined,
  deps: NotifyDeps,
): Promise<MessagesResponse> {
  const method = request.method.toUpperCase();
  const hasId = id !== undefined && id !== '';
  if (method === 'POST' && !hasId) return handleNotifyPost(request, deps);
  if (method === 'GET' && hasId) return handleNotifyGet(request, id, deps);
  if (method === 'DELETE' && hasId) return handleNotifyDelete(request, id, deps);
  return hasId
    ? {
        status: 405,
        headers: { Allow: 'GET, DELETE' },
        jsonBody: {
          error: "GET /api/notify/{id} reads a job's status, DELETE cancels a batch job; submit with POST /api/notify.",
        },
      }
    : { status: 405, headers: { Allow: 'POST' }, jsonBody: { error: 'Only POST is allowed.' } };
}
