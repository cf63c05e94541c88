/**
 * A batch job's second half: following its operations, one poll message at a time.
 *
 * The record names the one poll that may act next (`batch.pollSeq`); a poll message for an older
 * number is dropped, so a redelivered or duplicated poll never doubles the polling. A poll first
 * claims the record (`pollClaimUntil`, a conditional write), does its work (batchPollWork.ts),
 * queues the next poll and only then writes the record naming it: a crash in between leaves either
 * the old message (redelivered, it finds the claim lapsed and polls again) or both, and the extra
 * one is dropped. Done when every operation finished and every failed entry is stored.
 */
import type { Envelope } from '../core/job';
import type { Logger } from '../log';
import { chunkFinished, summarizeBatch } from '../store/batchRecord';
import type { DeliveryRecord } from '../store/deliveryStore';
import { batchWriter, enqueuePoll, LostBatchClaim, withLastError } from './batchCommon';
import { pollDelayMs } from './batchPlan';
import { pollOperations } from './batchPollWork';
import { BUSY_RECHECK_MS, leaseFor, type JobResult, type SenderDeps } from './senderTypes';

/** A poll message that arrives before the record names it is put back this often, then dropped. */
const MAX_EARLY_DEFERRALS = 10;
const EARLY_RECHECK_MS = 2_000;

export interface PollMessage {
  readonly jobId: string;
  readonly seq: number;
  readonly envelope: Envelope;
}

type Claimed = { readonly record: DeliveryRecord; readonly etag: string };
type ClaimOutcome =
  | Claimed
  | { readonly skip: string; readonly record?: DeliveryRecord }
  | { readonly waitMs: number; readonly why: string };

async function claimPoll(poll: PollMessage, deps: SenderDeps): Promise<ClaimOutcome> {
  for (let round = 0; round < 4; round += 1) {
    const known = await deps.deliveries.read(poll.jobId);
    const record = known?.record;
    const batch = record?.batch;
    if (known === null || record?.kind !== 'teamsBatch' || batch === undefined)
      return { skip: 'no batch job with that id', ...(record === undefined ? {} : { record }) };
    if (batch.finishedAt !== undefined) return { skip: 'the batch job is finished', record };
    if (batch.pollSeq === undefined || poll.seq > batch.pollSeq)
      return poll.envelope.deferrals < MAX_EARLY_DEFERRALS
        ? { waitMs: EARLY_RECHECK_MS, why: 'record does not name this poll yet' }
        : { skip: 'the record never named this poll', record };
    if (poll.seq < batch.pollSeq) return { skip: `stale poll (the record is at ${batch.pollSeq})`, record };
    const now = deps.now().getTime();
    const held = Date.parse(batch.pollClaimUntil ?? '') - now;
    if (held > 0) return { waitMs: Math.min(held, BUSY_RECHECK_MS), why: 'another poll is under way' };
    const next: DeliveryRecord = {
      ...record,
      updatedAt: new Date(now).toISOString(),
      batch: { ...batch, pollClaimUntil: new Date(now + 2 * leaseFor(deps)).toISOString() },
    };
    const etag = await deps.deliveries.write(next, known.etag);
    if (etag !== undefined) return { record: next, etag };
  }
  return { waitMs: BUSY_RECHECK_MS, why: 'the record kept changing' };
}

export async function processBatchPoll(poll: PollMessage, deps: SenderDeps, baseLog: Logger): Promise<JobResult> {
  const log = baseLog.child({ jobId: poll.jobId, jobKind: 'teamsBatch', poll: poll.seq });
  const batches = deps.batches;
  if (batches === undefined) throw new Error('a batch job needs the batch client (SenderDeps.batches)');
  const claimed = await claimPoll(poll, deps);
  if ('skip' in claimed) {
    log.info('batch.pollSkipped', { reason: claimed.skip });
    return { status: 'skipped', jobId: poll.jobId, existing: claimed.record?.status ?? 'pending' };
  }
  if ('waitMs' in claimed) {
    await enqueuePoll(deps, poll.jobId, poll.seq, claimed.waitMs, poll.envelope.caller, poll.envelope.deferrals + 1);
    log.info('job.deferred', { why: claimed.why, delayMs: claimed.waitMs });
    return { status: 'deferred', jobId: poll.jobId, delayMs: claimed.waitMs, why: claimed.why };
  }

  const state = claimed.record.batch!;
  const cancel = claimed.record.cancelRequestedAt !== undefined;
  const work = await pollOperations({ jobId: poll.jobId, state, cancel }, { ...deps, batches }, log);
  const writer = batchWriter(
    deps,
    claimed,
    (fresh, mine) => fresh.batch?.pollSeq === poll.seq && fresh.batch.pollClaimUntil === mine.batch?.pollClaimUntil,
  );
  const apply = (r: DeliveryRecord, fields: Partial<NonNullable<DeliveryRecord['batch']>>): DeliveryRecord => {
    const next: DeliveryRecord = {
      ...r,
      batch: { ...r.batch!, ...fields, chunks: work.chunks, pollClaimUntil: undefined },
    };
    return work.error === undefined ? next : withLastError(next, work.error.code, work.error.reason);
  };
  const now = deps.now();
  try {
    if (work.chunks.every(chunkFinished)) {
      const done = await writer.update((r) => apply(r, { finishedAt: now.toISOString(), nextPollAt: undefined }));
      const summary = summarizeBatch(done.batch!);
      if (done.parentId !== undefined)
        await deps.deliveries.setChildOutcome(done.parentId, poll.jobId, summary.sent > 0 ? 'sent' : 'failed');
      const { total, sent, failed, throttled, skipped } = summary;
      log.info('batch.finished', { total, sent, failed, throttled, skipped, cancelled: cancel || undefined });
      return { status: 'sent', jobId: poll.jobId, conversationId: '', ambiguous: false };
    }
    const cancelling = (c: { status: string; cancelSent?: boolean }): boolean =>
      c.status === 'running' && c.cancelSent !== true;
    const polls = state.polls ?? 0;
    const delayMs =
      cancel && !work.throttled && work.chunks.some(cancelling)
        ? 0
        : pollDelayMs(polls + 1, deps.config.batch.pollIntervalMs, work.retryAfterMs);
    const seq = poll.seq + 1;
    await enqueuePoll(deps, poll.jobId, seq, delayMs, poll.envelope.caller);
    const written = await writer.update((r) =>
      apply(r, { pollSeq: seq, polls: polls + 1, nextPollAt: new Date(now.getTime() + delayMs).toISOString() }),
    );
    // A cancel that came in during this poll: act on it now rather than after the wait.
    if (!cancel && written.cancelRequestedAt !== undefined && delayMs > 0) {
      await enqueuePoll(deps, poll.jobId, seq, 0, poll.envelope.caller);
      log.info('batch.cancelSeen', { reason: 'cancelled during the poll; polling again now' });
    }
    log.info('batch.polled', { ...progressOf(written), nextPollMs: delayMs, throttled: work.throttled || undefined });
    return { status: 'deferred', jobId: poll.jobId, delayMs, why: 'batch poll' };
  } catch (err) {
    if (!(err instanceof LostBatchClaim)) throw err;
    log.warn('batch.lostClaim', { reason: err.message });
    return { status: 'skipped', jobId: poll.jobId, existing: 'sent' };
  }
}

function progressOf(record: DeliveryRecord): Record<string, number> {
  const { total, sent, failed, throttled, pending } = summarizeBatch(record.batch!);
  return { total, sent, failed, throttled, pending };
}
