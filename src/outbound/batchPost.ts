/**
 * The requests of a batch job's plan, in order: a send slot of the tenant's budget, the request
 * written `posting`, the POST, its operation id written. Each request goes out at most once
 * (batchSend.ts says why); a 429 or a connection that never opened puts the rest off to a retry.
 */
import { backoffMs } from '../core/deliveryDecision';
import type { FailureCode } from '../core/failureCodes';
import type { TeamsBatchJob } from '../core/job';
import type { Logger } from '../log';
import type { ChunkStatus } from '../store/batchRecord';
import type { DeliveryRecord } from '../store/deliveryStore';
import { withLastError, type BatchWriter } from './batchCommon';
import { requestBody, withChunk } from './batchPlan';
import { leaseFor, type SenderDeps } from './senderTypes';
import { acquireSlot } from './sendSlot';

export interface PostRetry {
  readonly delayMs: number;
  /** Absent: no slot in the tenant's budget yet (not Teams' answer). */
  readonly code?: FailureCode;
  readonly reason?: string;
  readonly throttled?: boolean;
}

export interface PostOptions {
  /** The budget's scope for batch requests in the tenant. */
  readonly scope: string;
  readonly activity: Record<string, unknown>;
  /** This attempt's number (the claim's). */
  readonly attempts: number;
}

/** Every request not sent yet from `from` on gets `status` (and the code). */
function markRest(record: DeliveryRecord, from: number, status: ChunkStatus, code?: string): DeliveryRecord {
  const batch = record.batch!;
  return {
    ...record,
    batch: {
      ...batch,
      chunks: batch.chunks.map((c, i) =>
        i >= from && (c.status === 'new' || i === from) ? { ...c, status, ...(code === undefined ? {} : { code }) } : c,
      ),
    },
  };
}

export async function postChunks(
  job: TeamsBatchJob,
  writer: BatchWriter,
  deps: SenderDeps,
  log: Logger,
  options: PostOptions,
): Promise<{ readonly retry?: PostRetry }> {
  const batches = deps.batches!;
  const { attempts, scope } = options;
  const count = writer.record.batch!.chunks.length;
  for (let i = 0; i < count; i += 1) {
    const chunk = writer.record.batch!.chunks[i]!;
    const label = `request ${i + 1} of ${count}`;
    if (chunk.status === 'posting') {
      const reason = `${label} went out in an earlier attempt whose answer was lost: Teams may be running it, so it is not sent again (a second request could message its ${chunk.members ?? 'recipients'} twice)`;
      await writer.update((r) =>
        withLastError(
          { ...r, batch: withChunk(r.batch!, i, { status: 'failed', code: 'BatchAmbiguous' }) },
          'BatchAmbiguous',
          reason,
        ),
      );
      log.warn('batch.ambiguous', { request: i, reason });
      continue;
    }
    if (chunk.status !== 'new') continue;
    if (writer.record.cancelRequestedAt !== undefined) {
      await writer.update((r) => markRest(r, i, 'cancelled'));
      break;
    }
    if (attempts > deps.config.maxAttempts) {
      const code = writer.record.lastErrorCode ?? 'TooManyAttempts';
      const reason = `gave up after ${attempts - 1} attempts: ${writer.record.lastErrorReason ?? 'no outcome recorded'}`;
      await writer.update((r) => withLastError(markRest(r, i, 'failed', code), code, reason));
      break;
    }
    const { tenantId } = writer.record.batch!;
    const wait = await acquireSlot(deps, scope, tenantId, log);
    if (wait > 0) return { retry: { delayMs: wait } };

    const leaseUntil = new Date(deps.now().getTime() + leaseFor(deps)).toISOString();
    await writer.update((r) => ({ ...r, leaseUntil, batch: withChunk(r.batch!, i, { status: 'posting' }) }));
    // A cancel that came in while this was written: nothing has gone out yet.
    if (writer.record.cancelRequestedAt !== undefined) {
      await writer.update((r) => markRest(r, i, 'cancelled'));
      break;
    }
    const state = writer.record.batch!;
    const answer = await batches.sendBatch(
      state.target,
      state.serviceUrl,
      requestBody(job, state, i, options.activity),
    );
    if (answer.kind === 'ok') {
      const moved = answer.serviceUrl === state.serviceUrl ? {} : { serviceUrl: answer.serviceUrl };
      await writer.update((r) => ({
        ...r,
        batch: withChunk(r.batch!, i, { status: 'running', operationId: answer.value, ...moved }),
      }));
      log.info('batch.operation', { request: i, operationId: answer.value, members: chunk.members });
      continue;
    }
    if (answer.kind === 'retry' && answer.ambiguous === true) {
      const reason = `${label}: ${answer.reason}; it may have reached Teams, so it is not sent again`;
      await writer.update((r) =>
        withLastError(
          { ...r, batch: withChunk(r.batch!, i, { status: 'failed', code: 'BatchAmbiguous' }) },
          'BatchAmbiguous',
          reason,
        ),
      );
      log.warn('batch.ambiguous', { request: i, code: answer.code, reason });
      continue;
    }
    if (answer.kind === 'retry') {
      const now = deps.now();
      if (answer.throttled) {
        await deps.budget.throttled(scope, tenantId, now.getTime() + (answer.retryAfterMs ?? 1_000));
        deps.stats?.record({ kind: 'throttled', at: now, tenantId });
      }
      if (attempts >= deps.config.maxAttempts) {
        const reason = `gave up after ${attempts} attempts: ${answer.reason}`;
        await writer.update((r) => withLastError(markRest(r, i, 'failed', answer.code), answer.code, reason));
        break;
      }
      await writer.update((r) => ({ ...r, batch: withChunk(r.batch!, i, { status: 'new' }) }));
      const delayMs =
        answer.retryAfterMs ??
        backoffMs(attempts, {
          random: deps.random,
          ...(deps.backoffBaseMs === undefined ? {} : { baseMs: deps.backoffBaseMs }),
        });
      return {
        retry: { delayMs, code: answer.code, reason: `${label}: ${answer.reason}`, throttled: answer.throttled },
      };
    }
    // Refused for good: the same activity to the same tenant would be refused again.
    const rest = i + 1 < count ? '; the requests after it were not sent' : '';
    await writer.update((r) =>
      withLastError(markRest(r, i, 'failed', answer.code), answer.code, `${label}: ${answer.reason}${rest}`),
    );
    if (answer.status === 401) log.error('connector.unauthorized', { code: answer.code, reason: answer.reason });
    log.warn('batch.refused', { request: i, code: answer.code, status: answer.status });
    break;
  }
  return {};
}
