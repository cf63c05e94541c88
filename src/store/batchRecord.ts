/**
 * A batch job's state in its delivery record (field `batch`, JSON; docs/storage.md): where each
 * request went, each operation Teams started, what its last poll said, and where polling stands.
 * Pure: reading it defensively from the table, and summing it up for the status.
 */
import type { BatchKind } from '../core/batch';
import type { BatchProgress } from '../core/batchState';

/**
 * One request of the plan. `new`: not sent yet; `posting`: the POST went out and its answer is not
 * recorded (found so by a later attempt, it is ambiguous and never sent again); `running`: Teams
 * answered with an operation id; `done`: the operation finished; `failed`: never sent, refused, or
 * its operation was lost; `cancelled`: not sent because the job was cancelled.
 */
export type ChunkStatus = 'new' | 'posting' | 'running' | 'done' | 'failed' | 'cancelled';

/** An operation's counts as last read: total, sent, failed, throttled, pending, skipped. */
export type ChunkCounts = readonly [number, number, number, number, number, number];

/** Request i of the plan: part i of the job's list as core/batch.ts chunkMembers splits it. */
export interface BatchChunk {
  /** Members in the request; absent for a tenant or a team (Teams counts them). */
  readonly members?: number;
  readonly status: ChunkStatus;
  readonly operationId?: string;
  /** Where the operation answers, when that is not the job's serviceUrl (the GCC host). */
  readonly serviceUrl?: string;
  /** Teams' state word at the last poll (Ongoing, Completed, ...). */
  readonly state?: string;
  readonly counts?: ChunkCounts;
  /** Why it failed (a failure code; the record's lastErrorReason has the words). */
  readonly code?: string;
  /** Failed entries: the continuation token of the next page, while paging. */
  readonly failedToken?: string;
  /** Every failed entry is stored (rows `fail:…`, batchFailures.ts). */
  readonly failedStored?: boolean;
  /** cancelOperation was called for it. */
  readonly cancelSent?: boolean;
}

export interface BatchState {
  readonly target: BatchKind;
  /** Where every request goes: the tenant, and its Bot Connector serviceUrl. */
  readonly tenantId: string;
  readonly serviceUrl: string;
  /** BATCH_MEMBERS_PER_REQUEST when the plan was made: a redelivery splits the list the same way. */
  readonly perRequest: number;
  readonly chunks: readonly BatchChunk[];
  readonly startedAt: string;
  /** The poll message that may act next (its envelope's `poll`); absent until sending is over. */
  readonly pollSeq?: number;
  /** Polls so far: the next one waits BATCH_POLL_INTERVAL_MS x 1.5^polls, at most 5 minutes. */
  readonly polls?: number;
  /** A poll is under way until then (the poll's claim). */
  readonly pollClaimUntil?: string;
  readonly nextPollAt?: string;
  /** Every operation finished and every failed entry is stored: nothing more happens. */
  readonly finishedAt?: string;
}

const STATUSES: ReadonlySet<string> = new Set(['new', 'posting', 'running', 'done', 'failed', 'cancelled']);
const KINDS: ReadonlySet<string> = new Set(['users', 'tenant', 'team', 'channels']);

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const text = (v: unknown): v is string => typeof v === 'string' && v !== '';

function toChunk(raw: unknown): BatchChunk | undefined {
  if (!isRecord(raw) || !STATUSES.has(String(raw.status))) return undefined;
  const out: Record<string, unknown> = { status: raw.status };
  if (count(raw.members)) out.members = raw.members;
  for (const key of ['operationId', 'serviceUrl', 'state', 'code', 'failedToken'] as const)
    if (text(raw[key])) out[key] = raw[key];
  if (Array.isArray(raw.counts) && raw.counts.length === 6 && raw.counts.every(count)) out.counts = raw.counts;
  if (raw.failedStored === true) out.failedStored = true;
  if (raw.cancelSent === true) out.cancelSent = true;
  return out as unknown as BatchChunk;
}

/** The `batch` field as stored, or undefined when it is absent or cannot be read. */
export function parseBatchState(value: unknown): BatchState | undefined {
  let raw: unknown = value;
  if (typeof value === 'string') {
    try {
      raw = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  if (
    !isRecord(raw) ||
    !KINDS.has(String(raw.target)) ||
    !text(raw.tenantId) ||
    !text(raw.serviceUrl) ||
    !count(raw.perRequest) ||
    !text(raw.startedAt)
  )
    return undefined;
  const chunks = Array.isArray(raw.chunks) ? raw.chunks.map(toChunk) : [];
  if (chunks.some((c) => c === undefined)) return undefined;
  const out: Record<string, unknown> = {
    target: raw.target,
    tenantId: raw.tenantId,
    serviceUrl: raw.serviceUrl,
    perRequest: raw.perRequest,
    chunks,
    startedAt: raw.startedAt,
  };
  for (const key of ['pollSeq', 'polls'] as const) if (count(raw[key])) out[key] = raw[key];
  for (const key of ['pollClaimUntil', 'nextPollAt', 'finishedAt'] as const) if (text(raw[key])) out[key] = raw[key];
  return out as unknown as BatchState;
}

export function serializeBatchState(state: BatchState): string {
  return JSON.stringify(state);
}

/** Nothing more will happen to the chunk: no operation to follow, no failed entry left to store. */
export function chunkFinished(chunk: BatchChunk): boolean {
  if (chunk.status === 'failed' || chunk.status === 'cancelled') return true;
  return chunk.status === 'done' && (chunk.failedStored === true || (chunk.counts?.[2] ?? 0) === 0);
}

export interface OperationView {
  readonly operationId?: string;
  readonly status: ChunkStatus;
  readonly state?: string;
  readonly total: number;
  readonly sent: number;
  readonly failed: number;
  readonly throttled: number;
  readonly pending: number;
  readonly code?: string;
}

/**
 * Teams' counts summed over every request. Here `pending` includes requests not sent yet, and
 * `skipped` the members of a cancelled job or of an operation lost before its last poll.
 */
export interface BatchSummary extends BatchProgress {
  /** Members of requests that failed as a whole (refused, or ambiguous: see the operation's code). */
  readonly notSent: number;
  readonly operations: readonly OperationView[];
}

/**
 * The counts over every request. A request that failed as a whole counts its members as failed
 * (`notSent` says how many of them); a request not sent yet counts them as pending, a cancelled one
 * as skipped. A tenant or team request has no count until Teams reports one.
 */
export function summarizeBatch(state: BatchState): BatchSummary {
  let total = 0;
  let sent = 0;
  let failed = 0;
  let throttled = 0;
  let pending = 0;
  let skipped = 0;
  let notSent = 0;
  const operations: OperationView[] = state.chunks.map((chunk) => {
    const members = chunk.members ?? 0;
    const [t, s, f, th, p, sk] = chunk.counts ?? [0, 0, 0, 0, 0, 0];
    let view: Omit<OperationView, 'status'>;
    if (chunk.counts !== undefined) {
      // A request lost or timed out after its last poll: what was pending will not be known.
      const lost = chunk.status === 'failed' || chunk.status === 'cancelled';
      view = { total: t, sent: s, failed: f, throttled: th, pending: lost ? 0 : p };
      skipped += sk + (lost ? p : 0);
    } else if (chunk.status === 'failed') {
      view = { total: members, sent: 0, failed: members, throttled: 0, pending: 0 };
      notSent += members;
    } else if (chunk.status === 'cancelled') {
      view = { total: members, sent: 0, failed: 0, throttled: 0, pending: 0 };
      skipped += members;
    } else {
      view = { total: members, sent: 0, failed: 0, throttled: 0, pending: members };
    }
    total += view.total;
    sent += view.sent;
    failed += view.failed;
    throttled += view.throttled;
    pending += view.pending;
    return {
      ...(chunk.operationId === undefined ? {} : { operationId: chunk.operationId }),
      status: chunk.status,
      ...(chunk.state === undefined ? {} : { state: chunk.state }),
      ...view,
      ...(chunk.code === undefined ? {} : { code: chunk.code }),
    };
  });
  return {
    total,
    sent,
    failed,
    throttled,
    pending,
    skipped,
    notSent,
    finished: state.finishedAt !== undefined,
    operations,
  };
}
