/**
 * Teams' batch messaging, the answer half: the operation id a send returns, an operation's state,
 * a page of its failed entries, and one progress view over any of the shapes seen. The SDKs
 * disagree on every shape (sources in the comments), so each reader takes them all. Pure.
 */

/** Parsed `GET v3/batch/conversation/{operationId}`. */
export interface OperationState {
  /** Teams' own word ("Ongoing", "Completed", "Failed", ...); '' when absent. */
  readonly state: string;
  /** A terminal state: nothing more will be sent. */
  readonly finished: boolean;
  /** `totalEntriesCount`, when given. */
  readonly totalEntries?: number;
  readonly sent: number;
  readonly failed: number;
  readonly throttled: number;
  /** Only when Teams counts pending entries itself (teams.net's named map). */
  readonly pending?: number;
  /** `retryAfter` as a wait from now, when it lies ahead. */
  readonly retryAfterMs?: number;
}

export interface FailedEntry {
  readonly id: string;
  /** Teams' error for the entry, as given (a code, usually); 'Unknown' when absent. */
  readonly error: string;
}

export interface FailedEntriesPage {
  readonly entries: readonly FailedEntry[];
  /** The next page's token; absent on the last page. */
  readonly continuationToken?: string;
}

/** Where a batch stands, summed over its operations. */
export interface BatchProgress {
  readonly total: number;
  readonly sent: number;
  readonly failed: number;
  readonly throttled: number;
  /** Not processed yet (0 once finished). */
  readonly pending: number;
  /** Never processed and never will be: the operation ended first (cancelled, or failed as a whole). */
  readonly skipped: number;
  readonly finished: boolean;
}

/**
 * Terminal states, lower case. "Completed" and "Failed" are Microsoft's sample's words (bot-batch-
 * operations README: "Ongoing, Completed, or Failed"); no source names the state after a cancel,
 * so both spellings of cancelled count.
 */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled', 'canceled']);

const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
const MAX_ID_LENGTH = 1024;
const MAX_ERROR_LENGTH = 300;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first of `keys` present in `body` (the SDKs' camelCase, PascalCase and typo'd names). */
function pick(body: Json, ...keys: string[]): unknown {
  for (const key of keys) if (body[key] !== undefined && body[key] !== null) return body[key];
  return undefined;
}

function count(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function cleanId(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const id = value.trim();
  // eslint-disable-next-line no-control-regex
  return id !== '' && id.length <= MAX_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(id) ? id : undefined;
}

/**
 * The operation id of a 201: `{operationId}` (botbuilder-js, Agents-for-js, teams.py) or the bare
 * id (botbuilder-dotnet and teams.net return the body as a string; their test server answers
 * `operation-1`), as JSON text or not. Undefined when the answer names no id.
 */
export function parseSendResponse(body: unknown): string | undefined {
  if (typeof body === 'string') {
    const text = body.trim();
    if (text.startsWith('"') || text.startsWith('{')) {
      try {
        return parseSendResponse(JSON.parse(text) as unknown);
      } catch {
        return undefined;
      }
    }
    return cleanId(text);
  }
  if (!isRecord(body)) return undefined;
  return cleanId(pick(body, 'operationId', 'OperationId', 'id', 'Id'));
}

type Bucket = 'sent' | 'failed' | 'throttled' | 'pending';

const named = (bucket: Bucket, ...keys: string[]): [string, Bucket][] => keys.map((key) => [key, bucket]);
const NAMED_BUCKETS: ReadonlyMap<string, Bucket> = new Map([
  ...named('sent', 'success', 'succeeded', 'sent', 'delivered'),
  ...named('failed', 'failed', 'failure', 'error'),
  ...named('throttled', 'throttled'),
  ...named('pending', 'pending', 'notstarted', 'inprogress', 'queued'),
]);

/** teams.net's compat shim writes its named counters into botbuilder's int-keyed map as 0..3. */
const INDEX_BUCKETS: readonly Bucket[] = ['sent', 'failed', 'throttled', 'pending'];

/**
 * Which count a status-map key adds to. Three forms: HTTP status codes (botbuilder's
 * `Record<number, number>` "status map for processed users": 2xx sent, 429 throttled, any other
 * failed), teams.net's names (`success`, `failed`, `throttled`, `pending`), and the 0..3 indexes.
 */
function bucketOf(key: string): Bucket | undefined {
  const trimmed = key.trim();
  if (/^\d+$/.test(trimmed)) {
    const n = Number(trimmed);
    if (n >= 200 && n < 300) return 'sent';
    if (n === 429) return 'throttled';
    if (n >= 100 && n < 600) return 'failed';
    return INDEX_BUCKETS[n];
  }
  return NAMED_BUCKETS.get(trimmed.toLowerCase());
}

/** `retryAfter`: an ISO date (the SDKs type it DateTime) or, defensively, seconds. Only a wait still ahead counts. */
export function retryAfterMsOf(value: unknown, now: Date): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) ms = Math.round(value * 1000);
  else if (typeof value === 'string' && value.trim() !== '') {
    const at = Date.parse(value.trim());
    if (!Number.isNaN(at)) ms = at - now.getTime();
  }
  return ms !== undefined && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/**
 * `{state, statusMap | stateMap, totalEntriesCount, retryAfter}`. The map is `statusMap` in the
 * botbuilder schemas and teams.net, `stateMap` in botbuilder-js's mapper (a typo the JS SDK reads
 * with). Undefined when the body is not an object; unknown map keys and bad counts are ignored.
 */
export function parseOperationState(body: unknown, now: Date): OperationState | undefined {
  if (!isRecord(body)) return undefined;
  const stateValue = pick(body, 'state', 'State');
  const state = typeof stateValue === 'string' ? stateValue.trim() : '';
  const sums: Record<Bucket, number> = { sent: 0, failed: 0, throttled: 0, pending: 0 };
  let pendingGiven = false;
  const map = pick(body, 'statusMap', 'stateMap', 'StatusMap', 'StateMap');
  if (isRecord(map)) {
    for (const [key, value] of Object.entries(map)) {
      const bucket = bucketOf(key);
      const n = count(value);
      if (bucket === undefined || n === undefined) continue;
      sums[bucket] += n;
      if (bucket === 'pending') pendingGiven = true;
    }
  }
  const totalEntries = count(pick(body, 'totalEntriesCount', 'TotalEntriesCount'));
  const retryAfterMs = retryAfterMsOf(pick(body, 'retryAfter', 'RetryAfter'), now);
  return {
    state,
    finished: TERMINAL_STATES.has(state.toLowerCase()),
    ...(totalEntries === undefined ? {} : { totalEntries }),
    sent: sums.sent,
    failed: sums.failed,
    throttled: sums.throttled,
    ...(pendingGiven ? { pending: sums.pending } : {}),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
}

function errorText(value: unknown): string {
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (isRecord(value)) {
    const inner = pick(value, 'code', 'Code', 'message', 'Message');
    text = typeof inner === 'string' ? inner : JSON.stringify(value);
  } else if (typeof value === 'number') text = String(value);
  text = text?.trim();
  return text === undefined || text === '' ? 'Unknown' : text.slice(0, MAX_ERROR_LENGTH);
}

/**
 * `{failedEntries | failedEntryResponses, continuationToken}`: `failedEntries` in botbuilder-dotnet
 * and teams.net, `failedEntryResponses` in botbuilder-js and Agents-for-js; the entry id as `id`,
 * `Id` (botbuilder-js's mapper) or `entryId` (Microsoft's Node sample reads that). Entries without
 * an id are dropped. Undefined when the body is not an object.
 */
export function parseFailedEntriesPage(body: unknown): FailedEntriesPage | undefined {
  if (!isRecord(body)) return undefined;
  const list = pick(body, 'failedEntries', 'failedEntryResponses', 'FailedEntries', 'FailedEntryResponses');
  const entries: FailedEntry[] = [];
  if (Array.isArray(list)) {
    for (const item of list) {
      if (!isRecord(item)) continue;
      const id = cleanId(pick(item, 'id', 'Id', 'entryId', 'EntryId'));
      if (id !== undefined) entries.push({ id, error: errorText(pick(item, 'error', 'Error')) });
    }
  }
  const token = pick(body, 'continuationToken', 'ContinuationToken');
  const continuationToken = typeof token === 'string' && token.trim() !== '' ? token : undefined;
  return { entries, ...(continuationToken === undefined ? {} : { continuationToken }) };
}

/**
 * The token to fetch next, or undefined to stop: on the last page, and when a token comes back that
 * was already followed (a service that repeats itself must not make the poller loop forever).
 */
export function nextContinuationToken(page: FailedEntriesPage, followed: ReadonlySet<string>): string | undefined {
  const token = page.continuationToken;
  return token === undefined || followed.has(token) ? undefined : token;
}

/**
 * One operation's progress. The total is `totalEntriesCount`, or what the map counts when it is
 * missing (or smaller). While running, what is neither sent, failed nor throttled is pending; once
 * finished, it is skipped.
 */
export function toProgress(state: OperationState): BatchProgress {
  const processed = state.sent + state.failed + state.throttled;
  const counted = processed + (state.pending ?? 0);
  const total = Math.max(state.totalEntries ?? counted, counted);
  const rest = total - processed;
  return {
    total,
    sent: state.sent,
    failed: state.failed,
    throttled: state.throttled,
    pending: state.finished ? 0 : rest,
    skipped: state.finished ? rest : 0,
    finished: state.finished,
  };
}

/** A batch's progress over all its operations (one per chunk); finished when every one is. None: finished, all zero. */
export function sumProgress(parts: readonly BatchProgress[]): BatchProgress {
  const sum = (key: 'total' | 'sent' | 'failed' | 'throttled' | 'pending' | 'skipped'): number =>
    parts.reduce((acc, p) => acc + p[key], 0);
  return {
    total: sum('total'),
    sent: sum('sent'),
    failed: sum('failed'),
    throttled: sum('throttled'),
    pending: sum('pending'),
    skipped: sum('skipped'),
    finished: parts.every((p) => p.finished),
  };
}
