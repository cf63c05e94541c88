/**
 * The forms a job's `to` may take, one entry each, in the order problems name them. parseTarget
 * (target.ts) picks the one form whose key is present; a new form is a new entry here, with its
 * type in types.ts and its rule in schemas/job.schema.json.
 */
import type { Problem } from '../../errors';
import type { Json } from '../json';
import { toBatchChannelsTarget, toBatchTeamTarget, toBatchTenantTarget, toBatchUsersTarget } from './batchTargets';
import { checkString } from './fields';
import { MAX_BROADCAST_USERS, type BatchTarget, type BroadcastTarget, type JobTarget } from './types';

export type AnyTarget = JobTarget | BroadcastTarget | BatchTarget;

export interface TargetForm {
  /** The field that names the form: exactly one form's key may be present in `to`. */
  readonly key: string;
  /**
   * When several forms share a key (`batch`), the key's value that names this one. parseTarget
   * then picks the form by value, and names the values when none matches.
   */
  readonly value?: string;
  /** Other fields the form needs (its parser says when one is missing). */
  readonly required?: readonly string[];
  /** The other fields the form takes, all optional. Any other field is a problem. */
  readonly optional: readonly string[];
  /**
   * Reads the form's fields, pushing a problem for each bad one. parseTarget keeps the result only
   * when this pushed none.
   */
  readonly parse: (to: Json, problems: Problem[]) => AnyTarget | undefined;
}

export const TARGET_FORMS: readonly TargetForm[] = [
  { key: 'conversationId', optional: [], parse: toConversationTarget },
  { key: 'aadObjectId', optional: ['tenantId'], parse: toUserTarget },
  { key: 'channelId', optional: ['threadId'], parse: toChannelTarget },
  { key: 'aadObjectIds', optional: ['tenantId'], parse: toUsersTarget },
  { key: 'allInstalled', optional: ['tenantId', 'conversationType'], parse: toAllInstalledTarget },
  { key: 'batch', value: 'users', required: ['users', 'tenantId'], optional: [], parse: toBatchUsersTarget },
  { key: 'batch', value: 'tenant', required: ['tenantId'], optional: [], parse: toBatchTenantTarget },
  { key: 'batch', value: 'team', required: ['teamId'], optional: ['tenantId'], parse: toBatchTeamTarget },
  { key: 'batch', value: 'channels', required: ['channelIds'], optional: ['tenantId'], parse: toBatchChannelsTarget },
];

function toConversationTarget(to: Json, problems: Problem[]): JobTarget | undefined {
  const conversationId = checkString(to, 'conversationId', 'to.conversationId', problems, {
    max: 400,
    urlSegment: true,
  });
  return conversationId ? { kind: 'conversation', conversationId } : undefined;
}

function toUserTarget(to: Json, problems: Problem[]): JobTarget | undefined {
  const aadObjectId = checkString(to, 'aadObjectId', 'to.aadObjectId', problems, { max: 128 });
  const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
  return aadObjectId ? { kind: 'user', aadObjectId, ...(tenantId ? { tenantId } : {}) } : undefined;
}

function toChannelTarget(to: Json, problems: Problem[]): JobTarget | undefined {
  const channelId = checkString(to, 'channelId', 'to.channelId', problems, { max: 400, urlSegment: true });
  const threadId = checkString(to, 'threadId', 'to.threadId', problems, { max: 64, urlSegment: true });
  if (channelId !== undefined && channelId.includes(';messageid=')) {
    problems.push({
      path: 'to.channelId',
      message: 'must be the channel id without ";messageid=" (put the thread root id in to.threadId)',
    });
  }
  return channelId ? { kind: 'channel', channelId, ...(threadId ? { threadId } : {}) } : undefined;
}

function toUsersTarget(to: Json, problems: Problem[]): BroadcastTarget | undefined {
  const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
  const ids = to.aadObjectIds;
  if (!Array.isArray(ids) || ids.length === 0) {
    problems.push({ path: 'to.aadObjectIds', message: 'must be a non-empty array of Entra object ids' });
    return undefined;
  }
  if (ids.length > MAX_BROADCAST_USERS)
    problems.push({
      path: 'to.aadObjectIds',
      message: `must have at most ${MAX_BROADCAST_USERS} entries (got ${ids.length}); split the list or use allInstalled`,
    });
  ids.slice(0, MAX_BROADCAST_USERS).forEach((id, i) => {
    if (typeof id !== 'string' || id.trim() === '' || id.length > 128)
      problems.push({
        path: `to.aadObjectIds[${i}]`,
        message: 'must be a non-empty string of at most 128 characters',
      });
  });
  const unique = [...new Set(ids as string[])];
  return { kind: 'users', aadObjectIds: unique, ...(tenantId ? { tenantId } : {}) };
}

function toAllInstalledTarget(to: Json, problems: Problem[]): BroadcastTarget {
  if (to.allInstalled !== true) problems.push({ path: 'to.allInstalled', message: 'must be true' });
  const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
  const type = to.conversationType;
  if (type !== undefined && type !== 'personal' && type !== 'groupChat' && type !== 'channel') {
    problems.push({ path: 'to.conversationType', message: 'must be personal, groupChat or channel' });
  }
  return {
    kind: 'allInstalled',
    ...(tenantId ? { tenantId } : {}),
    ...(type === undefined ? {} : { conversationType: type as 'personal' | 'groupChat' | 'channel' }),
  };
}
