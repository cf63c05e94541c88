/**
 * What the Connector stub knows about conversations and users: registered and auto-registered
 * conversations (tenant, owning bot, members, a persistent error), users and whether the app is
 * installed for them, and the activity ids it issued in each conversation.
 */
import { createHash } from 'node:crypto';
import type { TeamsErrorName } from '../faults';

export interface ConversationRegistration {
  readonly id: string;
  tenantId?: string;
  /** The bot the conversation belongs to; another bot's token gets 403 "Failed to decrypt conversation id" (§7). */
  appId?: string;
  type?: 'personal' | 'groupChat' | 'channel';
  /** Member user ids (`29:...`). */
  members?: string[];
  /** Persistent error for every write, e.g. `ConversationBlockedByUser` or `BotNotInConversationRoster` after an uninstall. */
  error?: TeamsErrorName;
}

export interface UserRegistration {
  /** `29:...` */
  readonly id: string;
  readonly tenantId: string;
  readonly aadObjectId?: string;
  readonly name?: string;
  /** The app is installed for the user (default true). False: create conversation fails with 403 (§6, §11 #4). */
  readonly installed?: boolean;
}

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function hashId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('|')).digest('base64url');
}

/** `19:x@thread.tacv2;messageid=1` -> `19:x@thread.tacv2`. */
function baseConversationId(id: string): string {
  const at = id.indexOf(';messageid=');
  return at < 0 ? id : id.slice(0, at);
}

export class ConversationBook {
  readonly #conversations = new Map<string, ConversationRegistration>();
  readonly #users = new Map<string, UserRegistration>();
  /** Activity ids issued per conversation (for update/delete/reply checks). */
  readonly #activities = new Map<string, Set<string>>();
  #activitySeq = 0;
  readonly #activityBase: number;

  constructor(now: () => number) {
    this.#activityBase = now();
  }

  /** The conversation, or the channel a `;messageid=` thread id belongs to. */
  find(id: string): ConversationRegistration | undefined {
    return this.#conversations.get(id) ?? this.#conversations.get(baseConversationId(id));
  }

  has(id: string): boolean {
    return this.#conversations.has(id);
  }

  get(id: string): ConversationRegistration | undefined {
    return this.#conversations.get(id);
  }

  register(registration: ConversationRegistration): void {
    this.#conversations.set(registration.id, registration);
  }

  /** Makes every write to the conversation fail with a canned error (undefined clears it). */
  block(id: string, error: TeamsErrorName | undefined): void {
    const registration = this.find(id) ?? { id };
    if (error === undefined) delete registration.error;
    else registration.error = error;
    this.#conversations.set(registration.id, registration);
  }

  registerUser(user: UserRegistration): void {
    this.#users.set(user.id, user);
  }

  hasUser(id: string): boolean {
    return this.#users.has(id);
  }

  /** The registered users of a tenant, in registration order (a tenant-wide batch). */
  usersInTenant(tenantId: string): UserRegistration[] {
    return [...this.#users.values()].filter((u) => u.tenantId === tenantId);
  }

  /** A member by `29:` id, or by Entra object id (in `tenantId` when given). */
  member(memberId: string, tenantId: string | undefined): UserRegistration | undefined {
    let user = this.#users.get(memberId);
    if (!user && GUID.test(memberId)) {
      for (const u of this.#users.values())
        if (
          u.aadObjectId?.toLowerCase() === memberId.toLowerCase() &&
          (tenantId === undefined || u.tenantId === tenantId)
        )
          user = u;
    }
    return user;
  }

  /** Resolves a member id (29:..., or an Entra object id with the tenant) to a registered or derived user. */
  resolveUser(memberId: string, tenantId: string): UserRegistration | undefined {
    const direct = this.#users.get(memberId);
    if (direct) return direct;
    if (GUID.test(memberId)) {
      for (const user of this.#users.values())
        if (user.aadObjectId?.toLowerCase() === memberId.toLowerCase() && user.tenantId === tenantId) return user;
      // Unknown object id: derive a stable 29: id so the same user always gets the same chat.
      return {
        id: `29:1${hashId('user', tenantId, memberId.toLowerCase()).slice(0, 40)}`,
        tenantId,
        aadObjectId: memberId,
      };
    }
    if (memberId.startsWith('29:')) return { id: memberId, tenantId };
    return undefined;
  }

  /** The deterministic `a:` id of the personal chat between a bot and a user. */
  personalConversationId(appId: string, tenantId: string, userId: string): string {
    for (const reg of this.#conversations.values()) {
      if (
        reg.type === 'personal' &&
        reg.tenantId === tenantId &&
        (reg.appId === undefined || reg.appId === appId) &&
        reg.members?.includes(userId)
      )
        return reg.id;
    }
    return `a:1${hashId('personal', appId, tenantId, userId).slice(0, 40)}`;
  }

  newActivityId(): string {
    this.#activitySeq += 1;
    // Teams activity ids in personal chats are millisecond timestamps; keep the look, stay unique.
    return String(this.#activityBase + this.#activitySeq);
  }

  track(conversationId: string, activityId: string): void {
    let set = this.#activities.get(conversationId);
    if (!set) {
      set = new Set();
      this.#activities.set(conversationId, set);
    }
    set.add(activityId);
  }

  forget(conversationId: string, activityId: string): void {
    this.#activities.get(conversationId)?.delete(activityId);
  }

  knowsActivity(conversationId: string, activityId: string): boolean {
    return (
      this.#activities.get(conversationId)?.has(activityId) === true ||
      this.#activities.get(baseConversationId(conversationId))?.has(activityId) === true
    );
  }
}
