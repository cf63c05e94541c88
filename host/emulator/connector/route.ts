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
  | 'unknown';

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
