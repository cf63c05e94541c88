/** DELETE /api/notify/{id}: the HTTP side of cancelling a Teams batch job (cancelJob.ts). */
import { toInternalId } from '../core/admission';
import { MAX_JOB_ID_LENGTH } from '../core/job';
import { BadRequestError } from '../errors';
import type { MessagesRequest, MessagesResponse } from '../inbound/handleMessages';
import { cancelBatchJob } from './cancelJob';
import type { NotifyDeps } from './notifyApi';
import { presentIds, toErrorResponse } from './notifyResponses';
import { toStatusView } from './statusView';

/**
 * DELETE /api/notify/{id}: cancels a Teams batch job of the caller's. 202 with its status while the
 * running operations are being cancelled, 404 for an unknown id, 409 for a job that is not a batch
 * job or is over already.
 */
export async function handleNotifyDelete(
  request: MessagesRequest,
  id: string | undefined,
  deps: Omit<NotifyDeps, 'newId'>,
): Promise<MessagesResponse> {
  try {
    const submitter = await deps.authenticate(request);
    if (id === undefined || id === '' || id.length > 512)
      throw new BadRequestError('A job id is required: DELETE /api/notify/{id}.');
    const jobId = toInternalId(id, submitter);
    const now = deps.now();
    const outcome = await cancelBatchJob(deps, jobId, now);
    const shown = id.slice(0, MAX_JOB_ID_LENGTH);
    if (outcome.kind === 'unknown') return { status: 404, jsonBody: { error: `No job "${shown}" is known.` } };
    const view = toStatusView(outcome.record, undefined, now);
    const body = presentIds(view.body, submitter);
    if (outcome.kind !== 'cancelling') {
      const error =
        outcome.kind === 'notBatch'
          ? `Job "${shown}" is not a batch job (to.batch); only those can be cancelled. A broadcast's jobs can be deleted one by one once sent.`
          : `Job "${shown}" is over; there is nothing to cancel.`;
      return { status: 409, jsonBody: { error, ...body } };
    }
    (submitter === undefined ? deps.log : deps.log.child({ caller: submitter.name })).info('notify.cancelled', {
      jobId,
      again: outcome.again || undefined,
    });
    return {
      status: view.done ? 200 : 202,
      ...(view.retryAfterSeconds === undefined ? {} : { headers: { 'Retry-After': String(view.retryAfterSeconds) } }),
      jsonBody: body,
    };
  } catch (err) {
    return toErrorResponse(err, deps.log);
  }
}
