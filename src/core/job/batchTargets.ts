/**
 * The `to.batch` forms: Teams' batch messaging (docs/flows.md, "Batch jobs"). Each is one entry of
 * TARGET_FORMS (targetForms.ts), named by the value of `to.batch`, and parsed like the other forms:
 * a problem for each bad field, the target only when there is none.
 */
import type { Problem } from '../../errors';
import { uniqueMembers } from '../batch';
import type { Json } from '../json';
import { checkString } from './fields';
import { MAX_BATCH_MEMBER_ID_LENGTH, MAX_BROADCAST_USERS, MIN_BATCH_MEMBERS, type BatchTarget } from './types';

interface ListRules {
  /** What the entries are (`users`), and what they may be (`Entra object ids or 29: ids`), for the messages. */
  readonly what: string;
  readonly items: string;
  /** What to do with fewer than MIN_BATCH_MEMBERS. */
  readonly fewer: string;
  readonly max: number;
  /** A channel id: no thread (`;messageid=`), not "." or "..". */
  readonly channel?: boolean;
}

/**
 * A list of ids: MIN_BATCH_MEMBERS to MAX_BROADCAST_USERS entries, each a non-blank string. The
 * same id twice counts once (core/batch.ts uniqueMembers), and Teams takes no batch request of fewer
 * than MIN_BATCH_MEMBERS different ids.
 */
function checkIdList(to: Json, key: string, rules: ListRules, problems: Problem[]): string[] | undefined {
  const path = `to.${key}`;
  const list = to[key];
  if (list === undefined || list === null) {
    problems.push({ path, message: `is required: an array of ${rules.items}` });
    return undefined;
  }
  if (!Array.isArray(list) || list.length === 0) {
    problems.push({ path, message: `must be a non-empty array of ${rules.items}` });
    return undefined;
  }
  const before = problems.length;
  if (list.length > MAX_BROADCAST_USERS)
    problems.push({
      path,
      message: `must have at most ${MAX_BROADCAST_USERS} entries (got ${list.length}); split the list into several jobs`,
    });
  list.slice(0, MAX_BROADCAST_USERS).forEach((id: unknown, i) => {
    const at = `${path}[${i}]`;
    if (typeof id !== 'string' || id.trim() === '' || id.length > rules.max) {
      problems.push({ path: at, message: `must be a non-empty string of at most ${rules.max} characters` });
    } else if (rules.channel === true && id.includes(';messageid=')) {
      problems.push({ path: at, message: 'must be a channel id without ";messageid=" (a batch posts to channels)' });
    } else if (rules.channel === true && /^\.{1,2}$/.test(id)) {
      problems.push({ path: at, message: 'must not be "." or ".."' });
    }
  });
  if (problems.length > before) return undefined;
  const unique = uniqueMembers(list as string[]);
  if (unique.length < MIN_BATCH_MEMBERS) {
    problems.push({
      path,
      message: `must name at least ${MIN_BATCH_MEMBERS} different ${rules.what}, Teams' fewest for a batch request (got ${unique.length}); ${rules.fewer}`,
    });
    return undefined;
  }
  return unique;
}

const tenantOf = (to: Json, problems: Problem[], required: boolean): string | undefined =>
  checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128, required });

/** `{batch: "users", users, tenantId}`: Entra object ids or `29:` ids, in the one tenant. */
export function toBatchUsersTarget(to: Json, problems: Problem[]): BatchTarget | undefined {
  const tenantId = tenantOf(to, problems, true);
  const users = checkIdList(
    to,
    'users',
    {
      what: 'users',
      items: 'Entra object ids or 29: ids',
      fewer: 'for fewer, use to.aadObjectIds (one message each)',
      max: MAX_BATCH_MEMBER_ID_LENGTH,
    },
    problems,
  );
  if (users === undefined || tenantId === undefined) return undefined;
  return { kind: 'batch', batch: 'users', users, tenantId };
}

/** `{batch: "tenant", tenantId}`: every user of the tenant who has the app. */
export function toBatchTenantTarget(to: Json, problems: Problem[]): BatchTarget | undefined {
  const tenantId = tenantOf(to, problems, true);
  return tenantId === undefined ? undefined : { kind: 'batch', batch: 'tenant', tenantId };
}

/** `{batch: "team", teamId, tenantId?}`: every member of a team where the bot is installed. */
export function toBatchTeamTarget(to: Json, problems: Problem[]): BatchTarget | undefined {
  const teamId = checkString(to, 'teamId', 'to.teamId', problems, { max: 400, required: true });
  const tenantId = tenantOf(to, problems, false);
  if (teamId === undefined) return undefined;
  return { kind: 'batch', batch: 'team', teamId, ...(tenantId === undefined ? {} : { tenantId }) };
}

/** `{batch: "channels", channelIds, tenantId?}`: a new post in each channel. */
export function toBatchChannelsTarget(to: Json, problems: Problem[]): BatchTarget | undefined {
  const tenantId = tenantOf(to, problems, false);
  const channelIds = checkIdList(
    to,
    'channelIds',
    { what: 'channels', items: 'channel ids', fewer: 'for fewer, send a job to each channel', max: 400, channel: true },
    problems,
  );
  if (channelIds === undefined) return undefined;
  return { kind: 'batch', batch: 'channels', channelIds, ...(tenantId === undefined ? {} : { tenantId }) };
}
