/**
 * Queue messages: what the queue trigger hands over, decoded to a job body and, when teams-courier
 * re-enqueued the job itself, the envelope it wrapped the job in.
 */
import { JobValidationError } from '../../errors';
import { isObject, type Json } from '../json';
import { fitsKey, MAX_INTERNAL_ID_KEY_LENGTH } from './jobId';

/** What teams-courier adds when it re-enqueues a job (retry later, rate-limit deferral, fan-out). */
export interface Envelope {
  readonly jobId: string;
  /** Times the job was put back without a send attempt (rate limit, another worker's lease). */
  readonly deferrals: number;
  /** The broadcast or batch this job belongs to. */
  readonly parentId?: string;
  /** Fan-out progress of a broadcast: where to continue. */
  readonly cursor?: string;
  /**
   * The authenticated caller whose job this is (docs/flows.md, trust model). Its update and delete
   * targets name its own jobs, and its tenant restrictions apply when the target is resolved.
   */
  readonly caller?: string;
  /**
   * The job has a delivery record already (the HTTP API wrote it pending, or an attempt claimed it):
   * the sender reads it before claiming. Without it the sender claims with an insert, one storage
   * request fewer; a wrong hint costs a request, never a second send.
   */
  readonly recorded?: boolean;
  /**
   * A batch job's status poll (src/outbound/batchPoll.ts), not a send: the poll sequence number it
   * is for. Its record keeps the current one, so an older poll message is dropped. The job body of a
   * poll message is not read (`{}`).
   */
  readonly poll?: number;
}

export interface DecodedMessage {
  readonly body: unknown;
  readonly envelope?: Envelope;
}

export const ENVELOPE_KEY = 'teamsCourier';
/** Caller names: the prefix of a caller's internal job ids (`<caller>:<id>`). */
export const CALLER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;
const BASE64 = /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/;

function invalid(path: string, message: string): never {
  throw new JobValidationError([{ path, message }]);
}

/**
 * The queue trigger parses JSON text itself (so plain JSON arrives as an object); base64 arrives as a
 * string. Both encodings must work: Logic Apps and @azure/storage-queue write plain text, Functions
 * output bindings write base64.
 */
export function decodeQueueMessage(input: unknown): DecodedMessage {
  let body: unknown = input;
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) body = Buffer.from(input).toString('utf8');
  if (typeof body === 'string') {
    const text = body.trim();
    if (text === '') invalid('(message)', 'is empty');
    if (text.startsWith('{') || text.startsWith('[')) {
      body = parseJsonText(text, 'is not valid JSON');
    } else if (BASE64.test(text)) {
      const decoded = Buffer.from(text, 'base64').toString('utf8');
      body = parseJsonText(decoded.trim(), 'is base64 but does not decode to JSON');
    } else {
      invalid('(message)', 'is neither JSON nor base64-encoded JSON');
    }
  }
  if (!isObject(body))
    invalid(
      '(message)',
      `must be a JSON object (got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body})`,
    );
  return fromEnvelopeForm(body) ?? { body };
}

/**
 * Our own envelope: exactly `{teamsCourier: {...}, job: {...}}`. Anything else is a caller's job,
 * and parseJob refuses the reserved keys in it, so a job can never name its own envelope. Only
 * principals that can write the queue directly can write an envelope (docs/flows.md, trust model).
 */
function fromEnvelopeForm(body: Json): DecodedMessage | undefined {
  const keys = Object.keys(body);
  if (keys.length !== 2 || !keys.includes(ENVELOPE_KEY) || !keys.includes('job')) return undefined;
  const raw = body[ENVELOPE_KEY];
  if (!isObject(raw) || !isObject(body.job)) return undefined;
  if (typeof raw.jobId !== 'string' || !fitsKey(raw.jobId, MAX_INTERNAL_ID_KEY_LENGTH))
    invalid(`${ENVELOPE_KEY}.jobId`, 'must be a job id that fits a table key');
  const deferrals =
    typeof raw.deferrals === 'number' && Number.isInteger(raw.deferrals) && raw.deferrals >= 0 ? raw.deferrals : 0;
  const text = (key: string): string | undefined =>
    typeof raw[key] === 'string' && raw[key] !== '' ? raw[key] : undefined;
  const parentId = text('parentId');
  const cursor = text('cursor');
  const caller = text('caller');
  if (caller !== undefined && !CALLER_NAME.test(caller)) invalid(`${ENVELOPE_KEY}.caller`, 'is not a caller name');
  const recorded = raw.recorded === true;
  let poll: number | undefined;
  if (raw.poll !== undefined) {
    if (typeof raw.poll !== 'number' || !Number.isSafeInteger(raw.poll) || raw.poll < 0)
      invalid(`${ENVELOPE_KEY}.poll`, 'must be a whole number, 0 or more');
    poll = raw.poll;
  }
  return {
    body: body.job,
    envelope: {
      jobId: raw.jobId,
      deferrals,
      ...(parentId === undefined ? {} : { parentId }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(caller === undefined ? {} : { caller }),
      ...(recorded ? { recorded } : {}),
      ...(poll === undefined ? {} : { poll }),
    },
  };
}

function parseJsonText(text: string, message: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return invalid('(message)', message);
  }
}

/** Wraps a job for re-enqueueing, keeping its resolved id (the queue message id changes). */
export function toEnvelope(body: unknown, envelope: Envelope): string {
  return JSON.stringify({ [ENVELOPE_KEY]: envelope, job: body });
}
