/**
 * What a message in the poison queue (`<OUTBOUND_QUEUE>-poison`) says, and whether and how it can
 * be replayed. Two writers put messages there:
 *
 * - the sender, for a job that failed for good: `{"teamsCourier": PoisonRecord, "job": <the job>}`
 *   (src/store/jobQueue.ts; since POISON_FORMAT 2 with the caller and the parent);
 * - the Functions host, for a message whose run threw `maxDequeueCount` times (storage down, the
 *   app misconfigured): the message exactly as it was on the job queue.
 *
 * A replay puts the job back on the job queue under its own id, in its caller's namespace and its
 * broadcast, so the sender's once-per-id claim still holds (docs/operate.md). Pure.
 */
import { CALLER_NAME, decodeQueueMessage, ENVELOPE_KEY, peekJobId, toEnvelope, type Envelope } from './job';
import { JobValidationError } from '../errors';

/** The poison record format that carries `caller` and `parentId`. */
export const POISON_FORMAT = 2;

/** The code a listing shows for a message the Functions host moved to the poison queue itself. */
export const HOST_POISONED = 'HostRetriesExhausted';

/** Failures a replay cannot fix: the same job would fail the same way. */
export const NOT_REPLAYABLE_CODES: Readonly<Record<string, string>> = Object.freeze({
  InvalidJob: 'the job breaks the contract and would fail again: fix it and submit it with a new id',
  JobTooLarge: 'the job is too large to be retried and would fail again: send less, with a new id',
  BatchAmbiguous:
    'a batch request may have reached Teams already: replaying could message everyone twice; check in Teams, then send again with a new id if it did not arrive',
});

export type Replay = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly why: string };

export interface PoisonEntry {
  /** The job id (internal: `<caller>:<id>` for an authenticated caller's job); undefined when unknown. */
  readonly jobId?: string;
  readonly code: string;
  readonly reason: string;
  /** Connector attempts before it failed (sender records only). */
  readonly attempts?: number;
  /** When it failed (ISO 8601): the sender's record, or when the host moved it. */
  readonly failedAt?: string;
  readonly caller?: string;
  readonly parentId?: string;
  readonly source: 'sender' | 'host';
  /** The queue message that puts the job back, or why it cannot go back. */
  readonly replay: Replay;
}

export interface PoisonMessageMeta {
  /** When the message was put on the poison queue. */
  readonly insertedOn?: Date;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** `<caller>:` at the start of an id: it may be a caller's namespaced id (docs/flows.md). */
const MAYBE_NAMESPACED = new RegExp(`^${CALLER_NAME.source.slice(1, -1)}:`);
const CHILD_ID = /~\d+$/;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads one poison message. Never throws: what cannot be read is listed as not replayable. */
export function parsePoisonMessage(text: string, meta: PoisonMessageMeta = {}): PoisonEntry {
  const parsed = parseJson(text.trim());
  const record = isObject(parsed) && isObject(parsed[ENVELOPE_KEY]) ? parsed[ENVELOPE_KEY] : undefined;
  if (
    isObject(parsed) &&
    record !== undefined &&
    Object.keys(parsed).length === 2 &&
    'job' in parsed &&
    str(record.code) !== undefined &&
    str(record.failedAt) !== undefined
  ) {
    return fromSenderRecord(record, parsed.job);
  }
  return fromHostMove(text, meta);
}

function fromSenderRecord(record: Record<string, unknown>, job: unknown): PoisonEntry {
  const jobId = str(record.jobId);
  const code = str(record.code)!;
  const base = {
    ...(jobId === undefined ? {} : { jobId }),
    code,
    reason: str(record.reason) ?? '',
    ...(typeof record.attempts === 'number' ? { attempts: record.attempts } : {}),
    failedAt: str(record.failedAt)!,
    source: 'sender' as const,
  };
  let caller: string | undefined;
  let parentId: string | undefined;
  if (record.format === POISON_FORMAT) {
    caller = str(record.caller);
    parentId = str(record.parentId);
  } else if (jobId !== undefined) {
    // Written before replay existed: neither was kept. A broadcast child's parent is its id without
    // `~<n>`; a caller cannot be told from an id that may or may not carry a namespace.
    if (CHILD_ID.test(jobId)) parentId = jobId.replace(CHILD_ID, '');
  }
  const who = { ...(caller === undefined ? {} : { caller }), ...(parentId === undefined ? {} : { parentId }) };
  const refuse = (why: string): PoisonEntry => ({ ...base, ...who, replay: { ok: false, why } });

  if (jobId === undefined) return refuse('the record names no job id');
  if (caller !== undefined && !CALLER_NAME.test(caller)) return refuse('the record names no valid caller');
  const notReplayable = NOT_REPLAYABLE_CODES[code];
  if (notReplayable !== undefined) return refuse(notReplayable);
  if (!isObject(job)) return refuse('the job was not a JSON object');
  if (job.truncated === true && typeof job.head === 'string')
    return refuse('only the beginning of the job was kept (it was too large for the poison queue)');
  if (record.format !== POISON_FORMAT && MAYBE_NAMESPACED.test(jobId)) {
    return refuse(
      'written before replay existed: the record does not say whether the id belongs to an authenticated caller; submit the job again',
    );
  }
  const envelope: Envelope = { jobId, deferrals: 0, ...who, recorded: true };
  return { ...base, ...who, replay: { ok: true, text: toEnvelope(job, envelope) } };
}

function fromHostMove(text: string, meta: PoisonMessageMeta): PoisonEntry {
  const base = {
    code: HOST_POISONED,
    reason:
      "the Functions host moved the message here after its run failed maxDequeueCount times (storage unreachable, or the app misconfigured): see the app's logs",
    ...(meta.insertedOn === undefined ? {} : { failedAt: meta.insertedOn.toISOString() }),
    source: 'host' as const,
  };
  try {
    const decoded = decodeQueueMessage(text);
    const { envelope } = decoded;
    if (envelope !== undefined) {
      const who = {
        ...(envelope.caller === undefined ? {} : { caller: envelope.caller }),
        ...(envelope.parentId === undefined ? {} : { parentId: envelope.parentId }),
      };
      // Our own envelope, as the sender or the HTTP API wrote it: it goes back as it was.
      return {
        ...base,
        jobId: envelope.jobId,
        ...who,
        replay: { ok: true, text: toEnvelope(decoded.body, { ...envelope, deferrals: 0 }) },
      };
    }
    const jobId = peekJobId(decoded.body);
    if (jobId === undefined) {
      // Its id was the queue message's id, which the move to the poison queue did not keep: under a
      // new id it could be sent a second time.
      return {
        ...base,
        replay: {
          ok: false,
          why: "the job has no id of its own (its id was the original queue message's, which is lost); submit it again",
        },
      };
    }
    return { ...base, jobId, replay: { ok: true, text: JSON.stringify(decoded.body) } };
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    return { ...base, replay: { ok: false, why: `the message is not a job: ${err.message}` } };
  }
}

/** Which entries a listing or a replay takes. */
export interface PoisonFilter {
  /** Only these job ids (internal ids). */
  readonly jobIds?: readonly string[];
  /** Only this failure code. */
  readonly code?: string;
  /** Only failures at or after this time. */
  readonly since?: Date;
  /** Only the recipients of this broadcast or batch (internal id). */
  readonly parentId?: string;
}

export function matchesFilter(entry: PoisonEntry, filter: PoisonFilter): boolean {
  if (filter.jobIds !== undefined && (entry.jobId === undefined || !filter.jobIds.includes(entry.jobId))) return false;
  if (filter.code !== undefined && entry.code !== filter.code) return false;
  if (filter.parentId !== undefined && entry.parentId !== filter.parentId) return false;
  if (filter.since !== undefined) {
    const at = Date.parse(entry.failedAt ?? '');
    if (Number.isNaN(at) || at < filter.since.getTime()) return false;
  }
  return true;
}
