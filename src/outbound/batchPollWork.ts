/**
 * One poll's work on a batch job's operations: a cancel where one was asked for, the state of each
 * running operation, and the failed entries of finished ones, page by page (the continuation token
 * travels, a token seen twice ends the paging, and a poll reads at most MAX_FAILED_PAGES_PER_POLL
 * pages). A 429 stops the poll: the next one comes after its Retry-After.
 */
import type { BatchClient } from '../connector/batchClient';
import { nextContinuationToken, toProgress } from '../core/batchState';
import type { Logger } from '../log';
import { chunkFinished, type BatchChunk, type BatchState } from '../store/batchRecord';
import { MAX_FAILED_PAGES_PER_POLL, MAX_POLLING_MS } from './batchPlan';
import type { SenderDeps } from './senderTypes';

export interface PollWork {
  readonly chunks: readonly BatchChunk[];
  /** The longest wait Teams asked for (retryAfter, Retry-After). */
  readonly retryAfterMs?: number;
  /** Teams answered 429: the poll stopped there. */
  readonly throttled: boolean;
  /** The last failure of an operation, for the record's lastError. */
  readonly error?: { readonly code: string; readonly reason: string };
}

export interface PollInput {
  readonly jobId: string;
  readonly state: BatchState;
  readonly cancel: boolean;
}

export async function pollOperations(
  input: PollInput,
  deps: Pick<SenderDeps, 'deliveries' | 'now'> & { readonly batches: BatchClient },
  log: Logger,
): Promise<PollWork> {
  const { state, jobId, cancel } = input;
  const { batches } = deps;
  const chunks = [...state.chunks];
  let retryAfterMs: number | undefined;
  let throttled = false;
  let error: PollWork['error'];
  let pagesLeft = MAX_FAILED_PAGES_PER_POLL;
  const wait = (ms: number | undefined): void => {
    if (ms !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, ms);
  };
  const lost = (c: BatchChunk, code: string, reason: string): BatchChunk => {
    error = { code, reason };
    return { ...c, status: 'failed', code };
  };

  for (let i = 0; i < chunks.length && !throttled; i += 1) {
    let c = chunks[i]!;
    const op = c.operationId;
    if (op === undefined || chunkFinished(c) || (c.status !== 'running' && c.status !== 'done')) continue;
    const url = c.serviceUrl ?? state.serviceUrl;
    const label = `operation ${op} (request ${i + 1})`;

    if (c.status === 'running' && cancel && c.cancelSent !== true) {
      const answer = await batches.cancelOperation(url, op);
      if (answer.kind === 'ok') c = { ...c, cancelSent: true };
      else if (answer.kind === 'retry') {
        wait(answer.retryAfterMs);
        throttled = answer.throttled;
      } else if (answer.code === 'BatchOperationNotFound') c = lost(c, answer.code, `${label}: ${answer.reason}`);
      else {
        log.warn('batch.cancelRefused', { operationId: op, code: answer.code, reason: answer.reason });
        c = { ...c, cancelSent: true };
      }
      log.info('batch.cancel', { operationId: op, outcome: answer.kind });
    }

    if (c.status === 'running' && !throttled) {
      const answer = await batches.getOperation(url, op);
      if (answer.kind === 'ok') {
        const p = toProgress(answer.value);
        c = {
          ...c,
          status: p.finished ? 'done' : 'running',
          state: answer.value.state,
          counts: [p.total, p.sent, p.failed, p.throttled, p.pending, p.skipped],
        };
        wait(answer.value.retryAfterMs);
      } else if (answer.kind === 'retry') {
        wait(answer.retryAfterMs);
        throttled = answer.throttled;
        log.warn('batch.pollRetry', { operationId: op, code: answer.code, reason: answer.reason });
      } else c = lost(c, answer.code, `${label}: ${answer.reason}`);
    }
    if (c.status === 'running' && deps.now().getTime() - Date.parse(state.startedAt) > MAX_POLLING_MS)
      c = lost(
        c,
        'BatchPollTimeout',
        `${label} was still running ${MAX_POLLING_MS / 3_600_000} hours after the job started`,
      );

    // Failed entries, once the operation is over (the list is complete then).
    let token = c.failedToken;
    const followed = new Set(token === undefined ? [] : [token]);
    while (c.status === 'done' && !chunkFinished(c) && !throttled && pagesLeft > 0) {
      pagesLeft -= 1;
      const answer = await batches.getFailedEntries(url, op, token);
      if (answer.kind === 'retry') {
        wait(answer.retryAfterMs);
        throttled = answer.throttled;
        break;
      }
      if (answer.kind === 'fail') {
        log.warn('batch.failedEntriesLost', { operationId: op, code: answer.code, reason: answer.reason });
        c = { ...c, failedStored: true, failedToken: undefined };
        break;
      }
      await deps.deliveries.saveFailures(jobId, i, answer.value.entries);
      const next = nextContinuationToken(answer.value, followed);
      if (next === undefined && answer.value.continuationToken !== undefined)
        log.warn('batch.repeatedToken', {
          operationId: op,
          reason: 'a continuation token came back twice; paging stops',
        });
      if (next === undefined) c = { ...c, failedStored: true, failedToken: undefined };
      else {
        followed.add(next);
        token = next;
        c = { ...c, failedToken: next };
      }
    }
    chunks[i] = c;
  }
  return {
    chunks,
    throttled,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(error === undefined ? {} : { error }),
  };
}
