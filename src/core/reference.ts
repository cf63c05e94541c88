/**
 * Stored conversation references and how an observation updates one. Pure.
 *
 * A repeat of the same activity must not rewrite the row: `lastSeenAt` is kept coarse (it moves
 * only when it is an hour old), so identical traffic costs one read and no write.
 */
import type { ObservedReference } from './activity';

export const LAST_SEEN_RESOLUTION_MS = 60 * 60 * 1000;

/** A stored reference: everything observed, plus what the store tracks over time. */
export interface ConversationReference extends Omit<ObservedReference, 'installed'> {
  readonly installed: boolean;
  /** When `installed` last changed (ISO 8601). */
  readonly installedChangedAt: string;
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
  /** Set by the sender when Teams refused delivery for good (e.g. ConversationBlockedByUser). */
  readonly undeliverableReason?: string;
  readonly undeliverableAt?: string;
}

const OBSERVED_FIELDS = [
  'conversationType',
  'tenantId',
  'serviceUrl',
  'botId',
  'botName',
  'userId',
  'userAadObjectId',
  'userName',
  'teamId',
  'teamName',
  'teamAadGroupId',
  'channelId',
  'channelName',
  'locale',
] as const satisfies readonly (keyof ObservedReference & keyof ConversationReference)[];

/** Every field of a stored reference, in the order a row holds them (src/store/conversationRows.ts). */
export const REFERENCE_FIELDS = [
  'conversationId',
  ...OBSERVED_FIELDS,
  'installed',
  'installedChangedAt',
  'firstSeenAt',
  'lastSeenAt',
  'undeliverableReason',
  'undeliverableAt',
] as const satisfies readonly (keyof ConversationReference)[];

/**
 * Returns the reference to store after `observed`, or `undefined` when the stored one is already
 * up to date. Fields the activity did not carry keep their stored value (a conversationUpdate has no
 * locale; a channel message has no team name).
 */
export function mergeReference(
  existing: ConversationReference | undefined,
  observed: ObservedReference,
  now: Date,
): ConversationReference | undefined {
  const nowIso = now.toISOString();
  if (existing === undefined) {
    const installed = observed.installed ?? true;
    const created: Record<string, unknown> = {
      conversationId: observed.conversationId,
      installed,
      installedChangedAt: nowIso,
      firstSeenAt: nowIso,
      lastSeenAt: nowIso,
    };
    for (const field of OBSERVED_FIELDS) if (observed[field] !== undefined) created[field] = observed[field];
    return created as unknown as ConversationReference;
  }

  const next: Record<string, unknown> = { ...existing };
  let changed = false;
  for (const field of OBSERVED_FIELDS) {
    const value = observed[field];
    if (value !== undefined && value !== existing[field]) {
      next[field] = value;
      changed = true;
    }
  }
  if (observed.installed !== undefined && observed.installed !== existing.installed) {
    next.installed = observed.installed;
    next.installedChangedAt = nowIso;
    changed = true;
  }
  // A fresh install or a new message proves the conversation works again.
  if (observed.installed === true && existing.undeliverableReason !== undefined) {
    delete next.undeliverableReason;
    delete next.undeliverableAt;
    changed = true;
  }
  if (now.getTime() - Date.parse(existing.lastSeenAt) >= LAST_SEEN_RESOLUTION_MS) {
    next.lastSeenAt = nowIso;
    changed = true;
  }
  if (!changed) return undefined;
  // lastSeenAt always moves with a write: the row says when it was last confirmed.
  next.lastSeenAt = nowIso;
  return next as unknown as ConversationReference;
}

/** Sets the install state of an existing reference (team-wide events). `undefined` when unchanged. */
export function withInstallState(
  existing: ConversationReference,
  installed: boolean,
  now: Date,
): ConversationReference | undefined {
  if (existing.installed === installed) return undefined;
  const next: Record<string, unknown> = { ...existing, installed, installedChangedAt: now.toISOString() };
  if (installed) {
    delete next.undeliverableReason;
    delete next.undeliverableAt;
  }
  return next as unknown as ConversationReference;
}
