/**
 * Teams' batch messaging (Bot Connector `v3/batch/conversation/...`), the request half: the four
 * batch targets, their request bodies, and the chunking of a member list to the per-request limit.
 * The answers (operation id, state, failed entries) are read by ./batchState.ts. Pure.
 *
 * Sources: botbuilder-js `botframework-connector/src/teams/operations/teams.ts` (paths and the
 * `BatchOperationRequest` body), botbuilder-dotnet PR 6655, microsoft/teams.net `TeamsApiClient`
 * and microsoft/teams.py `clients/batch` (limits, below).
 */

/** What a batch request fans out to: a list of users, every user of a tenant, every member of a team, a list of channels. */
export type BatchKind = 'users' | 'tenant' | 'team' | 'channels';

export const BATCH_KINDS: readonly BatchKind[] = ['users', 'tenant', 'team', 'channels'];

/**
 * Members (users or channels) per request. The only bound a Microsoft source states is microsoft/teams.py
 * `BatchUsersParams.members`: "Must contain between 5 and 1000 members"; Microsoft's Learn pages give
 * no number we could find. So the request size is a setting: at most MAX, at least MIN, and a
 * conservative default.
 */
export const BATCH_MAX_MEMBERS_PER_REQUEST = 1000;
export const BATCH_MIN_MEMBERS_PER_REQUEST = 5;
export const DEFAULT_BATCH_MEMBERS_PER_REQUEST = 100;

/** One batch request: what it sends, to whom. `members` for users and channels, `teamId` for a team. */
export interface BatchRequest {
  readonly kind: BatchKind;
  readonly tenantId: string;
  readonly activity: Record<string, unknown>;
  readonly members?: readonly string[];
  readonly teamId?: string;
}

/** The wire body (camelCase, as botbuilder-js and teams.net send it). */
export interface BatchRequestBody {
  readonly activity: Record<string, unknown>;
  readonly tenantId: string;
  readonly members?: readonly { readonly id: string }[];
  readonly teamId?: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The request body for one batch request: `{activity, members, tenantId}` (users, channels),
 * `{activity, tenantId}` (tenant), `{activity, tenantId, teamId}` (team). Throws on a request that
 * does not fit its kind, which the job contract should have refused earlier.
 */
export function batchRequestBody(request: BatchRequest): BatchRequestBody {
  const { kind, tenantId, activity, members, teamId } = request;
  if (tenantId.trim() === '') throw new RangeError('a batch request needs a tenantId');
  switch (kind) {
    case 'users':
    case 'channels':
      if (members === undefined || members.length === 0) throw new RangeError(`a ${kind} batch needs members`);
      if (teamId !== undefined) throw new RangeError(`a ${kind} batch has no teamId`);
      return { activity, members: members.map((id) => ({ id })), tenantId };
    case 'tenant':
      if (members !== undefined || teamId !== undefined) throw new RangeError('a tenant batch names nobody');
      return { activity, tenantId };
    case 'team':
      if (teamId === undefined || teamId.trim() === '') throw new RangeError('a team batch needs a teamId');
      if (members !== undefined) throw new RangeError('a team batch has no members');
      return { activity, tenantId, teamId };
  }
}

/** The same member twice is one member: Entra object ids compare case-insensitively, other ids exactly. First spelling kept. */
export function uniqueMembers(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of ids) {
    const id = raw.trim();
    if (id === '') continue;
    const key = GUID.test(id) ? id.toLowerCase() : id;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(id);
  }
  return out;
}

export interface ChunkOptions {
  /** Most members in one request; default DEFAULT_BATCH_MEMBERS_PER_REQUEST, at most BATCH_MAX_MEMBERS_PER_REQUEST. */
  readonly maxPerRequest?: number;
  /** Fewest members in one request; default BATCH_MIN_MEMBERS_PER_REQUEST. */
  readonly minPerRequest?: number;
}

/**
 * A member list (deduplicated, blanks dropped) in as few requests as the limit allows, sizes
 * balanced so they differ by at most one: 205 at 100 per request are 69 + 68 + 68, never
 * 100 + 100 + 5. With `maxPerRequest >= 2 * minPerRequest`, every request then has at least
 * `minPerRequest` members whenever the list has. A shorter list is one request below the minimum:
 * the caller decides (send it per recipient instead).
 */
export function chunkMembers(ids: readonly string[], options: ChunkOptions = {}): string[][] {
  const max = options.maxPerRequest ?? DEFAULT_BATCH_MEMBERS_PER_REQUEST;
  const min = options.minPerRequest ?? BATCH_MIN_MEMBERS_PER_REQUEST;
  if (!Number.isInteger(max) || max < 1 || max > BATCH_MAX_MEMBERS_PER_REQUEST)
    throw new RangeError(`maxPerRequest must be an integer from 1 to ${BATCH_MAX_MEMBERS_PER_REQUEST} (got ${max})`);
  if (!Number.isInteger(min) || min < 1 || max < 2 * min)
    throw new RangeError(`minPerRequest must be an integer from 1 to maxPerRequest / 2 (got ${min} with ${max})`);
  const members = uniqueMembers(ids);
  if (members.length === 0) return [];
  const count = Math.ceil(members.length / max);
  const base = Math.floor(members.length / count);
  const larger = members.length % count;
  const chunks: string[][] = [];
  let at = 0;
  for (let i = 0; i < count; i += 1) {
    const size = base + (i < larger ? 1 : 0);
    chunks.push(members.slice(at, at + size));
    at += size;
  }
  return chunks;
}

/** True when a list is too short for one batch request (send it per recipient instead). */
export function belowBatchMinimum(ids: readonly string[], minPerRequest = BATCH_MIN_MEMBERS_PER_REQUEST): boolean {
  return uniqueMembers(ids).length < minPerRequest;
}
