/**
 * The batch stage of a Connector stub request (after the bearer token and injected faults, like
 * every route): `POST v3/batch/conversation/{users|tenant|team|channels}` validated and started,
 * `GET {operationId}` (which moves the operation on), `GET failedentries/{operationId}` paged with
 * `?continuationToken=`, `DELETE {operationId}`. Each entry reaches its conversation as a
 * delivery of the POST's record, so `delivered` and the log show a batch run like any other send.
 */
import { splitUrl } from '../localServer';
import { type Activity, isRecord } from '../types';
import type { BatchEntry, BatchOperation } from './batch';
import { GUID } from './conversationBook';
import type { Exchange } from './exchange';
import type { ConnectorCall, ConnectorState } from './pipeline';
import type { BatchRouteKind } from './route';
import { validateActivity } from './validation';

interface BatchBody {
  readonly tenantId: string;
  readonly activity: Activity;
  readonly members?: string[];
  readonly teamId?: string;
}

/** A field in camelCase or PascalCase (botbuilder-dotnet serializes `{Members, Activity, TenantId}`). */
const field = (body: Record<string, unknown>, name: string): unknown =>
  body[name] ?? body[name[0]!.toUpperCase() + name.slice(1)];

/** The body of a batch send, or the problem that makes it a 400 BadArgument. */
export function validateBatchBody(
  kind: BatchRouteKind,
  body: unknown,
  limits: { readonly minMembers: number; readonly maxMembers: number },
): BatchBody | string {
  if (!isRecord(body)) return 'body must be a batch request object';
  const activity = field(body, 'activity');
  const problem = validateActivity(activity);
  if (problem) return problem.replace(/^body/, 'activity');
  if ((activity as Activity).type !== 'message') return 'only message activities can be sent in a batch';
  const tenantId = field(body, 'tenantId');
  if (typeof tenantId !== 'string' || tenantId.trim() === '') return 'tenantId is required';
  const teamId = field(body, 'teamId');
  const members = field(body, 'members');
  if (kind === 'team') {
    if (typeof teamId !== 'string' || teamId.trim() === '') return 'teamId is required';
    return { tenantId, activity: activity as Activity, teamId };
  }
  if (kind === 'tenant') return { tenantId, activity: activity as Activity };
  if (!Array.isArray(members) || !members.every((m) => isRecord(m) && typeof m.id === 'string' && m.id !== ''))
    return 'members must be an array of {id}';
  if (members.length < limits.minMembers || members.length > limits.maxMembers)
    return `members must have between ${limits.minMembers} and ${limits.maxMembers} entries (got ${members.length})`;
  return { tenantId, activity: activity as Activity, members: members.map((m) => (m as { id: string }).id) };
}

/** The stage: answers every batch operation. */
export function handleBatchRequest(state: ConnectorState, exchange: Exchange, call: ConnectorCall): void {
  const { route } = call;
  if (route.operation === 'batchSend') return startBatch(state, exchange, call, route.batchKind ?? 'users');
  const op = state.batch.find(route.operationId ?? '', call.appId);
  if (op === undefined) return exchange.respond(404, { error: { code: 'NotFound', message: 'Operation not found.' } });
  exchange.record.operationId = op.id;
  exchange.record.tenantId = op.tenantId;
  if (refuseOverLimit(state, exchange, call, op.tenantId)) return;
  switch (route.operation) {
    case 'batchState':
      if (state.batch.advance(op, (o, entry) => deliverEntry(state, o, entry))) logEnd(state, op);
      return exchange.respond(200, state.batch.stateBody(op));
    case 'batchFailedEntries': {
      const token = splitUrl(exchange.record.url).query.get('continuationToken') ?? undefined;
      const page = state.batch.failedPage(op, token === '' ? undefined : token);
      return page === undefined
        ? exchange.badArgument('continuationToken is not one this operation issued')
        : exchange.respond(200, page);
    }
    default:
      state.batch.cancel(op);
      state.log?.(`[emulator] batch ${op.id} ${op.state.toLowerCase()}`);
      return exchange.respond(200, undefined);
  }
}

function startBatch(state: ConnectorState, exchange: Exchange, call: ConnectorCall, kind: BatchRouteKind): void {
  const body = validateBatchBody(kind, call.body, state.batch.settings);
  if (typeof body === 'string') return exchange.badArgument(body);
  exchange.record.tenantId = body.tenantId;
  const max = state.settings.maxMessageBytes;
  if (max !== null && JSON.stringify(body.activity).length * 2 > max) return exchange.respondError('MessageSizeTooBig');
  if (refuseOverLimit(state, exchange, call, body.tenantId)) return;
  let ids: string[];
  if (kind === 'tenant') {
    ids = state.book
      .usersInTenant(body.tenantId)
      .filter((u) => u.installed !== false)
      .map((u) => u.id);
  } else if (kind === 'team') {
    const team = state.book.find(body.teamId ?? '');
    if (team === undefined) return exchange.respondError('ConversationNotFound');
    ids = [...(team.members ?? [])];
  } else ids = body.members ?? [];
  const op = state.batch.start(
    {
      kind,
      tenantId: body.tenantId,
      activity: body.activity,
      record: exchange.record,
      ...(call.appId !== undefined ? { appId: call.appId } : {}),
    },
    ids,
  );
  exchange.record.operationId = op.id;
  state.log?.(`[emulator] batch ${op.id} to ${kind}: ${ids.length} ${kind === 'channels' ? 'channels' : 'users'}`);
  exchange.respond(201, state.batch.sendBody(op));
}

/** The stub's per-tenant limit on batch requests (429 with Retry-After), unless rate limiting is off. */
function refuseOverLimit(state: ConnectorState, exchange: Exchange, call: ConnectorCall, tenantId: string): boolean {
  if (state.settings.rateLimit === false) return false;
  const seconds = state.batch.admit(call.appId, tenantId);
  if (seconds === undefined) return false;
  state.recorder.stats.throttled += 1;
  exchange.record.throttled = 'tenant';
  state.log?.(`[emulator] 429 batch limit on ${call.route.operation} in ${tenantId}; Retry-After ${seconds}`);
  exchange.respondError('Throttled', { 'retry-after': String(seconds) });
  return true;
}

/** One entry reaches its conversation: a user's personal chat (created if new) or a channel. */
function deliverEntry(state: ConnectorState, op: BatchOperation, entry: BatchEntry): string | undefined {
  const { book } = state;
  let conversationId: string;
  if (op.kind === 'channels') {
    conversationId = entry.id;
    if (!book.find(conversationId) && state.settings.unknownConversations === 'reject') return 'ConversationNotFound';
  } else {
    const user = book.resolveUser(entry.id, op.tenantId);
    if (user === undefined) return 'BadArgument';
    if (user.installed === false)
      return GUID.test(entry.id) ? 'ForbiddenOperationException' : 'BotNotInConversationRoster';
    conversationId = book.personalConversationId(op.appId ?? '', op.tenantId, user.id);
    if (!book.find(conversationId)) {
      book.register({
        id: conversationId,
        tenantId: op.tenantId,
        type: 'personal',
        members: [user.id],
        ...(op.appId !== undefined ? { appId: op.appId } : {}),
      });
      if (!book.hasUser(user.id)) book.registerUser(user);
    }
  }
  const existing = book.find(conversationId);
  if (existing?.appId !== undefined && op.appId !== undefined && existing.appId !== op.appId)
    return 'FailedToDecryptConversationId';
  if (existing?.error !== undefined) return existing.error;
  if (!existing)
    book.register({
      id: conversationId,
      tenantId: op.tenantId,
      type: 'channel',
      ...(op.appId !== undefined ? { appId: op.appId } : {}),
    });
  const activityId = book.newActivityId();
  book.track(conversationId, activityId);
  entry.conversationId = conversationId;
  state.recorder.deliver(op.record, { operation: 'batchSend', conversationId, activityId, activity: op.activity });
  return undefined;
}

function logEnd(state: ConnectorState, op: BatchOperation): void {
  const sent = op.entries.filter((e) => e.status === 'sent').length;
  state.log?.(`[emulator] batch ${op.id} ${op.state.toLowerCase()}: ${sent} of ${op.entries.length} sent`);
}
