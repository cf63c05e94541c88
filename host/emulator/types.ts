/**
 * The slice of the Bot Framework v3 wire schema the emulator reads and writes.
 * Source: /work/shared/reference/ConnectorAPI.swagger.json (definitions Activity, ChannelAccount,
 * ConversationAccount, ConversationParameters, ResourceResponse, ConversationResourceResponse,
 * ErrorResponse). Only fields the stubs touch are named; everything else passes through untouched.
 */

export interface ChannelAccount {
  id: string;
  name?: string;
  aadObjectId?: string;
  role?: string;
  [extra: string]: unknown;
}

export interface ConversationAccount {
  id: string;
  isGroup?: boolean;
  conversationType?: string;
  tenantId?: string;
  name?: string;
  [extra: string]: unknown;
}

export interface Attachment {
  contentType: string;
  content?: unknown;
  contentUrl?: string;
  name?: string;
  [extra: string]: unknown;
}

export interface Activity {
  type: string;
  id?: string;
  timestamp?: string;
  localTimestamp?: string;
  channelId?: string;
  serviceUrl?: string;
  from?: ChannelAccount;
  conversation?: ConversationAccount;
  recipient?: ChannelAccount;
  text?: string;
  textFormat?: string;
  summary?: string;
  replyToId?: string;
  action?: string;
  locale?: string;
  membersAdded?: ChannelAccount[];
  membersRemoved?: ChannelAccount[];
  attachments?: Attachment[];
  entities?: Record<string, unknown>[];
  channelData?: TeamsChannelData;
  [extra: string]: unknown;
}

export interface TeamsChannelData {
  tenant?: { id?: string };
  team?: { id?: string; name?: string; aadGroupId?: string };
  channel?: { id?: string; name?: string };
  teamsChannelId?: string;
  teamsTeamId?: string;
  eventType?: string;
  [extra: string]: unknown;
}

export interface ConversationParameters {
  isGroup?: boolean;
  bot?: ChannelAccount;
  members?: ChannelAccount[];
  topicName?: string;
  tenantId?: string;
  activity?: Activity;
  channelData?: TeamsChannelData;
}

export interface ResourceResponse {
  id: string;
}

export interface ConversationResourceResponse {
  id: string;
  activityId?: string;
  serviceUrl?: string;
}

/** `ErrorResponse` of the swagger: `{error: {code, message, innerHttpError?}}`. */
export interface ErrorResponse {
  error: { code: string; message: string; innerHttpError?: { statusCode: number; body: unknown } };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
