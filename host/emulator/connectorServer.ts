/**
 * A Bot Connector stub (bot-connector.md §6) over HTTPS: create conversation, send, reply, update,
 * delete, get member. It verifies the bot's bearer token, records every request for inspection,
 * applies Teams-like rate limits (§4) and injects the failures of §7 on demand or at random.
 *
 * Routing: everything before `/v3/` is the serviceUrl path (`/amer/`, `/emea/`, `/teams/`,
 * `/amer/<tenantId>/` ... §3), so one server stands in for every regional and tenant-suffixed
 * serviceUrl. Path segments are percent-decoded one by one, so `a%3A1x`, `19%3Ax%40thread.tacv2%3Bmessageid%3D1`
 * and raw ids all work, and an encoded `%2F` stays inside its segment.
 *
 * Order of checks per request: route -> body -> bearer token (401) -> injected faults -> validation
 * -> rate limits (429) -> conversation state (403/404) -> deliver and answer.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { describeFault, type Fault, RandomFaultPlan, type RandomFaultOptions, TEAMS_ERRORS, type TeamsErrorName } from './faults';
import { BodyTooLargeError, type LocalServer, type TlsMaterial, header, readBody, sendJson, splitUrl, startHttpsServer } from './localServer';
import { type RateWindow, SlidingWindowLimiter, TEAMS_PER_APP_PER_TENANT_RPS, TEAMS_PER_BOT_PER_THREAD, TEAMS_PER_THREAD_ALL_BOTS } from './rateLimiter';
import { type Activity, type ConversationParameters, isRecord } from './types';

export type ConnectorOperation =
  | 'createConversation'
  | 'sendToConversation'
  | 'replyToActivity'
  | 'updateActivity'
  | 'deleteActivity'
  | 'getMember'
  | 'unknown';

/** Operations that write to a conversation: rate limited and logged as deliveries. */
const WRITE_OPERATIONS: ReadonlySet<ConnectorOperation> = new Set(['createConversation', 'sendToConversation', 'replyToActivity', 'updateActivity', 'deleteActivity']);

export type RequestOutcome = 'pending' | 'responded' | 'dropped' | 'droppedAfterAccept';

export interface ConnectorRequestRecord {
  readonly seq: number;
  readonly time: number;
  readonly method: string;
  /** Raw request target, query included. */
  readonly url: string;
  /** Raw (still percent-encoded) path. */
  readonly path: string;
  /** Path before `/v3/`: `/`, `/amer/`, `/amer/<tenantId>/` ... */
  readonly servicePrefix: string;
  /** `origin + servicePrefix`: the serviceUrl the client used. */
  readonly serviceUrl: string;
  readonly operation: ConnectorOperation;
  /** Percent-decoded conversation id. */
  readonly conversationId?: string;
  /** Percent-decoded activity id (reply / update / delete). */
  readonly activityId?: string;
  readonly memberId?: string;
  readonly headers: IncomingHttpHeaders;
  readonly authorization?: string;
  /** Parsed JSON body (the raw text if it was not JSON; undefined if empty). */
  body: unknown;
  /** Claims of the verified bearer token. */
  tokenClaims?: JWTPayload;
  appId?: string;
  tenantId?: string;
  /** HTTP status sent; null when the connection was dropped instead. */
  status: number | null;
  outcome: RequestOutcome;
  /** The message reached the conversation (also true for dropAfterAccept). */
  delivered: boolean;
  /** Activity id assigned (send/reply/create with activity). */
  assignedActivityId?: string;
  /** Conversation id created (create conversation). */
  createdConversationId?: string;
  response?: unknown;
  responseHeaders?: Record<string, string>;
  fault?: string;
  throttled?: 'thread' | 'threadAllBots' | 'tenant';
  authError?: string;
  finishedAt?: number;
}

export interface DeliveredActivity {
  readonly seq: number;
  readonly time: number;
  readonly operation: Exclude<ConnectorOperation, 'getMember' | 'unknown'>;
  readonly conversationId: string;
  readonly activityId: string;
  /** Absent for deletes. */
  readonly activity?: Activity;
  readonly serviceUrl: string;
  readonly appId?: string;
  readonly tenantId?: string;
}

export interface ConversationRegistration {
  readonly id: string;
  tenantId?: string;
  /** The bot the conversation belongs to; another bot's token gets 403 "Failed to decrypt conversation id" (§7). */
  appId?: string;
  type?: 'personal' | 'groupChat' | 'channel';
  /** Member user ids (`29:...`). */
  members?: string[];
  /** Persistent error for every write, e.g. `ConversationBlockedByUser` or `BotNotInConversationRoster` after an uninstall. */
  error?: TeamsErrorName;
}

export interface UserRegistration {
  /** `29:...` */
  readonly id: string;
  readonly tenantId: string;
  readonly aadObjectId?: string;
  readonly name?: string;
  /** The app is installed for the user (default true). False: create conversation fails with 403 (§6, §11 #4). */
  readonly installed?: boolean;
}

export interface FaultContext {
  readonly seq: number;
  readonly method: string;
  readonly operation: ConnectorOperation;
  readonly servicePrefix: string;
  readonly conversationId?: string;
  readonly activityId?: string;
  readonly body: unknown;
  readonly appId?: string;
}

export type FaultMatch =
  | {
      readonly operation?: ConnectorOperation | readonly ConnectorOperation[];
      readonly method?: string;
      readonly conversationId?: string | RegExp;
      readonly servicePrefix?: string;
    }
  | ((ctx: FaultContext) => boolean);

export interface FaultRule {
  readonly fault: Fault;
  readonly match?: FaultMatch;
  /** Requests to apply it to; default 1; `Infinity` until cleared. */
  readonly times?: number;
}

export interface ConnectorAuthOptions {
  /** Keys that sign valid bot tokens (the Entra stub's `jwks()`); a function is re-read per request. */
  readonly jwks: JSONWebKeySet | (() => JSONWebKeySet);
  /** Accepted `aud` values; default `https://api.botframework.com`. */
  readonly audiences?: readonly string[];
  /** Accepted `appid`/`azp` values; default any. */
  readonly appIds?: readonly string[];
}

export interface ConnectorRateLimitOptions {
  /** Default TEAMS_PER_BOT_PER_THREAD (7/1s, 8/2s, 60/30s, 1800/3600s). */
  readonly perBotPerThread?: readonly RateWindow[];
  /** Default TEAMS_PER_THREAD_ALL_BOTS (14/1s, 16/2s). */
  readonly perThreadAllBots?: readonly RateWindow[];
  /** Default 50 (§4, per app per tenant). */
  readonly perTenantPerSecond?: number;
}

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

export interface ConnectorServerOptions extends Partial<ConnectorSettings> {
  readonly faults?: readonly FaultRule[];
  readonly randomFaults?: RandomFaultOptions;
  readonly log?: (line: string) => void;
  /** Clock for rate limits and timestamps (ms); default Date.now. */
  readonly now?: () => number;
  readonly tls?: TlsMaterial;
}

export interface ConnectorStats {
  requests: number;
  delivered: number;
  throttled: number;
  faults: number;
  unauthorized: number;
  dropped: number;
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
  /** Resolves with the first finished request (existing or future) matching; rejects after `timeoutMs` (default 5000). */
  waitFor(predicate: (record: ConnectorRequestRecord, all: readonly ConnectorRequestRecord[]) => boolean, timeoutMs?: number): Promise<ConnectorRequestRecord>;
  /** Resolves with the first delivery (existing or future) matching. */
  waitForDelivery(predicate: (delivery: DeliveredActivity, all: readonly DeliveredActivity[]) => boolean, timeoutMs?: number): Promise<DeliveredActivity>;
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
  /** Clears records, deliveries, stats and rate-limit history (keeps registrations and faults). */
  reset(): void;
  close(): Promise<void>;
}

const DENIED = { message: 'Authorization has been denied for this request.' };
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function hashId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('|')).digest('base64url');
}

/** `19:x@thread.tacv2;messageid=1` -> `19:x@thread.tacv2`. */
function baseConversationId(id: string): string {
  const at = id.indexOf(';messageid=');
  return at < 0 ? id : id.slice(0, at);
}

function summarise(activity: Activity): string {
  const parts: string[] = [];
  if (typeof activity.text === 'string' && activity.text !== '') parts.push(activity.text.length > 200 ? `${activity.text.slice(0, 200)}…` : activity.text);
  for (const attachment of activity.attachments ?? []) parts.push(`[${attachment.contentType}]`);
  return parts.join(' ') || `(${activity.type})`;
}

type Parsed =
  | { ok: true; operation: ConnectorOperation; servicePrefix: string; conversationId?: string; activityId?: string; memberId?: string }
  | { ok: false; status: number; message: string; servicePrefix: string };

function parseRoute(method: string, pathname: string): Parsed {
  const at = pathname.indexOf('/v3/');
  if (at < 0) return { ok: false, status: 404, message: `No /v3/ in ${pathname}`, servicePrefix: pathname };
  const servicePrefix = pathname.slice(0, at + 1);
  let segments: string[];
  try {
    segments = pathname.slice(at + 4).split('/').map((s) => decodeURIComponent(s));
  } catch {
    return { ok: false, status: 400, message: 'Malformed percent-encoding in path', servicePrefix };
  }
  if (segments.at(-1) === '') segments.pop();
  const [root, conversationId, sub, subId, extra] = segments;
  if (root !== 'conversations') return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
  if (conversationId === undefined) {
    return method === 'POST' ? { ok: true, operation: 'createConversation', servicePrefix } : { ok: false, status: 405, message: `${method} /v3/conversations is not emulated`, servicePrefix };
  }
  if (conversationId === '') return { ok: false, status: 400, message: 'Empty conversation id', servicePrefix };
  if (sub === 'activities' && extra === undefined) {
    if (subId === undefined) {
      return method === 'POST'
        ? { ok: true, operation: 'sendToConversation', servicePrefix, conversationId }
        : { ok: false, status: 405, message: `${method} on activities is not emulated`, servicePrefix };
    }
    const operation: ConnectorOperation | undefined =
      method === 'POST' ? 'replyToActivity' : method === 'PUT' ? 'updateActivity' : method === 'DELETE' ? 'deleteActivity' : undefined;
    return operation
      ? { ok: true, operation, servicePrefix, conversationId, activityId: subId }
      : { ok: false, status: 405, message: `${method} on an activity is not emulated`, servicePrefix };
  }
  if (sub === 'members' && subId !== undefined && extra === undefined && method === 'GET') {
    return { ok: true, operation: 'getMember', servicePrefix, conversationId, memberId: subId };
  }
  return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
}

function matches(match: FaultMatch | undefined, ctx: FaultContext): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(ctx);
  if (match.method !== undefined && match.method.toUpperCase() !== ctx.method) return false;
  if (match.servicePrefix !== undefined && match.servicePrefix !== ctx.servicePrefix) return false;
  if (match.operation !== undefined) {
    const ops: readonly ConnectorOperation[] = typeof match.operation === 'string' ? [match.operation] : match.operation;
    if (!ops.includes(ctx.operation)) return false;
  }
  if (match.conversationId !== undefined) {
    if (ctx.conversationId === undefined) return false;
    if (typeof match.conversationId === 'string' ? match.conversationId !== ctx.conversationId : !match.conversationId.test(ctx.conversationId)) return false;
  }
  return true;
}

/** Shape check of ConversationParameters (swagger). Returns a problem or undefined. */
export function validateConversationParameters(body: unknown): string | undefined {
  if (!isRecord(body)) return 'body must be a ConversationParameters object';
  if (body.isGroup !== undefined && typeof body.isGroup !== 'boolean') return 'isGroup must be a boolean';
  if (body.bot !== undefined && !(isRecord(body.bot) && typeof body.bot.id === 'string')) return 'bot must be a ChannelAccount with an id';
  if (body.members !== undefined) {
    if (!Array.isArray(body.members)) return 'members must be an array';
    if (!body.members.every((m) => isRecord(m) && typeof m.id === 'string' && m.id !== '')) return 'every member must be a ChannelAccount with an id';
  }
  if (body.topicName !== undefined && typeof body.topicName !== 'string') return 'topicName must be a string';
  if (body.tenantId !== undefined && typeof body.tenantId !== 'string') return 'tenantId must be a string';
  if (body.channelData !== undefined && !isRecord(body.channelData)) return 'channelData must be an object';
  if (body.activity !== undefined && !(isRecord(body.activity) && typeof body.activity.type === 'string')) return 'activity must be an Activity with a type';
  return undefined;
}

function validateActivity(body: unknown): string | undefined {
  if (!isRecord(body)) return 'body must be an Activity object';
  if (typeof body.type !== 'string' || body.type === '') return 'activity.type is required';
  if (body.attachments !== undefined && !(Array.isArray(body.attachments) && body.attachments.every((a) => isRecord(a) && typeof a.contentType === 'string'))) {
    return 'attachments must be an array of Attachment objects with a contentType';
  }
  return undefined;
}

export async function startConnectorServer(options: ConnectorServerOptions = {}): Promise<ConnectorServer> {
  const now = options.now ?? Date.now;
  const log = options.log;
  const settings: ConnectorSettings = {
    auth: options.auth ?? false,
    rateLimit: options.rateLimit ?? {},
    unknownConversations: options.unknownConversations ?? 'accept',
    strictActivities: options.strictActivities ?? true,
    maxMessageBytes: options.maxMessageBytes === undefined ? 100 * 1024 : options.maxMessageBytes,
  };
  const requests: ConnectorRequestRecord[] = [];
  const delivered: DeliveredActivity[] = [];
  const stats: ConnectorStats = { requests: 0, delivered: 0, throttled: 0, faults: 0, unauthorized: 0, dropped: 0 };
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const faultRules: { rule: FaultRule; remaining: number }[] = (options.faults ?? []).map((rule) => ({ rule, remaining: rule.times ?? 1 }));
  let faultHandler: ((ctx: FaultContext) => Fault | undefined) | undefined;
  let randomPlan = options.randomFaults ? new RandomFaultPlan(options.randomFaults) : undefined;
  const conversations = new Map<string, ConversationRegistration>();
  const users = new Map<string, UserRegistration>();
  /** Activity ids issued per conversation (for update/delete/reply checks). */
  const activities = new Map<string, Set<string>>();
  const aborts = new Set<AbortController>();
  let limiters = buildLimiters();
  let seq = 0;
  let activitySeq = 0;
  const activityBase = now();
  let origin = '';

  function buildLimiters(): { thread: SlidingWindowLimiter; threadAllBots: SlidingWindowLimiter; tenant: SlidingWindowLimiter } | undefined {
    const rl = settings.rateLimit;
    if (rl === false) return undefined;
    return {
      thread: new SlidingWindowLimiter(rl.perBotPerThread ?? TEAMS_PER_BOT_PER_THREAD, now),
      threadAllBots: new SlidingWindowLimiter(rl.perThreadAllBots ?? TEAMS_PER_THREAD_ALL_BOTS, now),
      tenant: new SlidingWindowLimiter([{ windowMs: 1_000, max: rl.perTenantPerSecond ?? TEAMS_PER_APP_PER_TENANT_RPS }], now),
    };
  }

  const newActivityId = (): string => {
    activitySeq += 1;
    // Teams activity ids in personal chats are millisecond timestamps; keep the look, stay unique.
    return String(activityBase + activitySeq);
  };

  const findConversation = (id: string): ConversationRegistration | undefined => conversations.get(id) ?? conversations.get(baseConversationId(id));

  const personalConversationId = (appId: string, tenantId: string, userId: string): string => {
    for (const reg of conversations.values()) {
      if (reg.type === 'personal' && reg.tenantId === tenantId && (reg.appId === undefined || reg.appId === appId) && reg.members?.includes(userId)) return reg.id;
    }
    return `a:1${hashId('personal', appId, tenantId, userId).slice(0, 40)}`;
  };

  /** Resolves a member id (29:..., or an Entra object id with the tenant) to a registered or derived user. */
  const resolveUser = (memberId: string, tenantId: string): UserRegistration | undefined => {
    const direct = users.get(memberId);
    if (direct) return direct;
    if (GUID.test(memberId)) {
      for (const user of users.values()) if (user.aadObjectId?.toLowerCase() === memberId.toLowerCase() && user.tenantId === tenantId) return user;
      // Unknown object id: derive a stable 29: id so the same user always gets the same chat.
      return { id: `29:1${hashId('user', tenantId, memberId.toLowerCase()).slice(0, 40)}`, tenantId, aadObjectId: memberId };
    }
    if (memberId.startsWith('29:')) return { id: memberId, tenantId };
    return undefined;
  };

  const track = (conversationId: string, activityId: string): void => {
    let set = activities.get(conversationId);
    if (!set) {
      set = new Set();
      activities.set(conversationId, set);
    }
    set.add(activityId);
  };

  const knowsActivity = (conversationId: string, activityId: string): boolean =>
    activities.get(conversationId)?.has(activityId) === true || activities.get(baseConversationId(conversationId))?.has(activityId) === true;

  const deliver = (record: ConnectorRequestRecord, delivery: Omit<DeliveredActivity, 'seq' | 'time' | 'serviceUrl' | 'appId' | 'tenantId'>): void => {
    const entry: DeliveredActivity = {
      ...delivery,
      seq: record.seq,
      time: now(),
      serviceUrl: record.serviceUrl,
      ...(record.appId !== undefined ? { appId: record.appId } : {}),
      ...(record.tenantId !== undefined ? { tenantId: record.tenantId } : {}),
    };
    delivered.push(entry);
    record.delivered = true;
    stats.delivered += 1;
    const { activity } = delivery;
    switch (delivery.operation) {
      case 'deleteActivity':
        log?.(`[emulator] delete ${delivery.conversationId} #${delivery.activityId}`);
        break;
      case 'updateActivity':
        log?.(`[emulator] update ${delivery.conversationId} #${delivery.activityId} : ${activity ? summarise(activity) : ''}`);
        break;
      case 'replyToActivity':
        log?.(`[emulator] reply to #${record.activityId ?? '?'} in ${delivery.conversationId} : ${activity ? summarise(activity) : ''}`);
        break;
      default:
        log?.(`[emulator] ${activity?.type ?? 'message'} to ${delivery.conversationId} : ${activity ? summarise(activity) : ''}`);
    }
    events.emit('delivered', entry);
  };

  const finish = (record: ConnectorRequestRecord, outcome: RequestOutcome): void => {
    record.outcome = outcome;
    record.finishedAt = now();
    if (outcome === 'dropped' || outcome === 'droppedAfterAccept') stats.dropped += 1;
    events.emit('finished', record);
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const { pathname } = splitUrl(req.url);
    const route = parseRoute(method, pathname);
    seq += 1;
    stats.requests += 1;
    const authorization = header(req, 'authorization');
    const record: ConnectorRequestRecord = {
      seq,
      time: now(),
      method,
      url: req.url ?? '/',
      path: pathname,
      servicePrefix: route.servicePrefix,
      serviceUrl: `${origin}${route.servicePrefix}`,
      operation: route.ok ? route.operation : 'unknown',
      ...(route.ok && route.conversationId !== undefined ? { conversationId: route.conversationId } : {}),
      ...(route.ok && route.activityId !== undefined ? { activityId: route.activityId } : {}),
      ...(route.ok && route.memberId !== undefined ? { memberId: route.memberId } : {}),
      headers: req.headers,
      ...(authorization !== undefined ? { authorization } : {}),
      body: undefined,
      status: null,
      outcome: 'pending',
      delivered: false,
    };
    requests.push(record);

    let dropAfterAccept = false;
    const respond = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      const allHeaders = { 'x-correlating-operationid': randomUUID(), ...headers };
      record.status = status;
      record.response = body;
      record.responseHeaders = allHeaders;
      if (dropAfterAccept) {
        // The ambiguous window (§4): the message was accepted but the client never hears back.
        record.status = null;
        record.fault = 'drop after accept';
        req.socket.destroy();
        finish(record, 'droppedAfterAccept');
        return;
      }
      sendJson(res, status, body, allHeaders);
      finish(record, 'responded');
    };
    const respondError = (name: TeamsErrorName, headers: Record<string, string> = {}): void => {
      const canned = TEAMS_ERRORS[name];
      respond(canned.status, canned.body, headers);
    };
    const badArgument = (message: string): void => respond(400, { error: { code: 'BadArgument', message } });

    // Body.
    let text: string;
    try {
      text = (await readBody(req)).toString('utf8');
    } catch (err) {
      if (err instanceof BodyTooLargeError) return respondError('MessageSizeTooBig');
      throw err;
    }
    if (text !== '') {
      try {
        record.body = JSON.parse(text) as unknown;
      } catch {
        record.body = text;
        if (route.ok) return badArgument('Request body is not valid JSON');
      }
    }
    if (!route.ok) return respond(route.status, { error: { code: route.status === 400 ? 'BadArgument' : 'NotFound', message: route.message } });

    // Bearer token (§2.1: "Authorization: Bearer ACCESS_TOKEN").
    if (settings.auth !== false) {
      const auth = settings.auth;
      const match = /^Bearer (\S+)$/.exec(authorization ?? '');
      if (!match?.[1]) {
        record.authError = authorization === undefined ? 'missing Authorization header' : 'not a Bearer token';
        stats.unauthorized += 1;
        return respond(401, DENIED);
      }
      try {
        const jwks = typeof auth.jwks === 'function' ? auth.jwks() : auth.jwks;
        const { payload } = await jwtVerify(match[1], createLocalJWKSet(jwks), {
          audience: [...(auth.audiences ?? ['https://api.botframework.com'])],
          algorithms: ['RS256'],
          clockTolerance: 300,
        });
        const appId = typeof payload.appid === 'string' ? payload.appid : typeof payload.azp === 'string' ? payload.azp : undefined;
        if (auth.appIds && (appId === undefined || !auth.appIds.includes(appId))) throw new Error(`appid ${appId ?? '(none)'} is not a registered bot`);
        record.tokenClaims = payload;
        if (appId !== undefined) record.appId = appId;
      } catch (err) {
        record.authError = err instanceof Error ? err.message : String(err);
        stats.unauthorized += 1;
        return respond(401, DENIED);
      }
    }
    const appId = record.appId;
    const body = record.body;
    const activityBody = isRecord(body) ? (body as Activity) : undefined;

    // Tenant: the conversation's registration, then the body, then the x-ms-tenant-id header.
    const registration = route.conversationId !== undefined ? findConversation(route.conversationId) : undefined;
    const params = route.operation === 'createConversation' && isRecord(body) ? (body as ConversationParameters) : undefined;
    const tenantId =
      registration?.tenantId ??
      params?.tenantId ??
      params?.channelData?.tenant?.id ??
      activityBody?.conversation?.tenantId ??
      activityBody?.channelData?.tenant?.id ??
      header(req, 'x-ms-tenant-id');
    if (tenantId !== undefined) record.tenantId = tenantId;

    // Injected faults: queued rules first, then the handler, then the seeded random plan.
    const ctx: FaultContext = {
      seq: record.seq,
      method,
      operation: route.operation,
      servicePrefix: route.servicePrefix,
      ...(route.conversationId !== undefined ? { conversationId: route.conversationId } : {}),
      ...(route.activityId !== undefined ? { activityId: route.activityId } : {}),
      body,
      ...(appId !== undefined ? { appId } : {}),
    };
    let fault: Fault | undefined;
    const ruleIndex = faultRules.findIndex(({ rule }) => matches(rule.match, ctx));
    const ruleEntry = faultRules[ruleIndex];
    if (ruleEntry) {
      fault = ruleEntry.rule.fault;
      ruleEntry.remaining -= 1;
      if (ruleEntry.remaining <= 0) faultRules.splice(ruleIndex, 1);
    }
    fault ??= faultHandler?.(ctx);
    fault ??= randomPlan?.pick();
    while (fault) {
      stats.faults += 1;
      record.fault = describeFault(fault);
      log?.(`[emulator] fault ${record.fault} on ${method} ${pathname}`);
      if (fault.kind === 'delay') {
        const abort = new AbortController();
        aborts.add(abort);
        try {
          await sleep(fault.ms, undefined, { signal: abort.signal });
        } catch {
          // Server closing: give up quietly.
          req.socket.destroy();
          finish(record, 'dropped');
          return;
        } finally {
          aborts.delete(abort);
        }
        fault = fault.then;
        continue;
      }
      if (fault.kind === 'drop') {
        req.socket.destroy();
        finish(record, 'dropped');
        return;
      }
      if (fault.kind === 'dropAfterAccept') {
        dropAfterAccept = true;
        break;
      }
      if (fault.kind === 'throttle') {
        stats.throttled += 1;
        const seconds = Math.max(0, Math.ceil(fault.retryAfterSeconds ?? 1));
        const headers: Record<string, string> = {};
        if (fault.format === 'http-date') headers['retry-after'] = new Date(now() + seconds * 1000).toUTCString();
        else if (fault.format !== 'none') headers['retry-after'] = String(seconds);
        return respondError('Throttled', headers);
      }
      if (fault.kind === 'error') return respondError(fault.name);
      return respond(fault.status, fault.body ?? { error: { code: `Http${fault.status}`, message: 'Injected fault' } }, { ...fault.headers });
    }

    // Validation, then the target conversation.
    let conversationId = route.conversationId;
    let createdUser: UserRegistration | undefined;
    if (route.operation === 'getMember') return handleGetMember(route.memberId ?? '', tenantId, respond);

    if (route.operation === 'createConversation') {
      const problem = validateConversationParameters(body);
      if (problem) return badArgument(problem);
      const p = body as ConversationParameters;
      if (p.activity) {
        const activityProblem = validateActivity(p.activity);
        if (activityProblem) return badArgument(activityProblem);
      }
      if (p.isGroup === true) {
        const channelId = p.channelData?.channel?.id ?? p.channelData?.teamsChannelId;
        if (!channelId) return badArgument('channelData.channel.id is required to create a channel conversation');
        if (!p.activity) return badArgument('activity is required to start a channel thread');
        conversationId = channelId;
      } else {
        if (tenantId === undefined) return badArgument('tenantId (or channelData.tenant.id) is required to create a personal conversation');
        if (p.members?.length !== 1) return badArgument('exactly one member is required to create a personal conversation');
        const memberId = p.members[0]?.id ?? '';
        createdUser = resolveUser(memberId, tenantId);
        // §6: "Teams doesn't support sending proactive messages using email or User Principal Name (UPN)."
        if (!createdUser) return badArgument(`member id "${memberId}" must be a Teams user id (29:...) or an Entra object id`);
        if (createdUser.installed === false) return respondError(GUID.test(memberId) ? 'ForbiddenOperationException' : 'BotNotInConversationRoster');
        conversationId = personalConversationId(appId ?? '', tenantId, createdUser.id);
      }
    } else {
      const problem = validateActivity(body);
      if (route.operation !== 'deleteActivity' && problem) return badArgument(problem);
      if (
        settings.maxMessageBytes !== null &&
        route.operation !== 'deleteActivity' &&
        // UTF-16: two bytes per code unit (§5).
        JSON.stringify(body).length * 2 > settings.maxMessageBytes
      ) {
        return respondError('MessageSizeTooBig');
      }
      if (!registration && settings.unknownConversations === 'reject') return respondError('ConversationNotFound');
    }
    const target = conversationId ?? '';

    // Rate limits (§4): per bot per thread, per thread for all bots, per app per tenant.
    if (limiters && WRITE_OPERATIONS.has(route.operation)) {
      const botKey = `${appId ?? 'anonymous'}|${target}`;
      const tenantKey = `${appId ?? 'anonymous'}|${tenantId ?? 'unknown'}`;
      const checks = [
        ['thread', limiters.thread, botKey],
        ['threadAllBots', limiters.threadAllBots, target],
        ['tenant', limiters.tenant, tenantKey],
      ] as const;
      for (const [scope, limiter, key] of checks) {
        const decision = limiter.check(key);
        if (!decision.allowed) {
          stats.throttled += 1;
          record.throttled = scope;
          const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
          log?.(`[emulator] 429 ${scope} limit (${decision.window.max}/${decision.window.windowMs / 1000}s) on ${target}; Retry-After ${seconds}`);
          return respondError('Throttled', { 'retry-after': String(seconds) });
        }
      }
      for (const [, limiter, key] of checks) limiter.record(key);
    }

    // Conversation state: bound to one bot (§7 "Failed to decrypt conversation id"), blocked, unknown activity.
    const existing = findConversation(target);
    if (existing?.appId !== undefined && appId !== undefined && existing.appId !== appId) return respondError('FailedToDecryptConversationId');
    if (existing?.error !== undefined) return respondError(existing.error);
    if (
      (route.operation === 'updateActivity' || route.operation === 'deleteActivity' || route.operation === 'replyToActivity') &&
      settings.strictActivities &&
      !knowsActivity(target, route.activityId ?? '')
    ) {
      return respondError('ActivityNotFoundInConversation');
    }
    if (!existing) {
      conversations.set(target, {
        id: target,
        ...(tenantId !== undefined ? { tenantId } : {}),
        ...(appId !== undefined ? { appId } : {}),
        ...(route.operation === 'createConversation' ? { type: createdUser ? 'personal' : 'channel' } : {}),
        ...(createdUser ? { members: [createdUser.id] } : {}),
      });
      if (createdUser && !users.has(createdUser.id)) users.set(createdUser.id, createdUser);
    }

    switch (route.operation) {
      case 'createConversation': {
        const p = body as ConversationParameters;
        record.createdConversationId = target;
        if (!p.activity) {
          log?.(`[emulator] created personal chat ${target} with ${createdUser?.id ?? '?'}`);
          return respond(201, { id: target });
        }
        const activityId = newActivityId();
        const id = p.isGroup === true ? `${target};messageid=${activityId}` : target;
        if (id !== target && !conversations.has(id)) conversations.set(id, { ...conversations.get(target), id, type: 'channel' });
        record.createdConversationId = id;
        record.assignedActivityId = activityId;
        track(id, activityId);
        track(target, activityId);
        deliver(record, { operation: 'createConversation', conversationId: id, activityId, activity: p.activity });
        return respond(201, { id, activityId });
      }
      case 'sendToConversation':
      case 'replyToActivity': {
        const activityId = newActivityId();
        record.assignedActivityId = activityId;
        track(target, activityId);
        deliver(record, { operation: route.operation, conversationId: target, activityId, activity: body as Activity });
        return respond(201, { id: activityId });
      }
      case 'updateActivity': {
        const activityId = route.activityId ?? '';
        deliver(record, { operation: 'updateActivity', conversationId: target, activityId, activity: body as Activity });
        return respond(200, { id: activityId });
      }
      case 'deleteActivity': {
        const activityId = route.activityId ?? '';
        activities.get(target)?.delete(activityId);
        deliver(record, { operation: 'deleteActivity', conversationId: target, activityId });
        return respond(200, undefined);
      }
      default:
        return respond(404, { error: { code: 'NotFound', message: 'Unsupported operation' } });
    }
  };

  function handleGetMember(memberId: string, tenantId: string | undefined, respond: (status: number, body: unknown) => void): void {
    let user = users.get(memberId);
    if (!user && GUID.test(memberId)) {
      for (const u of users.values()) if (u.aadObjectId?.toLowerCase() === memberId.toLowerCase() && (tenantId === undefined || u.tenantId === tenantId)) user = u;
    }
    if (!user) {
      const canned = TEAMS_ERRORS.MemberNotFoundInConversation;
      respond(canned.status, canned.body);
      return;
    }
    // §6 "Get member response": the wire field is objectId.
    respond(200, {
      id: user.id,
      name: user.name ?? user.id,
      ...(user.aadObjectId !== undefined ? { objectId: user.aadObjectId, aadObjectId: user.aadObjectId } : {}),
      tenantId: user.tenantId,
      userRole: 'user',
    });
  }

  const server: LocalServer = await startHttpsServer(handler, {
    name: 'connector',
    ...(options.tls ? { tls: options.tls } : {}),
    ...(log ? { log } : {}),
  });
  origin = server.origin;

  const waitOn = <T>(eventName: string, list: readonly T[], predicate: (item: T, all: readonly T[]) => boolean, timeoutMs: number, done: (item: T) => boolean): Promise<T> => {
    const found = list.find((item) => done(item) && predicate(item, list));
    if (found) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const onEvent = (item: T): void => {
        if (!predicate(item, list)) return;
        cleanup();
        resolve(item);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`connector stub: nothing matched within ${timeoutMs} ms (${requests.length} requests, ${delivered.length} deliveries recorded)`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        events.off(eventName, onEvent);
      };
      events.on(eventName, onEvent);
    });
  };

  return {
    origin,
    port: server.port,
    serviceUrl: (prefix = 'teams') => {
      const trimmed = prefix.replace(/^\/+|\/+$/g, '');
      return trimmed === '' ? `${origin}/` : `${origin}/${trimmed}/`;
    },
    requests,
    delivered,
    stats,
    settings,
    configure(patch) {
      Object.assign(settings, patch);
      if (patch.rateLimit !== undefined) limiters = buildLimiters();
    },
    waitFor: (predicate, timeoutMs = 5_000) => waitOn('finished', requests, predicate, timeoutMs, (r) => r.outcome !== 'pending'),
    waitForDelivery: (predicate, timeoutMs = 5_000) => waitOn('delivered', delivered, predicate, timeoutMs, () => true),
    injectFault(fault, opts = {}) {
      faultRules.push({ rule: { fault, ...opts }, remaining: opts.times ?? 1 });
    },
    setFaultHandler(fn) {
      faultHandler = fn;
    },
    setRandomFaults(opts) {
      randomPlan = opts ? new RandomFaultPlan(opts) : undefined;
    },
    clearFaults() {
      faultRules.length = 0;
      faultHandler = undefined;
      randomPlan = undefined;
    },
    registerConversation(reg) {
      conversations.set(reg.id, { ...reg, ...(reg.members ? { members: [...reg.members] } : {}) });
    },
    conversation: (id) => findConversation(id),
    blockConversation(id, error) {
      const reg = findConversation(id) ?? { id };
      if (error === undefined) delete reg.error;
      else reg.error = error;
      conversations.set(reg.id, reg);
    },
    registerUser(user) {
      users.set(user.id, user);
    },
    personalConversationId,
    reset() {
      requests.length = 0;
      delivered.length = 0;
      for (const key of Object.keys(stats) as (keyof ConnectorStats)[]) stats[key] = 0;
      limiters = buildLimiters();
    },
    async close() {
      for (const abort of aborts) abort.abort();
      await server.close();
    },
  };
}
