/** Parses an inbound activity's request body into the few fields teams-courier uses. */
import { BadRequestError } from '../../errors';
import { isObject } from '../json';
import {
  assertKeyable,
  idString,
  localeString,
  nameString,
  optionalString,
  toAccount,
  toAccounts,
  toIdName,
} from './fields';
import type { InboundActivity } from './types';

/**
 * Validates a parsed request body. Throws BadRequestError (400) naming the missing field when the
 * body is not an object or lacks `type`, `conversation.id` or `serviceUrl`.
 */
export function parseActivity(body: unknown): InboundActivity {
  if (!isObject(body)) throw new BadRequestError('The activity must be a JSON object.');
  const type = optionalString(body.type);
  if (type === undefined) throw new BadRequestError('The activity has no "type".');
  const serviceUrl = idString(body.serviceUrl, 'serviceUrl');
  if (serviceUrl === undefined) throw new BadRequestError('The activity has no "serviceUrl".');
  const conversationRaw = body.conversation;
  const conversationId = isObject(conversationRaw) ? idString(conversationRaw.id, 'conversation.id') : undefined;
  if (!isObject(conversationRaw) || conversationId === undefined)
    throw new BadRequestError('The activity has no "conversation.id".');

  assertKeyable(conversationId, 'conversation.id');
  const channelDataRaw = isObject(body.channelData) ? body.channelData : {};
  const team = toIdName(channelDataRaw.team, 'channelData.team');
  const aadGroupId = isObject(channelDataRaw.team)
    ? idString(channelDataRaw.team.aadGroupId, 'channelData.team.aadGroupId')
    : undefined;
  const channel = toIdName(channelDataRaw.channel, 'channelData.channel');
  const channelDataTenant = isObject(channelDataRaw.tenant)
    ? idString(channelDataRaw.tenant.id, 'channelData.tenant.id')
    : undefined;
  const conversationTenant = idString(conversationRaw.tenantId, 'conversation.tenantId');

  for (const [field, value] of [
    ['conversation.tenantId', conversationTenant],
    ['channelData.tenant.id', channelDataTenant],
  ] as const) {
    if (value !== undefined) assertKeyable(value, field);
  }

  const conversation = {
    id: conversationId,
    conversationType: optionalString(conversationRaw.conversationType),
    tenantId: conversationTenant,
    isGroup: conversationRaw.isGroup === true,
    name: nameString(conversationRaw.name),
  };

  return {
    type,
    id: optionalString(body.id),
    channelId: optionalString(body.channelId) ?? '',
    serviceUrl,
    conversation,
    from: toAccount(body.from, 'from'),
    recipient: toAccount(body.recipient, 'recipient'),
    membersAdded: toAccounts(body.membersAdded, 'membersAdded'),
    membersRemoved: toAccounts(body.membersRemoved, 'membersRemoved'),
    action: optionalString(body.action),
    locale: localeString(body.locale),
    channelData: {
      eventType: optionalString(channelDataRaw.eventType),
      tenantId: channelDataTenant,
      team: team === undefined ? undefined : { ...team, ...(aadGroupId === undefined ? {} : { aadGroupId }) },
      channel,
    },
  };
}
