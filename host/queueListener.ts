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
 * - Storage errors never stop the listener: they are logged and polling backs off.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
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

function toTypedValue(value: unknown): RpcTypedData {
  if (typeof value === 'string') return { string: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { int: value } : { double: value };
  return { json: JSON.stringify(value) };
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
 * (Azure/azure-functions-nodejs-library#459).
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
  metadata.sys = { json: JSON.stringify({ MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }) };

  let payload: unknown;
  try {
    payload = JSON.parse(message.text);
  } catch {
    payload = undefined;
  }
  // The host reads binding data with Json.NET, whose MaxDepth is 64: a deeper payload is not JSON to
  // it, so nothing is merged (and nothing here recurses through a payload nested thousands deep).
  if (typeof payload === 'object' && payload !== null && !Array.isArray(payload) && jsonDepthAtMost(payload, MAX_BINDING_DATA_DEPTH)) {
    for (const [key, value] of Object.entries(payload)) {
      // Own keys only, as data: a "__proto__" key must not become the object's prototype.
      const existing = Object.keys(metadata).find((k) => k.toLowerCase() === key.toLowerCase());
      Object.defineProperty(metadata, existing ?? key, { value: toTypedValue(value), enumerable: true, writable: true, configurable: true });
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
    for (const child of Object.values(node)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return true;
}

export type QueueInvoker = (request: RpcInvocationRequest & { invocationId: string }) => Promise<InvocationOutcome>;

export interface QueueListenerOptions {
  readonly functionName: string;
  /** The trigger binding's name, used as the input's name. */
  readonly triggerBindingName: string;
  readonly queue: QueueClient;
  /** `undefined` when the queue has no poison queue (its name ends in -poison or is too long). */
  readonly poisonQueue: QueueClient | undefined;
  readonly options: QueueOptions;
  /** Visibility given to a dequeued message and renewed at half; whole seconds, at least 1 s. Default 10 min. */
  readonly messageLeaseMs?: number;
  readonly log: HostLogger;
  readonly invoke: QueueInvoker;
  /** Called after a message was added to a queue by this listener (the poison queue). */
  readonly onMessageAdded?: (queueName: string) => void;
}

interface StorageErrorLike {
  statusCode?: number;
  code?: string;
  message?: string;
  name?: string;
}

function storageErrorSummary(error: unknown): string {
  const e = (error ?? {}) as StorageErrorLike;
  const status = e.statusCode ? String(e.statusCode) : e.code ?? e.name ?? 'error';
  const message = (e.message ?? String(error)).split('\n')[0];
  return `${status}: ${message}`;
}

function isGone(error: unknown): boolean {
  const e = (error ?? {}) as StorageErrorLike;
  // 404: message or queue gone; 400 PopReceiptMismatch: someone else owns the message now.
  return e.statusCode === 404 || (e.statusCode === 400 && /popreceipt/i.test(e.code ?? e.message ?? ''));
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
      this.#o.log.warn('queue.drain.timeout', { function: this.#o.functionName, queue: this.queueName, inFlight: this.#processing.size, drainMs });
    }
  }

  async #run(): Promise<void> {
    const { queue, options } = this.#o;
    while (!this.#stopping) {
      let messages: DequeuedMessageItem[];
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
        this.#storageFailed(error);
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

  #storageFailed(error: unknown): void {
    const now = Date.now();
    const fields = { function: this.#o.functionName, queue: this.queueName, error: storageErrorSummary(error) };
    if (!this.#outage) {
      this.#outage = { since: now, lastLogged: now };
      this.#o.log.warn('queue.poll.failed', { ...fields, action: 'backing off' });
    } else if (now - this.#outage.lastLogged >= OUTAGE_LOG_EVERY_MS) {
      this.#outage.lastLogged = now;
      this.#o.log.warn('queue.poll.failing', { ...fields, downMs: now - this.#outage.since });
    }
  }

  #storageRecovered(): void {
    if (!this.#outage) return;
    this.#o.log.info('queue.poll.recovered', { function: this.#o.functionName, queue: this.queueName, downMs: Date.now() - this.#outage.since });
    this.#outage = undefined;
  }

  async #process(message: DequeuedMessageItem): Promise<void> {
    const { functionName, options, log } = this.#o;
    const started = performance.now();
    let popReceipt = message.popReceipt;
    const base = { function: functionName, queue: this.queueName, messageId: message.messageId, dequeueCount: message.dequeueCount };
    try {
      // QueueProcessor.BeginProcessingMessageAsync
      if (message.dequeueCount > options.maxDequeueCount) {
        await this.#moveToPoison(message, popReceipt, `dequeueCount ${message.dequeueCount} is above maxDequeueCount ${options.maxDequeueCount}`);
        return;
      }

      let text: string;
      if (options.messageEncoding === 'base64') {
        const bytes = decodeBase64Strict(message.messageText);
        if (bytes === undefined) {
          log.warn('queue.message.decodeFailed', { ...base, detail: 'Message decoding has failed! Check MessageEncoding settings.' });
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
      const lease = this.#renewLease(message.messageId, () => popReceipt, (receipt) => {
        popReceipt = receipt;
      });
      let outcome: InvocationOutcome;
      try {
        outcome = await this.#o.invoke({
          invocationId,
          inputData: [{ name: this.#o.triggerBindingName, data: { string: text } }],
          triggerMetadata: toQueueTriggerMetadata(view, functionName),
          traceContext: { traceParent: `00-${randomHex(16)}-${randomHex(8)}-00`, traceState: '', attributes: { OperationName: functionName } },
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
      log.error('queue.invocation', { ...base, status: 'failed', durationMs, invocationId, error: describeError(outcome.error) });
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
      if (!this.#abandoned) log.warn('queue.message.completeFailed', { ...base, error: storageErrorSummary(error) });
    }
  }

  /** Keeps the message hidden while the function runs (QueueListener.CreateUpdateMessageVisibilityTimer). */
  #renewLease(messageId: string, receipt: () => string, update: (popReceipt: string) => void): { stop(): Promise<void> } {
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
        if (isGone(error)) {
          this.#o.log.debug('queue.lease.lost', { function: this.#o.functionName, queue: this.queueName, messageId, error: storageErrorSummary(error) });
          return;
        }
        this.#o.log.warn('queue.lease.renewFailed', { function: this.#o.functionName, queue: this.queueName, messageId, error: storageErrorSummary(error) });
        schedule(Math.max(250, intervalMs / 4));
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
      if (!isGone(error)) throw error;
      this.#o.log.debug('queue.message.deleteSkipped', { queue: this.queueName, messageId, error: storageErrorSummary(error) });
    }
  }

  /** QueueProcessor.ReleaseMessageAsync: visible again after visibilityTimeout (whole seconds, as the SDK sends). */
  async #release(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.#o.queue.updateMessage(messageId, popReceipt, undefined, Math.floor(this.#o.options.visibilityTimeoutMs / 1000));
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }

  async #moveToPoison(message: DequeuedMessageItem, popReceipt: string, reason: string): Promise<void> {
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
