/**
 * Shape checks of request bodies against the swagger's ConversationParameters and Activity; a
 * problem becomes a 400 BadArgument naming it.
 */
import { isRecord } from '../types';

/** Shape check of ConversationParameters (swagger). Returns a problem or undefined. */
export function validateConversationParameters(body: unknown): string | undefined {
  if (!isRecord(body)) return 'body must be a ConversationParameters object';
  if (body.isGroup !== undefined && typeof body.isGroup !== 'boolean') return 'isGroup must be a boolean';
  if (body.bot !== undefined && !(isRecord(body.bot) && typeof body.bot.id === 'string'))
    return 'bot must be a ChannelAccount with an id';
  if (body.members !== undefined) {
    if (!Array.isArray(body.members)) return 'members must be an array';
    if (!body.members.every((m) => isRecord(m) && typeof m.id === 'string' && m.id !== ''))
      return 'every member must be a ChannelAccount with an id';
  }
  if (body.topicName !== undefined && typeof body.topicName !== 'string') return 'topicName must be a string';
  if (body.tenantId !== undefined && typeof body.tenantId !== 'string') return 'tenantId must be a string';
  if (body.channelData !== undefined && !isRecord(body.channelData)) return 'channelData must be an object';
  if (body.activity !== undefined && !(isRecord(body.activity) && typeof body.activity.type === 'string'))
    return 'activity must be an Activity with a type';
  return undefined;
}

/** Shape check of an Activity (swagger). Returns a problem or undefined. */
export function validateActivity(body: unknown): string | undefined {
  if (!isRecord(body)) return 'body must be an Activity object';
  if (typeof body.type !== 'string' || body.type === '') return 'activity.type is required';
  if (
    body.attachments !== undefined &&
    !(
      Array.isArray(body.attachments) && body.attachments.every((a) => isRecord(a) && typeof a.contentType === 'string')
    )
  ) {
    return 'attachments must be an array of Attachment objects with a contentType';
  }
  return undefined;
}
