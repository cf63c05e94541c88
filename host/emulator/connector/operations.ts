/**
 * The last stage of a request that passed every check: the write reaches the conversation (it is
 * recorded as delivered) and is answered as the Bot Connector answers it (§6), or a member is
 * looked up.
 */
import { TEAMS_ERRORS } from '../faults';
import type { Activity, ConversationParameters } from '../types';
import type { Exchange } from './exchange';
import type { ConnectorCall, ConnectorState, WriteTarget } from './pipeline';

export function performWrite(
  state: ConnectorState,
  exchange: Exchange,
  call: ConnectorCall,
  target: WriteTarget,
): void {
  const { book, recorder } = state;
  const { record } = exchange;
  const { body, route } = call;
  const { conversationId, createdUser } = target;
  switch (route.operation) {
    case 'createConversation': {
      const p = body as ConversationParameters;
      record.createdConversationId = conversationId;
      if (!p.activity) {
        state.log?.(`[emulator] created personal chat ${conversationId} with ${createdUser?.id ?? '?'}`);
        return exchange.respond(201, { id: conversationId });
      }
      const activityId = book.newActivityId();
      // A new channel post is a thread: `<channel id>;messageid=<activity id>`.
      const id = p.isGroup === true ? `${conversationId};messageid=${activityId}` : conversationId;
      if (id !== conversationId && !book.has(id)) book.register({ ...book.get(conversationId), id, type: 'channel' });
      record.createdConversationId = id;
      record.assignedActivityId = activityId;
      book.track(id, activityId);
      book.track(conversationId, activityId);
      recorder.deliver(record, {
        operation: 'createConversation',
        conversationId: id,
        activityId,
        activity: p.activity,
      });
      return exchange.respond(201, { id, activityId });
    }
    case 'sendToConversation':
    case 'replyToActivity': {
      const activityId = book.newActivityId();
      record.assignedActivityId = activityId;
      book.track(conversationId, activityId);
      recorder.deliver(record, { operation: route.operation, conversationId, activityId, activity: body as Activity });
      return exchange.respond(201, { id: activityId });
    }
    case 'updateActivity': {
      const activityId = route.activityId ?? '';
      recorder.deliver(record, { operation: 'updateActivity', conversationId, activityId, activity: body as Activity });
      return exchange.respond(200, { id: activityId });
    }
    case 'deleteActivity': {
      const activityId = route.activityId ?? '';
      book.forget(conversationId, activityId);
      recorder.deliver(record, { operation: 'deleteActivity', conversationId, activityId });
      return exchange.respond(200, undefined);
    }
    default:
      return exchange.respond(404, { error: { code: 'NotFound', message: 'Unsupported operation' } });
  }
}

/** GET .../members/{id}: a registered user by `29:` id or Entra object id. */
export function answerGetMember(state: ConnectorState, exchange: Exchange, call: ConnectorCall): void {
  const user = state.book.member(call.route.memberId ?? '', call.tenantId);
  if (!user) {
    const canned = TEAMS_ERRORS.MemberNotFoundInConversation;
    return exchange.respond(canned.status, canned.body);
  }
  // §6 "Get member response": the wire field is objectId.
  exchange.respond(200, {
    id: user.id,
    name: user.name ?? user.id,
    ...(user.aadObjectId !== undefined ? { objectId: user.aadObjectId, aadObjectId: user.aadObjectId } : {}),
    tenantId: user.tenantId,
    userRole: 'user',
  });
}
