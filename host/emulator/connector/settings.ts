/** The Connector stub's behaviour switches, changeable at runtime with `configure()` (batch ones with `configureBatch()`). */
import { type RateWindow, TEAMS_PER_APP_PER_TENANT_RPS } from '../rateLimiter';
import type { ConnectorAuthOptions } from './auth';
import type { ConnectorRateLimitOptions } from './rateLimits';

export interface ConnectorSettings {
  /** `false` accepts any (or no) token. */
  auth: ConnectorAuthOptions | false;
  /** `false` turns rate limiting off. Default on with Teams' values. */
  rateLimit: ConnectorRateLimitOptions | false;
  /** Writes to a conversation the stub has never seen: `accept` (default, auto-register) or `reject` (404 ConversationNotFound). */
  unknownConversations: 'accept' | 'reject';
  /** Update/delete/reply of an activity id the stub did not issue: 404 ActivityNotFoundInConversation when true (default). */
  strictActivities: boolean;
  /**
   * 413 MessageSizeTooBig above this many bytes, counting the activity JSON as UTF-16 (§5: "entire
   * message payload encoded as UTF-16"); default 102400; `null` disables.
   */
  maxMessageBytes: number | null;
}

/** The settings with every default filled in. */
export function toConnectorSettings(options: Partial<ConnectorSettings>): ConnectorSettings {
  return {
    auth: options.auth ?? false,
    rateLimit: options.rateLimit ?? {},
    unknownConversations: options.unknownConversations ?? 'accept',
    strictActivities: options.strictActivities ?? true,
    maxMessageBytes: options.maxMessageBytes === undefined ? 100 * 1024 : options.maxMessageBytes,
  };
}

/** The answer shapes, one per SDK family (src/core/batchState.ts reads them all). */
export interface BatchShapes {
  /** `{operationId}` (botbuilder-js) or the bare id as a JSON string (.NET SDKs). Default object. */
  sendResponse: 'object' | 'string';
  /** Counts keyed by HTTP status (`{"201": 3, "403": 1}`, botbuilder) or named (`{success, failed, throttled, pending}`, teams.net). Default httpStatus. */
  statusMap: 'httpStatus' | 'named';
  /** `statusMap` (schemas) or `stateMap` (botbuilder-js's mapper). Default statusMap. */
  statusMapKey: 'statusMap' | 'stateMap';
  /** `failedEntries` (.NET) or `failedEntryResponses` (JS). Default failedEntries. */
  failedEntriesKey: 'failedEntries' | 'failedEntryResponses';
}

export interface BatchSettings {
  /** Entries an ongoing operation processes per state poll; default 5 (`npm run emulator -- batch` ends in 3 polls). */
  entriesPerPoll: number;
  /** Failed entries per page; default 2, so clients see several pages. */
  pageSize: number;
  /** An entry whose id contains this (any case) fails with BotNotInConversationRoster; default 'fail'; '' off. */
  failMarker: string;
  /** Probability that any other entry fails the same way (seeded by `seed`); default 0. */
  failureRate: number;
  /** An entry whose id contains this is throttled on its first try, sent on a later poll; default 'throttle'; '' off. */
  throttleMarker: string;
  seed: number;
  /** Members per users/channels request (microsoft/teams.py: "between 5 and 1000"); defaults 5 and 1000. */
  minMembers: number;
  maxMembers: number;
  /** Batch requests per bot per tenant (all four kinds, polls and cancels); default 50 per second; false off. */
  rateLimit: readonly RateWindow[] | false;
  /** `retryAfter` of an ongoing operation's state, this far ahead; default 1000 ms; null omits it. */
  retryAfterMs: number | null;
  shapes: BatchShapes;
}

export function toBatchSettings(patch: Partial<BatchSettings> = {}, base?: BatchSettings): BatchSettings {
  const defaults: BatchSettings = base ?? {
    entriesPerPoll: 5,
    pageSize: 2,
    failMarker: 'fail',
    failureRate: 0,
    throttleMarker: 'throttle',
    seed: 1,
    minMembers: 5,
    maxMembers: 1000,
    rateLimit: [{ windowMs: 1_000, max: TEAMS_PER_APP_PER_TENANT_RPS }],
    retryAfterMs: 1_000,
    shapes: {
      sendResponse: 'object',
      statusMap: 'httpStatus',
      statusMapKey: 'statusMap',
      failedEntriesKey: 'failedEntries',
    },
  };
  return { ...defaults, ...patch, shapes: { ...defaults.shapes, ...patch.shapes } };
}
