/**
 * A Storage Queue trigger listener with the semantics of the WebJobs storage extension
 * (Azure/azure-sdk-for-net, Microsoft.Azure.WebJobs.Extensions.Storage.Queues: QueueListener.cs,
 * QueueProcessor.cs, QueueServiceClientProvider.cs, RandomizedExponentialBackoffStrategy.cs):
 *
 * - Each poll receives up to `batchSize` messages and hides them for 10 minutes (the lease); the lease
 *   is renewed at half its length while the function runs.
 * - After a poll that found messages, the next poll happens as soon as no more than
 *   `newBatchThreshold` messages are still running. An empty poll waits, backing off from 100 ms up to
 *   `maxPollingInterval` with a randomized exponential strategy; finding messages resets it.
 * - Success deletes the message. Failure makes it visible again after `visibilityTimeout`, or, once
 *   `dequeueCount >= maxDequeueCount`, copies it to `<queue>-poison` and deletes it. A message seen
 *   with `dequeueCount > maxDequeueCount` goes to poison without running (a crash mid-run).
 * - With `messageEncoding: base64`, a message that is not valid base64 is moved to the poison queue
 *   at once, unchanged, without running the function ("Message decoding has failed!").
 * - Storage errors follow the extension's rules (classifyStorageError): a poll backs off on 404
 *   QueueNotFound, 409 QueueBeingDeleted and 5xx; completing a message shrugs off losing it (400
 *   PopReceiptMismatch, 404 MessageNotFound/QueueNotFound, 409 QueueBeingDeleted); anything else goes
 *   to the host's exception handler, which stops the host (`onUnhandledError`). One local exception:
 *   when storage does not answer at all (connection refused, a timeout), the listener waits for it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { HostMessage, HostQueue } from './queueClients';
import { describeError, type InvocationOutcome } from './functionsCore';
import type { HostLogger } from './log';
import type { RpcInvocationRequest, RpcTypedData } from './rpcTypes';
import { MIN_POLLING_INTERVAL_MS, type QueueOptions } from './settings';

/** The real host's lease on a dequeued message (QueueListener: `_visibilityTimeout = 10 minutes`). */
export const DEFAULT_MESSAGE_LEASE_MS = 10 * 60_000;
const MAX_QUEUE_NAME_LENGTH = 63;
const POISON_SUFFIX = '-poison';
const OUTAGE_LOG_EVERY_MS = 30_000;

/** RandomizedExponentialBackoffStrategy: min + rand(0.8..1.2) * 2^(n-1) * min, capped at max. */
export class RandomizedExponentialBackoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #currentMs: number;
  #exponent = 1;

  constructor(minMs: number, maxMs: number, random: () => number = Math.random) {
    this.#minMs = minMs;
    this.#maxMs = Math.max(minMs, maxMs);
    this.#random = random;
    this.#currentMs = minMs;
  }

  next(executionSucceeded: boolean): number {
    if (executionSucceeded) {
      this.#currentMs = this.#minMs;
      this.#exponent = 1;
    } else if (this.#currentMs !== this.#maxMs) {
      const factor = 0.8 + this.#random() * 0.4;
      const backoff = this.#minMs + factor * 2 ** (this.#exponent - 1) * this.#minMs;
      if (backoff < this.#maxMs) {
        this.#currentMs = backoff;
        this.#exponent++;
      } else {
        this.#currentMs = this.#maxMs;
      }
    }
    return this.#currentMs;
  }
}

/** Convert.FromBase64String rules: whitespace ignored, length a multiple of 4, padding only at the end. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const compact = text.replace(/[\t\n\r ]/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** The name of a queue's poison queue, or undefined when the host would not use one. */
export function poisonQueueNameFor(queueName: string): string | undefined {
  if (queueName.endsWith(POISON_SUFFIX)) return undefined;
  const name = queueName + POISON_SUFFIX;
  return name.length > MAX_QUEUE_NAME_LENGTH ? undefined : name;
}

/** Storage queue name rules (3-63 chars, lower-case letters, digits, single hyphens inside). */
export function isValidQueueName(name: string): boolean {
  return name.length >= 3 && name.length <= MAX_QUEUE_NAME_LENGTH && /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$/.test(name);
}

/** DateTimeOffset as Newtonsoft.Json writes it: `2025-01-02T03:04:05+00:00`, fraction only when non-zero. */
export function toDotNetDateJson(date: Date | undefined): string | undefined {
  if (!date || Number.isNaN(date.getTime())) return undefined;
  const iso = date.toISOString();
  const ms = date.getUTCMilliseconds();
  const fraction = ms === 0 ? '' : `.${String(ms).padStart(3, '0').replace(/0+$/, '')}`;
  return JSON.stringify(`${iso.slice(0, 19)}${fraction}+00:00`);
}

// ---- Binding data from a JSON payload, as Json.NET and Utility.ApplyBindingData make it ----------

/** A date Json.NET's reader recognizes in a string (DateTimeUtils.TryParseDateTime, ISO form). */
interface JsonNetDate {
  /** Calendar fields after the zone is applied (Azure's local time zone is UTC). */
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** Ten-millionths of a second (DateTime ticks), 0-9 999 999. */
  readonly fraction: number;
  /** DateTimeKind: `Z` gives Utc, an offset gives Local (converted to local time), none gives Unspecified. */
  readonly kind: 'utc' | 'local' | 'unspecified';
}

const JSON_NET_ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const MIN_DATE_MS = utcMs(1, 1, 1, 0, 0, 0);
const MAX_DATE_MS = utcMs(9999, 12, 31, 23, 59, 59);

function utcMs(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

/**
 * Json.NET's reader turns a string of 19-40 characters with `T` at index 10 that DateTimeParser
 * accepts into a DateTime (JObject.Parse: DateParseHandling.DateTime). Not mirrored: the rarely
 * used `/Date(ms)/` form.
 */
export function parseJsonNetDate(text: string): JsonNetDate | undefined {
  if (text.length < 19 || text.length > 40) return undefined;
  const m = JSON_NET_ISO_DATE.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(7, '0'));
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (minute > 59 || second > 59 || hour > 24 || (hour === 24 && (minute !== 0 || second !== 0 || fraction !== 0)))
    return undefined;
  let ms = utcMs(year, month, day, hour, minute, second); // hour 24 rolls over to the next day, as CreateDateTime does
  let kind: JsonNetDate['kind'] = 'unspecified';
  if (m[8]) kind = 'utc';
  else if (m[9]) {
    const offsetMs = (Number(m[10]) * 60 + Number(m[11] ?? 0)) * 60_000;
    ms = Math.min(MAX_DATE_MS, Math.max(MIN_DATE_MS, m[9] === '+' ? ms - offsetMs : ms + offsetMs));
    kind = 'local';
  }
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    fraction,
    kind,
  };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `(string)JValue` of a DateTime: Convert.ToString(DateTime, InvariantCulture), i.e. `MM/dd/yyyy HH:mm:ss`. */
function toInvariantDateString(d: JsonNetDate): string {
  return `${pad(d.month)}/${pad(d.day)}/${pad(d.year, 4)} ${pad(d.hour)}:${pad(d.minute)}:${pad(d.second)}`;
}

/** A DateTime as Json.NET writes it (IsoDateFormat): trailing zeros of the fraction dropped; Utc `Z`, Local `+00:00`. */
function toJsonNetIsoString(d: JsonNetDate): string {
  let fraction = '';
  if (d.fraction !== 0) fraction = `.${pad(d.fraction, 7).replace(/0+$/, '')}`;
  const zone = d.kind === 'utc' ? 'Z' : d.kind === 'local' ? '+00:00' : '';
  return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}T${pad(d.hour)}:${pad(d.minute)}:${pad(d.second)}${fraction}${zone}`;
}

/** Strings that Json.NET reads as dates, as JObject.ToString() writes them back. */
function rewriteJsonNetDates(value: unknown): unknown {
  if (typeof value === 'string') {
    const date = parseJsonNetDate(value);
    return date ? toJsonNetIsoString(date) : value;
  }
  if (Array.isArray(value)) return value.map(rewriteJsonNetDates);
  if (typeof value === 'object' && value !== null) {
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value))
      Object.defineProperty(result, key, {
        value: rewriteJsonNetDates(child),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return result;
  }
  return value;
}

/**
 * A JSON number as `(string)JValue` gives it: integers in full (long / BigInteger), others as .NET
 * Core's shortest round-trip double ("G": exponent form under 1E-04 and from 1E+15).
 */
export function toDotNetNumberString(value: number): string {
  if (Number.isInteger(value)) return BigInt(value).toString();
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent > -5 && exponent < 15) return String(value);
  return `${mantissa}E${exponent < 0 ? '-' : '+'}${pad(Math.abs(exponent))}`;
}

/**
 * One top-level property of a JSON payload as Utility.ApplyBindingData adds it to the binding data:
 * arrays and nulls are skipped (`undefined`), objects stay JSON (JObject), everything else becomes
 * a string (`(string)JValue`): `true` is "True", a date string is "06/01/2025 10:00:00".
 */
export function toBindingDataValue(value: unknown): RpcTypedData | undefined {
  if (value === null || value === undefined || Array.isArray(value)) return undefined;
  if (typeof value === 'object') return { json: JSON.stringify(rewriteJsonNetDates(value)) };
  if (typeof value === 'boolean') return { string: value ? 'True' : 'False' };
  if (typeof value === 'number') return { string: toDotNetNumberString(value) };
  if (typeof value === 'string') {
    const date = parseJsonNetDate(value);
    return { string: date ? toInvariantDateString(date) : value };
  }
  return undefined;
}

export interface QueueMessageView {
  readonly messageId: string;
  readonly popReceipt: string;
  readonly dequeueCount: number;
  readonly insertedOn?: Date;
  readonly expiresOn?: Date;
  readonly nextVisibleOn?: Date;
  /** The decoded message text. */
  readonly text: string;
}

/**
 * Trigger metadata as the host sends it for a queue trigger (PascalCase; `@azure/functions`
 * camel-cases the keys). Top-level properties of a JSON object payload are merged in and win over
 * same-named keys, matched case-insensitively, as the host's binding data does
 * (Azure/azure-functions-nodejs-library#459), with WorkerFunctionInvoker.TransformInput ->
 * Utility.ApplyBindingData's rules (toBindingDataValue).
 */
export function toQueueTriggerMetadata(message: QueueMessageView, functionName: string): Record<string, RpcTypedData> {
  const metadata: Record<string, RpcTypedData> = {
    QueueTrigger: { string: message.text },
    DequeueCount: { int: message.dequeueCount },
    Id: { string: message.messageId },
    PopReceipt: { string: message.popReceipt },
  };
  const dates: [string, Date | undefined][] = [
    ['ExpirationTime', message.expiresOn],
    ['InsertionTime', message.insertedOn],
    ['NextVisibleTime', message.nextVisibleOn],
  ];
  for (const [key, date] of dates) {
    const json = toDotNetDateJson(date);
    if (json !== undefined) metadata[key] = { json };
  }
  metadata.sys = {
    json: JSON.stringify({ MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }),
  };

  let payload: unknown;
  try {
    payload = JSON.parse(message.text);
  } catch {
    payload = undefined;
  }
  // The host reads binding data with Json.NET, whose MaxDepth is 64: a deeper payload is not JSON to
  // it, so nothing is merged (and nothing here recurses through a payload nested thousands deep).
  if (
    typeof payload === 'object' &&
    payload !== null &&
    !Array.isArray(payload) &&
    jsonDepthAtMost(payload, MAX_BINDING_DATA_DEPTH)
  ) {
    for (const [key, value] of Object.entries(payload)) {
      const data = toBindingDataValue(value);
      if (data === undefined) continue;
      // Own keys only, as data: a "__proto__" key must not become the object's prototype.
      const existing = Object.keys(metadata).find((k) => k.toLowerCase() === key.toLowerCase());
      Object.defineProperty(metadata, existing ?? key, {
        value: data,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return metadata;
}

/** Json.NET's default JsonReader.MaxDepth. */
export const MAX_BINDING_DATA_DEPTH = 64;

/** Whether a parsed JSON value nests at most `max` levels deep (iterative: safe on any input). */
export function jsonDepthAtMost(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let visited = 0; stack.length > 0; visited += 1) {
    if (visited > 1_000_000) return false;
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > max) return false;
    for (const child of Object.values(node))
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return true;
}

export type QueueInvoker = (request: RpcInvocationRequest & { invocationId: string }) => Promise<InvocationOutcome>;

export interface QueueListenerOptions {
  readonly functionName: string;
  /** The trigger binding's name, used as the input's name. */
  readonly triggerBindingName: string;
  readonly queue: HostQueue;
  /** `undefined` when the queue has no poison queue (its name ends in -poison or is too long). */
  readonly poisonQueue: HostQueue | undefined;
  readonly options: QueueOptions;
  /** Visibility given to a dequeued message and renewed at half; whole seconds, at least 1 s. Default 10 min. */
  readonly messageLeaseMs?: number;
  readonly log: HostLogger;
  readonly invoke: QueueInvoker;
  /** Called after a message was added to a queue by this listener (the poison queue). */
  readonly onMessageAdded?: (queueName: string) => void;
  /**
   * IWebJobsExceptionHandler: a storage error the extension does not handle. The real host logs
   * "An unhandled exception has occurred. Host is shutting down." and stops. A poll error also ends
   * this listener's polling. Default: logged only.
   */
  readonly onUnhandledError?: (error: unknown) => void;
}

interface StorageErrorLike {
  statusCode?: number;
  code?: string;
  message?: string;
  name?: string;
}

function storageErrorSummary(error: unknown): string {
  const e = (error ?? {}) as StorageErrorLike;
  const status = e.statusCode ? String(e.statusCode) : (e.code ?? e.name ?? 'error');
  const message = (e.message ?? String(error)).split('\n')[0];
  return `${status}: ${message}`;
}

/** The storage call that failed. */
export type StorageCall = 'poll' | 'renewLease' | 'complete' | 'poison';

/**
 * What a failed storage call leads to:
 * - `backOff`: poll again after the usual delay;
 * - `lost`: the message is not ours any more (or its queue is going): nothing to do;
 * - `noAnswer`: storage never answered (connection refused or reset, a timeout). Azure stops the
 *   host here as well once the SDK's retries are spent (the exception is no RequestFailedException,
 *   or one with status 0); the local host keeps waiting instead, so Azurite can be restarted under it;
 * - `fatal`: the host's exception handler stops the host.
 */
export type StorageErrorAction = 'backOff' | 'lost' | 'noAnswer' | 'fatal';

type HandledStorageError = readonly [
  status: number | '5xx',
  errorCodes: readonly string[] | 'any',
  action: 'backOff' | 'lost',
];

const OWNERSHIP_LOST: readonly HandledStorageError[] = [
  [400, ['PopReceiptMismatch'], 'lost'],
  [404, ['MessageNotFound', 'QueueNotFound'], 'lost'],
  // IsConflictQueueBeingDeletedOrDisabled checks QueueBeingDeleted only, despite its name.
  [409, ['QueueBeingDeleted'], 'lost'],
];

/**
 * The errors the WebJobs queue extension handles (Microsoft.Azure.WebJobs.Extensions.Storage.Common,
 * Shared/Queues and Shared/RequestFailedExceptionExtensions.cs); everything else is thrown to the
 * exception handler.
 */
const HANDLED_STORAGE_ERRORS: Record<StorageCall, readonly HandledStorageError[]> = {
  // QueueListener.ExecuteAsync.
  poll: [
    [404, ['QueueNotFound'], 'backOff'],
    [409, ['QueueBeingDeleted'], 'backOff'],
    ['5xx', 'any', 'backOff'],
  ],
  // UpdateQueueMessageVisibilityCommand: a 5xx shortens the delay but then falls through to `throw`.
  renewLease: OWNERSHIP_LOST,
  // QueueProcessor.DeleteMessageAsync and ReleaseMessageAsync.
  complete: OWNERSHIP_LOST,
  // QueueProcessor.CopyMessageToPoisonQueueAsync catches nothing.
  poison: [],
};

/** Node's error codes for a connection that failed or broke before storage answered. */
const NO_ANSWER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
]);

/** A storage call that got no HTTP answer at all (as opposed to an error status, or a credential failure). */
export function isNoAnswer(error: unknown): boolean {
  const e = (error ?? {}) as StorageErrorLike;
  if (typeof e.statusCode === 'number') return false;
  return (
    e.name === 'AbortError' ||
    e.name === 'TimeoutError' ||
    (e.code !== undefined && NO_ANSWER_CODES.has(e.code)) ||
    e.name === 'RestError'
  );
}

export function classifyStorageError(call: StorageCall, error: unknown): StorageErrorAction {
  const e = (error ?? {}) as StorageErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined) return isNoAnswer(error) ? 'noAnswer' : 'fatal';
  for (const [handledStatus, codes, action] of HANDLED_STORAGE_ERRORS[call]) {
    const statusMatches = handledStatus === '5xx' ? status >= 500 && status < 600 : status === handledStatus;
    if (statusMatches && (codes === 'any' || (e.code !== undefined && codes.includes(e.code)))) return action;
  }
  return 'fatal';
}

export class QueueListener {
  readonly #o: QueueListenerOptions;
  readonly #backoff: RandomizedExponentialBackoff;
  readonly #leaseSeconds: number;
  readonly #processing = new Set<Promise<void>>();
  readonly #pollAbort = new AbortController();
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #notified = false;
  #stopping = false;
  #abandoned = false;
  #queueReady = false;
  #poisonReady = false;
  #foundMessageSinceLastDelay = false;
  #outage: { since: number; lastLogged: number } | undefined;
  #raised = false;

  constructor(options: QueueListenerOptions) {
    this.#o = options;
    this.#backoff = new RandomizedExponentialBackoff(MIN_POLLING_INTERVAL_MS, options.options.maxPollingIntervalMs);
    this.#leaseSeconds = Math.max(1, Math.floor((options.messageLeaseMs ?? DEFAULT_MESSAGE_LEASE_MS) / 1000));
  }

  get queueName(): string {
    return this.#o.queue.name;
  }

  get inFlight(): number {
    return this.#processing.size;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** A message was just added to this queue by this host: poll now instead of waiting out the backoff. */
  notify(): void {
    this.#notified = true;
    this.#wake?.();
  }

  /** Stops polling and waits up to `drainMs` for running invocations (and their delete/release). */
  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    this.#pollAbort.abort();
    this.#wake?.();
    await this.#loop;
    if (this.#processing.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(this.#processing).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), drainMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#abandoned = true;
      this.#o.log.warn('queue.drain.timeout', {
        function: this.#o.functionName,
        queue: this.queueName,
        inFlight: this.#processing.size,
        drainMs,
      });
    }
  }

  async #run(): Promise<void> {
    const { queue, options } = this.#o;
    while (!this.#stopping) {
      let messages: HostMessage[];
      try {
        if (!this.#queueReady) {
          await queue.createIfNotExists({ abortSignal: this.#pollAbort.signal });
          this.#queueReady = true;
        }
        const response = await queue.receiveMessages({
          numberOfMessages: options.batchSize,
          visibilityTimeout: this.#leaseSeconds,
          abortSignal: this.#pollAbort.signal,
        });
        messages = response.receivedMessageItems;
        this.#storageRecovered();
      } catch (error) {
        if (this.#stopping) break;
        // Re-check the queue's existence after any error, like the host.
        this.#queueReady = false;
        const action = classifyStorageError('poll', error);
        if (action === 'fatal') {
          // The extension rethrows; its TaskSeriesTimer hands it to the exception handler and stops polling.
          this.#raise(error, 'poll');
          break;
        }
        this.#storageFailed(
          error,
          action === 'noAnswer'
            ? 'no answer from storage; waiting for it (Azure would restart the host)'
            : 'backing off',
        );
        await this.#sleep(this.#nextDelay());
        continue;
      }

      if (this.#stopping) {
        // Stopped while receiving: hand the messages back instead of leaving them hidden for the lease.
        await Promise.allSettled(messages.map((m) => queue.updateMessage(m.messageId, m.popReceipt, undefined, 0)));
        break;
      }
      if (messages.length === 0) {
        await this.#sleep(this.#nextDelay());
        continue;
      }
      for (const message of messages) {
        const task = this.#process(message).finally(() => this.#processing.delete(task));
        this.#processing.add(task);
      }
      this.#foundMessageSinceLastDelay = true;
      while (this.#processing.size > options.newBatchThreshold && !this.#stopping) {
        await Promise.race([...this.#processing, this.#wakePromise()]);
      }
    }
  }

  #nextDelay(): number {
    const delay = this.#backoff.next(this.#foundMessageSinceLastDelay);
    this.#foundMessageSinceLastDelay = false;
    return delay;
  }

  #wakePromise(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopping) return;
    if (this.#notified) {
      this.#notified = false;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), this.#wakePromise()]);
    clearTimeout(timer);
    this.#wake = undefined;
    this.#notified = false;
  }

  /** Hands an error to the host's exception handler (once per listener). */
  #raise(error: unknown, during: StorageCall): void {
    if (this.#raised) return;
    this.#raised = true;
    if (this.#o.onUnhandledError) this.#o.onUnhandledError(error);
    else
      this.#o.log.error('queue.unhandledException', {
        function: this.#o.functionName,
        queue: this.queueName,
        during,
        error: storageErrorSummary(error),
      });
  }

  #storageFailed(error: unknown, action: string): void {
    const now = Date.now();
    const fields = { function: this.#o.functionName, queue: this.queueName, error: storageErrorSummary(error) };
    if (!this.#outage) {
      this.#outage = { since: now, lastLogged: now };
      this.#o.log.warn('queue.poll.failed', { ...fields, action });
    } else if (now - this.#outage.lastLogged >= OUTAGE_LOG_EVERY_MS) {
      this.#outage.lastLogged = now;
      this.#o.log.warn('queue.poll.failing', { ...fields, downMs: now - this.#outage.since });
    }
  }

  #storageRecovered(): void {
    if (!this.#outage) return;
    this.#o.log.info('queue.poll.recovered', {
      function: this.#o.functionName,
      queue: this.queueName,
      downMs: Date.now() - this.#outage.since,
    });
    this.#outage = undefined;
  }

  async #process(message: HostMessage): Promise<void> {
    const { functionName, options, log } = this.#o;
    const started = performance.now();
    let popReceipt = message.popReceipt;
    const base = {
      function: functionName,
      queue: this.queueName,
      messageId: message.messageId,
      dequeueCount: message.dequeueCount,
    };
    try {
      // QueueProcessor.BeginProcessingMessageAsync
      if (message.dequeueCount > options.maxDequeueCount) {
        await this.#moveToPoison(
          message,
          popReceipt,
          `dequeueCount ${message.dequeueCount} is above maxDequeueCount ${options.maxDequeueCount}`,
        );
        return;
      }

      let text: string;
      if (options.messageEncoding === 'base64') {
        const bytes = decodeBase64Strict(message.messageText);
        if (bytes === undefined) {
          log.warn('queue.message.decodeFailed', {
            ...base,
            detail: 'Message decoding has failed! Check MessageEncoding settings.',
          });
          await this.#moveToPoison(message, popReceipt, 'not valid base64');
          return;
        }
        text = bytes.toString('utf8');
      } else {
        text = message.messageText;
      }

      const invocationId = randomUUID();
      const view: QueueMessageView = {
        messageId: message.messageId,
        popReceipt,
        dequeueCount: message.dequeueCount,
        insertedOn: message.insertedOn,
        expiresOn: message.expiresOn,
        nextVisibleOn: message.nextVisibleOn,
        text,
      };
      const lease = this.#renewLease(
        message.messageId,
        () => popReceipt,
        (receipt) => {
          popReceipt = receipt;
        },
      );
      let outcome: InvocationOutcome;
      try {
        outcome = await this.#o.invoke({
          invocationId,
          inputData: [{ name: this.#o.triggerBindingName, data: { string: text } }],
          triggerMetadata: toQueueTriggerMetadata(view, functionName),
          traceContext: {
            traceParent: `00-${randomHex(16)}-${randomHex(8)}-00`,
            traceState: '',
            attributes: { OperationName: functionName },
          },
        });
      } finally {
        await lease.stop();
      }
      if (this.#abandoned) return;

      const durationMs = Math.round(performance.now() - started);
      if (outcome.ok) {
        log.info('queue.invocation', { ...base, status: 'succeeded', durationMs, invocationId });
        await this.#delete(message.messageId, popReceipt);
        return;
      }
      log.error('queue.invocation', {
        ...base,
        status: 'failed',
        durationMs,
        invocationId,
        error: describeError(outcome.error),
      });
      // QueueProcessor.CompleteProcessingMessageAsync
      if (!this.#o.poisonQueue) {
        // No poison queue: leave the message invisible so a failing message cannot spin.
        return;
      }
      if (message.dequeueCount >= options.maxDequeueCount) {
        await this.#moveToPoison(message, popReceipt, `reached maxDequeueCount of ${options.maxDequeueCount}`);
      } else {
        await this.#release(message.messageId, popReceipt);
      }
    } catch (error) {
      if (this.#abandoned) return;
      // What #delete and #release shrug off never gets here; the rest goes to the exception handler.
      if (isNoAnswer(error))
        log.warn('queue.message.completeFailed', {
          ...base,
          error: storageErrorSummary(error),
          detail: 'no answer from storage; the message comes back when its lease lapses',
        });
      else this.#raise(error, 'complete');
    }
  }

  /** Keeps the message hidden while the function runs (QueueListener.CreateUpdateMessageVisibilityTimer). */
  #renewLease(
    messageId: string,
    receipt: () => string,
    update: (popReceipt: string) => void,
  ): { stop(): Promise<void> } {
    const intervalMs = (this.#leaseSeconds * 1000) / 2;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let stopped = false;
    const schedule = (ms: number): void => {
      if (stopped) return;
      timer = setTimeout(() => {
        running = renew().finally(() => (running = undefined));
      }, ms);
      timer.unref();
    };
    const renew = async (): Promise<void> => {
      try {
        const response = await this.#o.queue.updateMessage(messageId, receipt(), undefined, this.#leaseSeconds);
        if (response.popReceipt) update(response.popReceipt);
        schedule(intervalMs);
      } catch (error) {
        const action = classifyStorageError('renewLease', error);
        if (action === 'lost') {
          this.#o.log.debug('queue.lease.lost', {
            function: this.#o.functionName,
            queue: this.queueName,
            messageId,
            error: storageErrorSummary(error),
          });
        } else if (action === 'noAnswer') {
          this.#o.log.warn('queue.lease.renewFailed', {
            function: this.#o.functionName,
            queue: this.queueName,
            messageId,
            error: storageErrorSummary(error),
          });
          schedule(Math.max(250, intervalMs / 4));
        } else {
          this.#raise(error, 'renewLease');
        }
      }
    };
    schedule(intervalMs);
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      },
    };
  }

  async #delete(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.#o.queue.deleteMessage(messageId, popReceipt);
    } catch (error) {
      if (classifyStorageError('complete', error) !== 'lost') throw error;
      this.#o.log.debug('queue.message.deleteSkipped', {
        queue: this.queueName,
        messageId,
        error: storageErrorSummary(error),
      });
    }
  }

  /** QueueProcessor.ReleaseMessageAsync: visible again after visibilityTimeout (whole seconds, as the SDK sends). */
  async #release(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.#o.queue.updateMessage(
        messageId,
        popReceipt,
        undefined,
        Math.floor(this.#o.options.visibilityTimeoutMs / 1000),
      );
    } catch (error) {
      if (classifyStorageError('complete', error) !== 'lost') throw error;
    }
  }

  async #moveToPoison(message: HostMessage, popReceipt: string, reason: string): Promise<void> {
    const poison = this.#o.poisonQueue;
    if (!poison) return;
    this.#o.log.warn('queue.message.poisoned', {
      function: this.#o.functionName,
      queue: this.queueName,
      poisonQueue: poison.name,
      messageId: message.messageId,
      dequeueCount: message.dequeueCount,
      reason,
    });
    if (!this.#poisonReady) {
      await poison.createIfNotExists();
      this.#poisonReady = true;
    }
    // The raw text: what the host's re-encoding writes for a valid message, and the original for one that failed decoding.
    await poison.sendMessage(message.messageText);
    this.#o.onMessageAdded?.(poison.name);
    await this.#delete(message.messageId, popReceipt);
  }
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}
