/**
 * A Bot Connector stub (bot-connector.md §6) over HTTPS: create conversation, send, reply, update,
 * delete, get member. It verifies the bot's bearer token, records every request for inspection,
 * applies Teams-like rate limits (§4) and injects the failures of §7 on demand or at random.
 *
 * This module is the stub's control API; each stage of a request has its own module in
 * `connector/`, run in order by `connector/pipeline.ts`:
 *
 *   route.ts -> body -> auth.ts (401) -> faultInjector.ts -> validation.ts -> rateLimits.ts (429)
 *   -> conversationBook.ts (403/404) -> operations.ts (deliver and answer)
 *
 * Teams' batch operations (`v3/batch/conversation/...`) leave after the faults for
 * batchRequests.ts, over batch.ts's operations; `connector/recorder.ts` keeps what it saw.
 */
import type { Fault, RandomFaultOptions, TeamsErrorName } from './faults';
import { type TlsMaterial, startStubServer } from './localServer';
import { BatchBook, toBatchSettings, type BatchOperation, type BatchSettings } from './connector/batch';
import { ConversationBook, type ConversationRegistration, type UserRegistration } from './connector/conversationBook';
import { FaultInjector, type FaultContext, type FaultMatch, type FaultRule } from './connector/faultInjector';
import { handleConnectorRequest, type ConnectorState } from './connector/pipeline';
import { ConnectorRateLimits } from './connector/rateLimits';
import {
  RequestRecorder,
  type ConnectorRequestRecord,
  type ConnectorStats,
  type DeliveredActivity,
} from './connector/recorder';
import { toConnectorSettings, type ConnectorSettings } from './connector/settings';

export type { ConnectorAuthOptions } from './connector/auth';
export type { BatchEntry, BatchOperation, BatchSettings, BatchShapes } from './connector/batch';
export type { ConversationRegistration, UserRegistration } from './connector/conversationBook';
export type { FaultContext, FaultMatch, FaultRule } from './connector/faultInjector';
export type { ConnectorRateLimitOptions } from './connector/rateLimits';
export type { ConnectorRequestRecord, ConnectorStats, DeliveredActivity, RequestOutcome } from './connector/recorder';
export type { ConnectorOperation } from './connector/route';
export type { ConnectorSettings } from './connector/settings';
export { validateConversationParameters } from './connector/validation';

export interface ConnectorServerOptions extends Partial<ConnectorSettings> {
  readonly faults?: readonly FaultRule[];
  readonly randomFaults?: RandomFaultOptions;
  readonly log?: (line: string) => void;
  /** Teams' batch operations: progress, failures, paging, answer shapes (connector/batch.ts). */
  readonly batch?: Partial<BatchSettings>;
  /** Clock for rate limits and timestamps (ms); default Date.now. */
  readonly now?: () => number;
  readonly tls?: TlsMaterial;
}

export interface ConnectorServer {
  readonly origin: string;
  readonly port: number;
  /** `origin + prefix`, e.g. serviceUrl('amer') -> `https://127.0.0.1:PORT/amer/`. Default prefix `teams`. */
  serviceUrl(prefix?: string): string;
  readonly requests: readonly ConnectorRequestRecord[];
  readonly delivered: readonly DeliveredActivity[];
  readonly stats: Readonly<ConnectorStats>;
  readonly settings: Readonly<ConnectorSettings>;
  configure(patch: Partial<ConnectorSettings>): void;
  /** The batch operations started so far, oldest first (cleared by reset()). */
  readonly batchOperations: readonly BatchOperation[];
  readonly batchSettings: Readonly<BatchSettings>;
  configureBatch(patch: Partial<BatchSettings>): void;
  /** Resolves with the first finished request (existing or future) matching; rejects after `timeoutMs` (default 5000). */
  waitFor(
    predicate: (record: ConnectorRequestRecord, all: readonly ConnectorRequestRecord[]) => boolean,
    timeoutMs?: number,
  ): Promise<ConnectorRequestRecord>;
  /** Resolves with the first delivery (existing or future) matching. */
  waitForDelivery(
    predicate: (delivery: DeliveredActivity, all: readonly DeliveredActivity[]) => boolean,
    timeoutMs?: number,
  ): Promise<DeliveredActivity>;
  injectFault(fault: Fault, options?: { match?: FaultMatch; times?: number }): void;
  /** Consulted for every request no queued fault matched. */
  setFaultHandler(handler: ((ctx: FaultContext) => Fault | undefined) | undefined): void;
  /** Seeded random faults for requests no queued fault or handler caught; undefined turns it off. */
  setRandomFaults(options: RandomFaultOptions | undefined): void;
  clearFaults(): void;
  registerConversation(registration: ConversationRegistration): void;
  conversation(id: string): ConversationRegistration | undefined;
  /** Makes every write to the conversation fail with a canned error (undefined clears it). */
  blockConversation(id: string, error: TeamsErrorName | undefined): void;
  registerUser(user: UserRegistration): void;
  /** The deterministic `a:` id of the personal chat between a bot and a user. */
  personalConversationId(appId: string, tenantId: string, userId: string): string;
  /** Clears records, deliveries, stats, batch operations and rate-limit history (keeps registrations, faults and settings). */
  reset(): void;
  close(): Promise<void>;
}

export async function startConnectorServer(options: ConnectorServerOptions = {}): Promise<ConnectorServer> {
  const now = options.now ?? Date.now;
  const log = options.log;
  const settings = toConnectorSettings(options);
  const recorder = new RequestRecorder(now, log);
  const book = new ConversationBook(now);
  const faults = new FaultInjector(options.faults, options.randomFaults);
  const batch = new BatchBook(toBatchSettings(options.batch), now);
  const newLimits = (): ConnectorRateLimits | undefined =>
    settings.rateLimit === false ? undefined : new ConnectorRateLimits(settings.rateLimit, now);
  let limits = newLimits();
  let origin = '';
  const state: ConnectorState = {
    settings,
    now,
    log,
    origin: () => origin,
    recorder,
    book,
    faults,
    limits: () => limits,
    aborts: new Set(),
    batch,
  };

  const server = await startStubServer('connector', (req, res) => handleConnectorRequest(state, req, res), {
    tls: options.tls,
    log,
  });
  origin = server.origin;

  return {
    origin,
    port: server.port,
    serviceUrl: (prefix = 'teams') => {
      const trimmed = prefix.replace(/^\/+|\/+$/g, '');
      return trimmed === '' ? `${origin}/` : `${origin}/${trimmed}/`;
    },
    requests: recorder.requests,
    delivered: recorder.delivered,
    stats: recorder.stats,
    settings,
    configure(patch) {
      Object.assign(settings, patch);
      if (patch.rateLimit !== undefined) limits = newLimits();
    },
    get batchOperations() {
      return batch.list();
    },
    get batchSettings() {
      return batch.settings;
    },
    configureBatch: (patch) => batch.configure(patch),
    waitFor: (predicate, timeoutMs = 5_000) => recorder.waitFor(predicate, timeoutMs),
    waitForDelivery: (predicate, timeoutMs = 5_000) => recorder.waitForDelivery(predicate, timeoutMs),
    injectFault(fault, opts = {}) {
      faults.add({ fault, ...opts });
    },
    setFaultHandler: (handler) => faults.setHandler(handler),
    setRandomFaults: (opts) => faults.setRandom(opts),
    clearFaults: () => faults.clear(),
    registerConversation(reg) {
      book.register({ ...reg, ...(reg.members ? { members: [...reg.members] } : {}) });
    },
    conversation: (id) => book.find(id),
    blockConversation: (id, error) => book.block(id, error),
    registerUser: (user) => book.registerUser(user),
    personalConversationId: (appId, tenantId, userId) => book.personalConversationId(appId, tenantId, userId),
    reset() {
      recorder.reset();
      batch.reset();
      limits = newLimits();
    },
    async close() {
      for (const abort of state.aborts) abort.abort();
      await server.close();
    },
  };
}
