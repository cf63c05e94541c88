/** The HTTP API's answers shared by its routes (notifyApi.ts, notifyCancel.ts, retryApi.ts): errors, and ids as the caller knows them. */
import { fromInternalId, type Submitter } from '../core/admission';
import { AuthError, BadRequestError, CourierError } from '../errors';
import type { MessagesResponse } from '../inbound/handleMessages';
import type { Logger } from '../log';

/**
 * An error as the API answers it. `unavailable`: the 503's message (what was done before storage
 * or the key metadata failed).
 */
export function toErrorResponse(
  err: unknown,
  log: Logger,
  unavailable = 'Service unavailable; nothing was queued for jobs not listed as accepted',
): MessagesResponse {
  if (err instanceof BadRequestError) return { status: err.status, jsonBody: { error: err.message } };
  if (err instanceof AuthError) {
    // The reason goes to the log only; the caller learns no more than "no".
    log.warn('notify.unauthorized', { code: err.code, reason: err.message });
    return err.status === 401
      ? { status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, jsonBody: { error: 'Unauthorized' } }
      : { status: 403, jsonBody: { error: 'Forbidden' } };
  }
  if (err instanceof CourierError && (err.code === 'STORAGE_UNAVAILABLE' || err.code === 'AUTH_METADATA_UNAVAILABLE')) {
    log.error('notify.unavailable', { reason: err.message });
    return { status: 503, headers: { 'Retry-After': '5' }, jsonBody: { error: unavailable } };
  }
  log.error('notify.failed', { error: err });
  return { status: 500, jsonBody: { error: 'Internal error' } };
}

/** The status view with the caller's own ids (its namespace prefix removed). */
export function presentIds(body: Record<string, unknown>, submitter: Submitter | undefined): Record<string, unknown> {
  if (submitter === undefined) return body;
  const out = { ...body };
  for (const key of ['id', 'parentId'])
    if (typeof out[key] === 'string') out[key] = fromInternalId(out[key], submitter) ?? out[key];
  return out;
}
