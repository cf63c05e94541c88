/**
 * Which Bot Connector operation a request is (bot-connector.md §6), from its method and path.
 *
 * Everything before `/v3/` is the serviceUrl path (`/amer/`, `/emea/`, `/teams/`, `/amer/<tenantId>/`
 * ... §3), so one server stands in for every regional and tenant-suffixed serviceUrl. Path segments
 * are percent-decoded one by one, so `a%3A1x`, `19%3Ax%40thread.tacv2%3Bmessageid%3D1` and raw ids
 * all work, and an encoded `%2F` stays inside its segment.
 */

export type ConnectorOperation =
  | 'createConversation'
  | 'sendToConversation'
  | 'replyToActivity'
  | 'updateActivity'
  | 'deleteActivity'
  | 'getMember'
  | 'batchSend'
  | 'batchState'
  | 'batchFailedEntries'
  | 'batchCancel'
  | 'unknown';

/** The batch targets of `POST v3/batch/conversation/{kind}` (batch.ts). */
export type BatchRouteKind = 'users' | 'tenant' | 'team' | 'channels';
const BATCH_KINDS: readonly string[] = ['users', 'tenant', 'team', 'channels'];

/** Teams' batch operations (batch.ts): answered by the batch stage, not written to a conversation. */
export const BATCH_OPERATIONS: ReadonlySet<ConnectorOperation> = new Set([
  'batchSend',
  'batchState',
  'batchFailedEntries',
  'batchCancel',
]);

/** Operations that write to a conversation: rate limited and logged as deliveries. */
export const WRITE_OPERATIONS: ReadonlySet<ConnectorOperation> = new Set([
  'createConversation',
  'sendToConversation',
  'replyToActivity',
  'updateActivity',
  'deleteActivity',
]);

export type ConnectorRoute =
  | {
      ok: true;
      operation: ConnectorOperation;
      servicePrefix: string;
      conversationId?: string;
      activityId?: string;
      memberId?: string;
      batchKind?: BatchRouteKind;
      operationId?: string;
    }
  | { ok: false; status: number; message: string; servicePrefix: string };

export function parseRoute(method: string, pathname: string): ConnectorRoute {
  const at = pathname.indexOf('/v3/');
  if (at < 0) return { ok: false, status: 404, message: `No /v3/ in ${pathname}`, servicePrefix: pathname };
  const servicePrefix = pathname.slice(0, at + 1);
  let segments: string[];
  try {
    segments = pathname
      .slice(at + 4)
      .split('/')
      .map((s) => decodeURIComponent(s));
  } catch {
    return { ok: false, status: 400, message: 'Malformed percent-encoding in path', servicePrefix };
  }
  if (segments.at(-1) === '') segments.pop();
  const [root, conversationId, sub, subId, extra] = segments;
  if (root === 'batch') return parseBatchRoute(method, segments.slice(1), servicePrefix, pathname);
  if (root !== 'conversations')
    return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
  if (conversationId === undefined) {
    return method === 'POST'
      ? { ok: true, operation: 'createConversation', servicePrefix }
      : { ok: false, status: 405, message: `${method} /v3/conversations is not emulated`, servicePrefix };
  }
  if (conversationId === '') return { ok: false, status: 400, message: 'Empty conversation id', servicePrefix };
  if (sub === 'activities' && extra === undefined) {
    if (subId === undefined) {
      return method === 'POST'
        ? { ok: true, operation: 'sendToConversation', servicePrefix, conversationId }
        : { ok: false, status: 405, message: `${method} on activities is not emulated`, servicePrefix };
    }
    const operation: ConnectorOperation | undefined =
      method === 'POST'
        ? 'replyToActivity'
        : method === 'PUT'
          ? 'updateActivity'
          : method === 'DELETE'
            ? 'deleteActivity'
            : undefined;
    return operation
      ? { ok: true, operation, servicePrefix, conversationId, activityId: subId }
      : { ok: false, status: 405, message: `${method} on an activity is not emulated`, servicePrefix };
  }
  if (sub === 'members' && subId !== undefined && extra === undefined && method === 'GET') {
    return { ok: true, operation: 'getMember', servicePrefix, conversationId, memberId: subId };
  }
  return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
}

/**
 * `v3/batch/conversation/...` (botbuilder-js teams.ts; the .NET SDKs add a trailing slash, dropped
 * above): POST `{users|tenant|team|channels}`, GET `failedentries/{id}`, GET and DELETE `{id}`.
 */
function parseBatchRoute(method: string, rest: string[], servicePrefix: string, pathname: string): ConnectorRoute {
  const [conversation, first, second, extra] = rest;
  if (conversation !== 'conversation' || first === undefined || first === '' || extra !== undefined)
    return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
  const not = (what: string): ConnectorRoute => ({
    ok: false,
    status: 405,
    message: `${method} on ${what} is not emulated`,
    servicePrefix,
  });
  if (first === 'failedentries' && second !== undefined && second !== '') {
    return method === 'GET'
      ? { ok: true, operation: 'batchFailedEntries', servicePrefix, operationId: second }
      : not('failed entries');
  }
  if (second !== undefined) return { ok: false, status: 404, message: `Unsupported path ${pathname}`, servicePrefix };
  if (method === 'POST') {
    return BATCH_KINDS.includes(first)
      ? { ok: true, operation: 'batchSend', servicePrefix, batchKind: first as BatchRouteKind }
      : {
          ok: false,
          status: 404,
          message: `No batch target "${first}" (users, tenant, team, channels)`,
          servicePrefix,
        };
  }
  if (method === 'GET') return { ok: true, operation: 'batchState', servicePrefix, operationId: first };
  if (method === 'DELETE') return { ok: true, operation: 'batchCancel', servicePrefix, operationId: first };
  return not('a batch operation');
}
