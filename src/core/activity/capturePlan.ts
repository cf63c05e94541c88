/** Decides what an authenticated activity means for the conversation store. */
import { toChannelConversationId } from './conversationIds';
import type { CapturePlan, ConversationType, InboundActivity, ObservedReference } from './types';

const CAPTURED_TYPES = new Set(['message', 'conversationUpdate', 'installationUpdate']);

function toConversationType(activity: InboundActivity): ConversationType | undefined {
  const declared = activity.conversation.conversationType;
  if (declared === 'personal' || declared === 'groupChat' || declared === 'channel') return declared;
  if (declared !== undefined) return undefined;
  // Older payloads omit conversationType: infer it as botbuilder-based bots do.
  if (activity.channelData.team !== undefined) return 'channel';
  return activity.conversation.isGroup ? 'groupChat' : 'personal';
}

function installedFrom(activity: InboundActivity, botId: string): { installed?: boolean; teamWide: boolean } {
  switch (activity.type) {
    case 'installationUpdate':
      if (activity.action === 'add' || activity.action === 'add-upgrade') return { installed: true, teamWide: true };
      if (activity.action === 'remove' || activity.action === 'remove-upgrade')
        return { installed: false, teamWide: true };
      return { teamWide: false };
    case 'conversationUpdate': {
      const eventType = activity.channelData.eventType;
      if (eventType === 'teamDeleted') return { installed: false, teamWide: true };
      if (eventType === 'teamRestored') return { installed: true, teamWide: true };
      if (activity.membersRemoved.some((m) => m.id === botId)) return { installed: false, teamWide: true };
      if (activity.membersAdded.some((m) => m.id === botId)) return { installed: true, teamWide: true };
      return { teamWide: false };
    }
    default:
      // Teams only delivers messages to a bot that is in the conversation.
      return { installed: true, teamWide: false };
  }
}

/** Decides what to store for an authenticated activity. */
export function toCapturePlan(activity: InboundActivity): CapturePlan {
  if (activity.channelId !== 'msteams')
    return { kind: 'ignore', reason: `channel "${activity.channelId || '(none)'}" is not msteams` };
  if (!CAPTURED_TYPES.has(activity.type))
    return { kind: 'ignore', reason: `activity type "${activity.type}" carries no reference` };

  const conversationType = toConversationType(activity);
  if (conversationType === undefined)
    return { kind: 'ignore', reason: `unknown conversationType "${activity.conversation.conversationType}"` };
  const tenantId = activity.conversation.tenantId ?? activity.channelData.tenantId;
  if (tenantId === undefined)
    return { kind: 'ignore', reason: 'no tenant id in conversation.tenantId or channelData.tenant.id' };
  const bot = activity.recipient;
  if (bot === undefined) return { kind: 'ignore', reason: 'no recipient (bot) account' };

  const { installed, teamWide } = installedFrom(activity, bot.id);
  const base = {
    tenantId,
    serviceUrl: activity.serviceUrl,
    botId: bot.id,
    ...(bot.name === undefined ? {} : { botName: bot.name }),
    ...(activity.locale === undefined ? {} : { locale: activity.locale }),
    ...(installed === undefined ? {} : { installed }),
  };

  if (conversationType === 'personal') {
    // The user is the party that is not the bot: `from` on messages, the added member on installs.
    const user =
      (activity.from && activity.from.id !== bot.id ? activity.from : undefined) ??
      activity.membersAdded.find((m) => m.id !== bot.id) ??
      activity.membersRemoved.find((m) => m.id !== bot.id);
    return {
      kind: 'capture',
      reference: {
        ...base,
        conversationId: activity.conversation.id,
        conversationType,
        ...(user === undefined
          ? {}
          : {
              userId: user.id,
              ...(user.aadObjectId === undefined ? {} : { userAadObjectId: user.aadObjectId }),
              ...(user.name === undefined ? {} : { userName: user.name }),
            }),
      },
    };
  }

  if (conversationType === 'groupChat') {
    return { kind: 'capture', reference: { ...base, conversationId: activity.conversation.id, conversationType } };
  }

  // Channel. The conversation id is the channel (General = team id); thread ids map to their channel.
  const team = activity.channelData.team;
  const conversationId = toChannelConversationId(activity.conversation.id);
  const channel = activity.channelData.channel;
  const channelId = channel?.id ?? conversationId;
  const eventType = activity.channelData.eventType;
  // The General channel's id equals the team id and Teams sends it without a name.
  const channelName = channel?.name ?? (team !== undefined && channelId === team.id ? 'General' : undefined);

  // channelCreated/Renamed/Deleted/Restored describe channelData.channel, not the conversation the event arrived on.
  const channelEvent = eventType?.startsWith('channel') === true && channel !== undefined;
  const referenceId = channelEvent ? channel.id : conversationId;
  let channelInstalled = base.installed;
  if (eventType === 'channelDeleted') channelInstalled = false;
  if (eventType === 'channelRestored' || eventType === 'channelCreated') channelInstalled = true;

  const referenceChannelName = channelEvent ? channel.name : channelName;
  const reference: ObservedReference = {
    ...base,
    ...(channelInstalled === undefined ? {} : { installed: channelInstalled }),
    conversationId: referenceId,
    conversationType,
    ...(team === undefined
      ? {}
      : {
          teamId: team.id,
          ...(team.name === undefined ? {} : { teamName: team.name }),
          ...(team.aadGroupId === undefined ? {} : { teamAadGroupId: team.aadGroupId }),
        }),
    channelId: channelEvent ? channel.id : channelId,
    ...(referenceChannelName === undefined ? {} : { channelName: referenceChannelName }),
  };
  const teamState =
    teamWide && installed !== undefined && team !== undefined ? { teamId: team.id, installed } : undefined;
  return { kind: 'capture', reference, ...(teamState === undefined ? {} : { team: teamState }) };
}
