/**
 * Inbound activities: parsing `unknown` JSON into the few fields teams-courier uses, and deciding
 * what an activity means for the conversation store. Pure: no I/O, time passed in.
 *
 * Teams adds fields over time; everything not read here is ignored, never rejected.
 * Sources: ../shared/reference/bot-connector.md §8 (activities to capture), §9 (reference contents).
 */
import { BadRequestError } from '../errors';
import { toTableKey } from './tableKeys';

export interface ChannelAccount {
  readonly id: string;
  readonly name?: string;
  readonly aadObjectId?: string;
}

/** The validated subset of a Bot Framework activity. */
export interface InboundActivity {
  readonly type: string;
  readonly id?: string;
  readonly channelId: string;
  readonly serviceUrl: string;
  readonly conversation: {
    readonly id: string;
    readonly conversationType?: string;
    readonly tenantId?: string;
    readonly isGroup?: boolean;
    readonly name?: string;
  };
  readonly from?: ChannelAccount;
  readonly recipient?: ChannelAccount;
  readonly membersAdded: readonly ChannelAccount[];
  readonly membersRemoved: readonly ChannelAccount[];
  readonly action?: string;
  readonly locale?: string;
  readonly channelData: {
    readonly eventType?: string;
    readonly tenantId?: string;
    readonly team?: { readonly id: string; readonly name?: string; readonly aadGroupId?: string };
    readonly channel?: { readonly id: string; readonly name?: string };
  };
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Limits on what is stored from an activity. Table Storage refuses a string property over 64 KiB
 * (32 K UTF-16 units) and any key or URL with a lone surrogate, and such a refusal must not become
 * a 5xx: the Bot Connector would retry it for ever. Teams' own values are far shorter.
 */
export const MAX_ID_LENGTH = 1024;
/** Display names are shown, never looked up: a longer one is cut, not refused. */
export const MAX_NAME_LENGTH = 256;
/** A locale is a BCP 47 tag; anything longer is not one and is ignored. */
export const MAX_LOCALE_LENGTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** An id or URL that is stored and looked up: refused (400) when it is not well-formed or too long. */
function idString(value: unknown, field: string): string | undefined {
  const text = optionalString(value);
  if (text === undefined) return undefined;
  if (LONE_SURROGATE.test(text)) throw new BadRequestError(`"${field}" is not well-formed Unicode.`);
  if (text.length > MAX_ID_LENGTH) throw new BadRequestError(`"${field}" is too long.`);
  return text;
}

/** A display name: lone surrogates replaced, cut to MAX_NAME_LENGTH (never inside a surrogate pair). */
function nameString(value: unknown): string | undefined {
  const text = optionalString(value);
  if (text === undefined) return undefined;
  let name = text.replace(LONE_SURROGATES, '\uFFFD');
  if (name.length > MAX_NAME_LENGTH) {
    name = name.slice(0, MAX_NAME_LENGTH);
    if (/[\uD800-\uDBFF]$/.test(name)) name = name.slice(0, -1);
  }
  return name;
}

function localeString(value: unknown): string | undefined {
  const text = optionalString(value);
  return text !== undefined && text.length <= MAX_LOCALE_LENGTH && /^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$/.test(text)
    ? text
    : undefined;
}

function toAccount(value: unknown, field: string): ChannelAccount | undefined {
  if (!isObject(value)) return undefined;
  const id = idString(value.id, `${field}.id`);
  if (id === undefined) return undefined;
  const name = nameString(value.name);
  const aadObjectId = idString(value.aadObjectId, `${field}.aadObjectId`);
  if (aadObjectId !== undefined) assertKeyable(aadObjectId, `${field}.aadObjectId`);
  return { id, ...(name === undefined ? {} : { name }), ...(aadObjectId === undefined ? {} : { aadObjectId }) };
}

function toAccounts(value: unknown, field: string): ChannelAccount[] {
  if (!Array.isArray(value)) return [];
  return value
    .map((entry, i) => toAccount(entry, `${field}[${i}]`))
    .filter((a): a is ChannelAccount => a !== undefined);
}

function toIdName(value: unknown, field: string): { id: string; name?: string } | undefined {
  if (!isObject(value)) return undefined;
  const id = idString(value.id, `${field}.id`);
  if (id === undefined) return undefined;
  const name = nameString(value.name);
  return { id, ...(name === undefined ? {} : { name }) };
}

/** Ids become Table Storage keys; one too long to be a key is bad input, not a server error. */
function assertKeyable(value: string, field: string): void {
  try {
    toTableKey(value);
  } catch {
    throw new BadRequestError(`"${field}" is too long.`);
  }
}

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

export type ConversationType = 'personal' | 'groupChat' | 'channel';

/** What an inbound activity tells us about one conversation. */
export interface ObservedReference {
  readonly conversationId: string;
  readonly conversationType: ConversationType;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly botId: string;
  readonly botName?: string;
  readonly userId?: string;
  readonly userAadObjectId?: string;
  readonly userName?: string;
  readonly teamId?: string;
  readonly teamName?: string;
  readonly teamAadGroupId?: string;
  readonly channelId?: string;
  readonly channelName?: string;
  readonly locale?: string;
  /** `undefined`: this activity says nothing about installation (unchanged; new references count as installed). */
  readonly installed?: boolean;
}

export type CapturePlan =
  | { readonly kind: 'ignore'; readonly reason: string }
  | {
      readonly kind: 'capture';
      readonly reference: ObservedReference;
      /** Also set the install state of every stored channel of this team (team-wide install, delete, restore). */
      readonly team?: { readonly teamId: string; readonly installed: boolean };
    };

const CAPTURED_TYPES = new Set(['message', 'conversationUpdate', 'installationUpdate']);
const THREAD_SUFFIX = /;messageid=[^;]*$/;

/** `19:abc@thread.tacv2;messageid=123` -> `19:abc@thread.tacv2`: threads are recorded against their channel. */
export function toChannelConversationId(conversationId: string): string {
  return conversationId.replace(THREAD_SUFFIX, '');
}

/** True for a channel thread's id (`…;messageid=<root>`). */
export function isThreadConversationId(conversationId: string): boolean {
  return THREAD_SUFFIX.test(conversationId);
}

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
