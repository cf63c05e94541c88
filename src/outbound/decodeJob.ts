/**
 * Step "decode and admit": the job a queue message carries, or a refusal that is recorded and
 * dead-lettered (an invalid job is never retried).
 */
import { isReservedJobId, toInternalId } from '../core/admission';
import { decodeQueueMessage, parseJob, peekJobId, type DecodedMessage, type ParsedJob } from '../core/job';
import { POISON_FORMAT } from '../core/poison';
import { JobValidationError } from '../errors';
import type { Logger } from '../log';
import type { PollMessage } from './batchPoll';
import type { JobResult, QueueMessageMeta, SenderDeps } from './senderTypes';

/**
 * The job a decoded message carries. In our envelope, the envelope's id is the job's id (a caller's
 * namespaced id, a broadcast child's id) and a caller's update or delete names that caller's own
 * job. A message a flow wrote straight to the queue is admitted like a job from the HTTP API: its
 * own id or the message id, never one of ours.
 */
function toJob(decoded: DecodedMessage, messageId: string): ParsedJob {
  const { envelope } = decoded;
  if (envelope === undefined) {
    const job = parseJob(decoded.body, messageId);
    if (isReservedJobId(job.id))
      throw new JobValidationError([
        { path: 'id', message: 'is reserved for teams-courier\'s own jobs ("welcome-…", "…~<n>")' },
      ]);
    return job;
  }
  const parsed = parseJob(decoded.body, envelope.jobId);
  const submitter = envelope.caller === undefined ? undefined : { name: envelope.caller };
  return parsed.kind === 'update' || parsed.kind === 'delete'
    ? { ...parsed, id: envelope.jobId, target: toInternalId(parsed.target, submitter) }
    : { ...parsed, id: envelope.jobId };
}

export type Decoded =
  | { readonly ok: true; readonly decoded: DecodedMessage; readonly job: ParsedJob; readonly poll?: undefined }
  /** A batch job's status poll (batchPoll.ts): its body is not a job. */
  | { readonly ok: true; readonly decoded: DecodedMessage; readonly poll: PollMessage }
  | { readonly ok: false; readonly result: JobResult };

export async function decodeJob(
  input: unknown,
  meta: QueueMessageMeta,
  deps: SenderDeps,
  log: Logger,
  started: Date,
): Promise<Decoded> {
  let decoded: DecodedMessage | undefined;
  try {
    decoded = decodeQueueMessage(input);
    const { envelope } = decoded;
    if (envelope?.poll !== undefined)
      return { ok: true, decoded, poll: { jobId: envelope.jobId, seq: envelope.poll, envelope } };
    return { ok: true, decoded, job: toJob(decoded, meta.messageId) };
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    const jobId = decoded?.envelope?.jobId ?? peekJobId(decoded?.body ?? input) ?? meta.messageId;
    log.warn('job.invalid', { jobId, reason: err.message });
    // A reserved id names one of our own jobs: never write over its record.
    if (!isReservedJobId(jobId) || decoded?.envelope !== undefined)
      await deps.deliveries.recordRejected(jobId, 'InvalidJob', err.message, started);
    const { caller, parentId } = decoded?.envelope ?? {};
    await deps.queue.poison(decoded?.body ?? input, {
      jobId,
      code: 'InvalidJob',
      reason: err.message,
      attempts: 0,
      failedAt: started.toISOString(),
      format: POISON_FORMAT,
      ...(caller === undefined ? {} : { caller }),
      ...(parentId === undefined ? {} : { parentId }),
    });
    if (parentId !== undefined) await deps.deliveries.setChildOutcome(parentId, jobId, 'failed');
    deps.stats?.record({ kind: 'failed', at: started, code: 'InvalidJob' });
    return { ok: false, result: { status: 'failed', jobId, code: 'InvalidJob', reason: err.message } };
  }
}
