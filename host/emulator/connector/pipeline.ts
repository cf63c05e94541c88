/**
 * A request through the Connector stub, one stage at a time:
 *
 *   route -> body -> bearer token (401) -> injected faults -> validation -> rate limits (429)
 *   -> conversation state (403/404) -> deliver and answer (operations.ts)
 *
 * Teams' batch operations leave after the injected faults for their own stage (batchRequests.ts).
 *
 * Each `refuse*` / `inject*` stage returns true when it has answered the request (the pipeline
 * stops there), false to go on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeFault, type Fault } from '../faults';
import { BodyTooLargeError, header, readBody, splitUrl } from '../localServer';
import { type Activity, type ConversationParameters, isRecord } from '../types';
import { DENIED, checkBearerToken } from './auth';
import type { BatchBook } from './batch';
import { handleBatchRequest } from './batchRequests';
import type { ConversationBook, ConversationRegistration, UserRegistration } from './conversationBook';
import { GUID } from './conversationBook';
import { Exchange } from './exchange';
import type { FaultInjector } from './faultInjector';
import { answerGetMember, performWrite } from './operations';
import type { ConnectorRateLimits } from './rateLimits';
import type { RequestRecorder } from './recorder';
import { BATCH_OPERATIONS, type ConnectorRoute, WRITE_OPERATIONS, parseRoute } from './route';
import type { ConnectorSettings } from './settings';
import { validateActivity, validateConversationParameters } from './validation';

/** What the stages share: the stub's settings and its state. */
export interface ConnectorState {
  readonly settings: ConnectorSettings;
  readonly now: () => number;
  readonly log: ((line: string) => void) | undefined;
  /** `https://127.0.0.1:<port>`, known once the server listens. */
  readonly origin: () => string;
  readonly recorder: RequestRecorder;
  readonly book: ConversationBook;
  readonly faults: FaultInjector;
  /** undefined when rate limiting is off. */
  readonly limits: () => ConnectorRateLimits | undefined;
  /** Pending injected delays, aborted when the server closes. */
  readonly aborts: Set<AbortController>;
  /** Teams' batch operations (batch.ts). */
  readonly batch: BatchBook;
}

/** A request that has a route, a body and (when auth is on) a verified bot. */
export interface ConnectorCall {
  readonly method: string;
  readonly pathname: string;
  readonly route: Extract<ConnectorRoute, { ok: true }>;
  readonly appId?: string;
  readonly tenantId?: string;
  readonly body: unknown;
  /** The registration of the conversation in the path, if any. */
  readonly registration?: ConversationRegistration;
}

/** The conversation a write goes to, and the user a personal chat is being created with. */
export interface WriteTarget {
  readonly conversationId: string;
  readonly createdUser?: UserRegistration;
}

export async function handleConnectorRequest(
  state: ConnectorState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const { pathname } = splitUrl(req.url);
  const route = parseRoute(method, pathname);
  const authorization = header(req, 'authorization');
  const record = state.recorder.open({
    method,
    url: req.url ?? '/',
    path: pathname,
    servicePrefix: route.servicePrefix,
    serviceUrl: `${state.origin()}${route.servicePrefix}`,
    operation: route.ok ? route.operation : 'unknown',
    ...(route.ok && route.conversationId !== undefined ? { conversationId: route.conversationId } : {}),
    ...(route.ok && route.activityId !== undefined ? { activityId: route.activityId } : {}),
    ...(route.ok && route.memberId !== undefined ? { memberId: route.memberId } : {}),
    ...(route.ok && route.operationId !== undefined ? { operationId: route.operationId } : {}),
    headers: req.headers,
    ...(authorization !== undefined ? { authorization } : {}),
  });
  const exchange = new Exchange(req, res, record, state.recorder);

  if (await refuseBadBody(req, exchange, route.ok)) return;
  if (!route.ok)
    return exchange.respond(route.status, {
      error: { code: route.status === 400 ? 'BadArgument' : 'NotFound', message: route.message },
    });
  if (await refuseUnauthorized(state, exchange, authorization)) return;
  const call = toCall(state, req, exchange, method, pathname, route);
  if (await injectFault(state, req, exchange, call)) return;
  if (BATCH_OPERATIONS.has(call.route.operation)) return handleBatchRequest(state, exchange, call);
  if (call.route.operation === 'getMember') return answerGetMember(state, exchange, call);
  const target = resolveTarget(state, exchange, call);
  if (target === undefined) return;
  if (refuseOverLimit(state, exchange, call, target)) return;
  if (refuseByConversationState(state, exchange, call, target)) return;
  performWrite(state, exchange, call, target);
}

/** The body, as JSON (kept as text when it is not JSON: a 400 on a known route). */
async function refuseBadBody(req: IncomingMessage, exchange: Exchange, knownRoute: boolean): Promise<boolean> {
  let text: string;
  try {
    text = (await readBody(req)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      exchange.respondError('MessageSizeTooBig');
      return true;
    }
    throw err;
  }
  if (text === '') return false;
  try {
    exchange.record.body = JSON.parse(text) as unknown;
  } catch {
    exchange.record.body = text;
    if (knownRoute) {
      exchange.badArgument('Request body is not valid JSON');
      return true;
    }
  }
  return false;
}

/** The bot's bearer token (auth.ts), unless auth is off. */
async function refuseUnauthorized(
  state: ConnectorState,
  exchange: Exchange,
  authorization: string | undefined,
): Promise<boolean> {
  if (state.settings.auth === false) return false;
  const check = await checkBearerToken(authorization, state.settings.auth);
  if (check.ok) {
    exchange.record.tokenClaims = check.claims;
    if (check.appId !== undefined) exchange.record.appId = check.appId;
    return false;
  }
  exchange.record.authError = check.reason;
  state.recorder.stats.unauthorized += 1;
  exchange.respond(401, DENIED);
  return true;
}

/** The request as the later stages see it; the tenant from the conversation's registration, then the body, then the x-ms-tenant-id header. */
function toCall(
  state: ConnectorState,
  req: IncomingMessage,
  exchange: Exchange,
  method: string,
  pathname: string,
  route: Extract<ConnectorRoute, { ok: true }>,
): ConnectorCall {
  const { appId, body } = exchange.record;
  const activityBody = isRecord(body) ? (body as Activity) : undefined;
  const registration = route.conversationId !== undefined ? state.book.find(route.conversationId) : undefined;
  const params =
    route.operation === 'createConversation' && isRecord(body) ? (body as ConversationParameters) : undefined;
  const tenantId =
    registration?.tenantId ??
    params?.tenantId ??
    params?.channelData?.tenant?.id ??
    activityBody?.conversation?.tenantId ??
    activityBody?.channelData?.tenant?.id ??
    header(req, 'x-ms-tenant-id');
  if (tenantId !== undefined) exchange.record.tenantId = tenantId;
  return {
    method,
    pathname,
    route,
    body,
    ...(appId !== undefined ? { appId } : {}),
    ...(tenantId !== undefined ? { tenantId } : {}),
    ...(registration !== undefined ? { registration } : {}),
  };
}

/** Injected faults (faultInjector.ts): wait, drop, answer with an error, or let it through to be dropped after acceptance. */
async function injectFault(
  state: ConnectorState,
  req: IncomingMessage,
  exchange: Exchange,
  call: ConnectorCall,
): Promise<boolean> {
  const { record } = exchange;
  let fault: Fault | undefined = state.faults.next({
    seq: record.seq,
    method: call.method,
    operation: call.route.operation,
    servicePrefix: call.route.servicePrefix,
    ...(call.route.conversationId !== undefined ? { conversationId: call.route.conversationId } : {}),
    ...(call.route.activityId !== undefined ? { activityId: call.route.activityId } : {}),
    body: call.body,
    ...(call.appId !== undefined ? { appId: call.appId } : {}),
  });
  while (fault) {
    state.recorder.stats.faults += 1;
    record.fault = describeFault(fault);
    state.log?.(`[emulator] fault ${record.fault} on ${call.method} ${call.pathname}`);
    switch (fault.kind) {
      case 'delay': {
        const abort = new AbortController();
        state.aborts.add(abort);
        try {
          await sleep(fault.ms, undefined, { signal: abort.signal });
        } catch {
          // Server closing: give up quietly.
          exchange.drop();
          return true;
        } finally {
          state.aborts.delete(abort);
        }
        fault = fault.then;
        continue;
      }
      case 'drop':
        exchange.drop();
        return true;
      case 'dropAfterAccept':
        exchange.dropAfterAccept();
        return false;
      case 'throttle': {
        state.recorder.stats.throttled += 1;
        const seconds = Math.max(0, Math.ceil(fault.retryAfterSeconds ?? 1));
        const headers: Record<string, string> = {};
        if (fault.format === 'http-date') headers['retry-after'] = new Date(state.now() + seconds * 1000).toUTCString();
        else if (fault.format !== 'none') headers['retry-after'] = String(seconds);
        exchange.respondError('Throttled', headers);
        return true;
      }
      case 'error':
        exchange.respondError(fault.name);
        return true;
      case 'status':
        exchange.respond(
          fault.status,
          fault.body ?? { error: { code: `Http${fault.status}`, message: 'Injected fault' } },
          { ...fault.headers },
        );
        return true;
    }
  }
  return false;
}

/** Validation (validation.ts), and the conversation the write goes to: for a create, the channel or the personal chat with the member. Undefined when answered. */
function resolveTarget(state: ConnectorState, exchange: Exchange, call: ConnectorCall): WriteTarget | undefined {
  const { body, route, tenantId } = call;
  if (route.operation !== 'createConversation') {
    const problem = validateActivity(body);
    if (route.operation !== 'deleteActivity' && problem) return void exchange.badArgument(problem);
    if (
      state.settings.maxMessageBytes !== null &&
      route.operation !== 'deleteActivity' &&
      // UTF-16: two bytes per code unit (§5).
      JSON.stringify(body).length * 2 > state.settings.maxMessageBytes
    ) {
      return void exchange.respondError('MessageSizeTooBig');
    }
    if (!call.registration && state.settings.unknownConversations === 'reject')
      return void exchange.respondError('ConversationNotFound');
    return { conversationId: route.conversationId ?? '' };
  }
  const problem = validateConversationParameters(body);
  if (problem) return void exchange.badArgument(problem);
  const p = body as ConversationParameters;
  if (p.activity) {
    const activityProblem = validateActivity(p.activity);
    if (activityProblem) return void exchange.badArgument(activityProblem);
  }
  if (p.isGroup === true) {
    const channelId = p.channelData?.channel?.id ?? p.channelData?.teamsChannelId;
    if (!channelId)
      return void exchange.badArgument('channelData.channel.id is required to create a channel conversation');
    if (!p.activity) return void exchange.badArgument('activity is required to start a channel thread');
    return { conversationId: channelId };
  }
  if (tenantId === undefined)
    return void exchange.badArgument(
      'tenantId (or channelData.tenant.id) is required to create a personal conversation',
    );
  if (p.members?.length !== 1)
    return void exchange.badArgument('exactly one member is required to create a personal conversation');
  const memberId = p.members[0]?.id ?? '';
  const createdUser = state.book.resolveUser(memberId, tenantId);
  // §6: "Teams doesn't support sending proactive messages using email or User Principal Name (UPN)."
  if (!createdUser)
    return void exchange.badArgument(`member id "${memberId}" must be a Teams user id (29:...) or an Entra object id`);
  if (createdUser.installed === false)
    return void exchange.respondError(
      GUID.test(memberId) ? 'ForbiddenOperationException' : 'BotNotInConversationRoster',
    );
  return { conversationId: state.book.personalConversationId(call.appId ?? '', tenantId, createdUser.id), createdUser };
}

/** Rate limits (§4, rateLimits.ts) on writes. */
function refuseOverLimit(state: ConnectorState, exchange: Exchange, call: ConnectorCall, target: WriteTarget): boolean {
  const limits = state.limits();
  if (!limits || !WRITE_OPERATIONS.has(call.route.operation)) return false;
  const throttled = limits.admit(call.appId, target.conversationId, call.tenantId);
  if (throttled === undefined) return false;
  state.recorder.stats.throttled += 1;
  exchange.record.throttled = throttled.scope;
  const { window } = throttled;
  state.log?.(
    `[emulator] 429 ${throttled.scope} limit (${window.max}/${window.windowMs / 1000}s) on ${target.conversationId}; Retry-After ${throttled.retryAfterSeconds}`,
  );
  exchange.respondError('Throttled', { 'retry-after': String(throttled.retryAfterSeconds) });
  return true;
}

/**
 * The conversation's state: bound to one bot (§7 "Failed to decrypt conversation id"), blocked, or
 * an activity it never issued. A conversation seen for the first time is registered.
 */
function refuseByConversationState(
  state: ConnectorState,
  exchange: Exchange,
  call: ConnectorCall,
  target: WriteTarget,
): boolean {
  const { book } = state;
  const { appId, route, tenantId } = call;
  const { conversationId, createdUser } = target;
  const existing = book.find(conversationId);
  if (existing?.appId !== undefined && appId !== undefined && existing.appId !== appId) {
    exchange.respondError('FailedToDecryptConversationId');
    return true;
  }
  if (existing?.error !== undefined) {
    exchange.respondError(existing.error);
    return true;
  }
  if (
    (route.operation === 'updateActivity' ||
      route.operation === 'deleteActivity' ||
      route.operation === 'replyToActivity') &&
    state.settings.strictActivities &&
    !book.knowsActivity(conversationId, route.activityId ?? '')
  ) {
    exchange.respondError('ActivityNotFoundInConversation');
    return true;
  }
  if (!existing) {
    book.register({
      id: conversationId,
      ...(tenantId !== undefined ? { tenantId } : {}),
      ...(appId !== undefined ? { appId } : {}),
      ...(route.operation === 'createConversation' ? { type: createdUser ? 'personal' : 'channel' } : {}),
      ...(createdUser ? { members: [createdUser.id] } : {}),
    });
    if (createdUser && !book.hasUser(createdUser.id)) book.registerUser(createdUser);
  }
  return false;
}
