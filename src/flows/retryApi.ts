/**
 * POST /api/notify/{id}/retry: a flow puts one of its failed jobs back on the queue, once the cause
 * is fixed (a secret rotated, a consent granted). The same job, under the same id: a job Teams has
 * is never sent again (src/flows/replayJob.ts). Independent of the Functions runtime.
 *
 * Trust (docs/flows.md): the same authentication as /api/notify. A caller authenticated with Entra
 * ID reaches only its own namespace (`<caller>:<id>`), and only poison records that name it as the
 * caller; a function key is full trust.
 *
 * The job's content is only in the poison queue, so the retry looks for it there: up to
 * MAX_RETRY_SCAN messages, each hidden while it is looked at and made visible again at once.
 * A deeper poison queue is the CLI's job (`teams-courier poison replay`).
 */
import { toInternalId, type Submitter } from '../core/admission';
import { MAX_JOB_ID_LENGTH } from '../core/job';
import { NOT_REPLAYABLE_CODES, parsePoisonMessage, type PoisonEntry } from '../core/poison';
import { BadRequestError } from '../errors';
import type { MessagesResponse } from '../inbound/handleMessages';
import type { PoisonMessage, PoisonQueue } from '../store/poisonQueue';
import type { NotifyDeps, NotifyRequest } from './notifyApi';
import { toErrorResponse } from './notifyResponses';
import { replayPoisoned } from './replayJob';

/** How many poison messages one retry looks through. */
export const MAX_RETRY_SCAN = 1_000;
/** How long a message stays hidden while a retry looks at it (it is released right after). */
const SCAN_HIDE_SECONDS = 30;

export interface RetryDeps extends Pick<NotifyDeps, 'deliveries' | 'queue' | 'now' | 'log' | 'authenticate'> {
  readonly poison: PoisonQueue;
}

function statusUrl(requestUrl: string, id: string): string {
  return new URL(`/api/notify/${encodeURIComponent(id)}`, requestUrl).toString();
}

function accepted(request: NotifyRequest, id: string): MessagesResponse {
  const location = statusUrl(request.url, id);
  return {
    status: 202,
    headers: { Location: location, 'Retry-After': '2' },
    jsonBody: { id, status: 'pending', statusUrl: location },
  };
}

/** The poison entry is this caller's: the same internal id, written with this caller (or full trust). */
function isCallersEntry(entry: PoisonEntry, jobId: string, submitter: Submitter | undefined): boolean {
  return entry.jobId === jobId && (submitter === undefined || entry.caller === submitter.name);
}

export async function handleNotifyRetry(
  request: NotifyRequest,
  id: string | undefined,
  deps: RetryDeps,
): Promise<MessagesResponse> {
  const { log } = deps;
  try {
    if (request.method.toUpperCase() !== 'POST')
      return { status: 405, headers: { Allow: 'POST' }, jsonBody: { error: 'Only POST is allowed.' } };
    const submitter = await deps.authenticate(request);
    if (id === undefined || id === '' || id.length > 512)
      throw new BadRequestError('A job id is required: POST /api/notify/{id}/retry.');
    const shownId = id.slice(0, MAX_JOB_ID_LENGTH);
    const jobId = toInternalId(id, submitter);
    const callerLog = (submitter === undefined ? log : log.child({ caller: submitter.name })).child({ jobId });

    const record = await deps.deliveries.get(jobId);
    if (record === undefined) return { status: 404, jsonBody: { error: `No job "${shownId}" is known.` } };
    if (record.kind === 'broadcast' || record.kind === 'batch') {
      // Its messages are jobs of their own: a broadcast's recipient n is `<id>~<n>`, a batch's jobs have their ids.
      return {
        status: 409,
        jsonBody: {
          error: `Job "${shownId}" is a ${record.kind}: retry its failed ${record.kind === 'broadcast' ? `recipients by their ids ("${shownId}~<n>")` : 'jobs by their ids'}.`,
        },
      };
    }
    if (record.status === 'sent')
      return {
        status: 409,
        jsonBody: {
          error: `Job "${shownId}" was sent; a job is never sent twice. Send a new job with a new id.`,
          status: 'sent',
        },
      };
    if (record.status !== 'failed')
      return {
        status: 409,
        jsonBody: {
          error: `Job "${shownId}" has not failed; it is on its way.`,
          status: record.status === 'retrying' ? 'retrying' : 'pending',
        },
      };
    const notReplayable = record.lastErrorCode === undefined ? undefined : NOT_REPLAYABLE_CODES[record.lastErrorCode];
    if (notReplayable !== undefined)
      return {
        status: 422,
        jsonBody: { error: `Job "${shownId}" cannot be retried: ${notReplayable}.`, code: record.lastErrorCode },
      };

    // Look for its message in the poison queue; everything else goes back as it was.
    const received = await deps.poison.receive({
      max: MAX_RETRY_SCAN,
      hideSeconds: SCAN_HIDE_SECONDS,
      until: (m) => isCallersEntry(parsePoisonMessage(m.text, m), jobId, submitter),
    });
    const last = received.at(-1);
    const found: PoisonMessage | undefined =
      last !== undefined && isCallersEntry(parsePoisonMessage(last.text, last), jobId, submitter) ? last : undefined;
    await deps.poison.release(found === undefined ? received : received.slice(0, -1));

    if (found === undefined) {
      // Another retry of the same job may have taken it a moment ago.
      const now = await deps.deliveries.get(jobId);
      if (now !== undefined && now.status !== 'failed' && now.status !== 'sent') return accepted(request, id);
      callerLog.warn('notify.retryNotFound', { scanned: received.length });
      return {
        status: 410,
        jsonBody: {
          error: `Job "${shownId}" failed, but its message is not in the poison queue (replayed or removed already, or beyond the first ${MAX_RETRY_SCAN}); an operator can use teams-courier poison replay.`,
        },
      };
    }
    const entry = parsePoisonMessage(found.text, found);
    const result = await replayPoisoned(entry, found, {
      deliveries: deps.deliveries,
      queue: deps.queue,
      poison: deps.poison,
      now: deps.now,
    });
    switch (result.kind) {
      case 'requeued':
        callerLog.info('notify.retried', { was: result.was, code: record.lastErrorCode });
        return accepted(request, id);
      case 'alreadySent':
        return {
          status: 409,
          jsonBody: { error: `Job "${shownId}" was sent; a job is never sent twice.`, status: 'sent' },
        };
      case 'refused':
        await deps.poison.release([found]);
        return { status: 422, jsonBody: { error: `Job "${shownId}" cannot be retried: ${result.why}.` } };
    }
  } catch (err) {
    return toErrorResponse(err, log, 'Service unavailable; try again');
  }
}
