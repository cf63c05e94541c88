/**
 * Conversation references in Table Storage.
 *
 * Layout (docs/storage.md):
 * - `conversations`: PartitionKey = toTableKey(conversation id), RowKey = "ref". One entity holds the
 *   whole reference, so an install state and its serviceUrl are always written together.
 * - `userchats`: PartitionKey = toTableKey(user aadObjectId), RowKey = toTableKey(tenant id) ->
 *   the personal chat's conversation id. Finding a user's chat is a point lookup (user + tenant) or
 *   a single-partition query (user only), never a table scan.
 *
 * Writes are optimistic: read, merge (pure), then update with the read ETag or create; a concurrent
 * writer makes us re-read and merge again, so no observation is lost.
 */
import { odata } from '@azure/data-tables';
import type { CapturePlan } from '../core/activity';
import { mergeReference, withInstallState, type ConversationReference } from '../core/reference';
import { fromTableKey, toTableKey } from '../core/tableKeys';
import {
  indexPersonalChat,
  rememberTenantServiceUrl,
  TENANT_PARTITION,
  TenantRowMemory,
  writeTenantServiceUrl,
} from './conversationIndexes';
import { fromEntity, REF_ROW, toEntity } from './conversationRows';
import { ensureTable, guardStorage, readEntity as getEntity, writeConditional, type TableClient } from './tableClients';

const MAX_WRITE_ATTEMPTS = 4;

export interface CaptureResult {
  readonly outcome: 'created' | 'updated' | 'unchanged';
  /** Other references of the same team whose install state changed. */
  readonly teamUpdated: number;
}

export interface ConversationStore {
  capture(plan: Extract<CapturePlan, { kind: 'capture' }>, now: Date): Promise<CaptureResult>;
  get(conversationId: string): Promise<ConversationReference | undefined>;
  /** The personal chat for a user; `tenantId` may be omitted when the user is known in one tenant only. */
  findPersonalChat(aadObjectId: string, tenantId?: string): Promise<PersonalChatLookup>;
  /** Records a permanent delivery refusal on the reference (kept, so later sends can say why). */
  markUndeliverable(conversationId: string, reason: string, now: Date): Promise<void>;
  /** A serviceUrl Teams used for this tenant (to create a chat in the right region), if any. */
  findServiceUrlForTenant(tenantId: string): Promise<string | undefined>;
  /** Stores a reference learned outside an inbound activity (a personal chat the sender created). */
  upsertCreated(reference: ConversationReference): Promise<void>;
}

export type PersonalChatLookup =
  | { readonly kind: 'found'; readonly reference: ConversationReference }
  | { readonly kind: 'none'; readonly tenantIds: readonly string[] }
  | { readonly kind: 'ambiguous'; readonly tenantIds: readonly string[] };

/** Create-or-conditional-replace of a merged reference. Returns false when a concurrent writer won. */
async function writeReference(
  client: TableClient,
  next: ConversationReference,
  etag: string | undefined,
): Promise<boolean> {
  return (await writeConditional(client, toEntity(next), etag)) !== undefined;
}

export function createConversationStore(clients: {
  conversations: TableClient;
  userChats: TableClient;
}): ConversationStore {
  const { conversations, userChats } = clients;
  const tenantRows = new TenantRowMemory();
  let ready: Promise<void> | undefined;
  const ensureReady = (): Promise<void> => {
    ready ??= Promise.all([ensureTable(conversations), ensureTable(userChats)]).then(
      () => undefined,
      (err: unknown) => {
        ready = undefined;
        throw err;
      },
    );
    return ready;
  };

  /**
   * Read-merge-write with optimistic concurrency. `beforeWrite` runs before each write of the
   * reference: what must exist whenever the reference does (the user -> chat index) is written
   * first, so a failure in between never leaves a stored reference without it. A retried activity
   * that finds the reference unchanged would otherwise never write the index again.
   */
  async function update(
    conversationId: string,
    merge: (existing: ConversationReference | undefined) => ConversationReference | undefined,
    beforeWrite?: (next: ConversationReference, existing: ConversationReference | undefined) => Promise<void>,
  ): Promise<{ outcome: CaptureResult['outcome']; reference?: ConversationReference }> {
    const partitionKey = toTableKey(conversationId);
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt += 1) {
      const entity = await getEntity(conversations, partitionKey, REF_ROW);
      const existing = entity === undefined ? undefined : fromEntity(entity);
      const next = merge(existing);
      if (next === undefined)
        return { outcome: 'unchanged', ...(existing === undefined ? {} : { reference: existing }) };
      if (beforeWrite !== undefined) await beforeWrite(next, existing);
      if (await writeReference(conversations, next, entity?.etag)) {
        return { outcome: entity === undefined ? 'created' : 'updated', reference: next };
      }
    }
    throw new Error(`conversation ${conversationId} kept changing under us (${MAX_WRITE_ATTEMPTS} attempts)`);
  }

  /**
   * What must exist whenever a reference does: the user -> chat index for personal chats, and the
   * tenant's latest serviceUrl (a point read when the sender creates a chat for a user never seen).
   */
  const beforeReferenceWrite =
    (now: Date) =>
    async (reference: ConversationReference, previous: ConversationReference | undefined): Promise<void> => {
      await Promise.all([
        indexPersonalChat(userChats, reference, previous),
        rememberTenantServiceUrl(conversations, reference, previous, tenantRows, now),
      ]);
    };

  async function setTeamInstallState(
    teamId: string,
    tenantId: string,
    installed: boolean,
    skipConversationId: string,
    now: Date,
  ): Promise<number> {
    // Team-wide events are rare (install, uninstall, delete, restore): a filtered query is fine here.
    let changed = 0;
    const rows = conversations.listEntities<Record<string, unknown>>({
      queryOptions: { filter: odata`teamId eq ${teamId} and tenantId eq ${tenantId}`, select: ['conversationId'] },
    });
    const ids: string[] = [];
    await guardStorage('listEntities', async () => {
      for await (const row of rows) ids.push(String(row.conversationId ?? ''));
    });
    for (const conversationId of ids) {
      if (conversationId === '' || conversationId === skipConversationId) continue;
      const { outcome } = await update(conversationId, (existing) =>
        existing === undefined ? undefined : withInstallState(existing, installed, now),
      );
      if (outcome !== 'unchanged') changed += 1;
    }
    return changed;
  }

  return {
    async capture(plan, now) {
      await ensureReady();
      const { outcome } = await update(
        plan.reference.conversationId,
        (existing) => mergeReference(existing, plan.reference, now),
        beforeReferenceWrite(now),
      );
      const teamUpdated =
        plan.team === undefined
          ? 0
          : await setTeamInstallState(
              plan.team.teamId,
              plan.reference.tenantId,
              plan.team.installed,
              plan.reference.conversationId,
              now,
            );
      return { outcome, teamUpdated };
    },

    async get(conversationId) {
      await ensureReady();
      const entity = await getEntity(conversations, toTableKey(conversationId), REF_ROW);
      return entity === undefined ? undefined : fromEntity(entity);
    },

    async findPersonalChat(aadObjectId, tenantId) {
      await ensureReady();
      const partitionKey = toTableKey(aadObjectId);
      let entries: { tenantId: string; conversationId: string }[];
      if (tenantId !== undefined) {
        const entity = await getEntity(userChats, partitionKey, toTableKey(tenantId));
        entries = entity === undefined ? [] : [{ tenantId, conversationId: String(entity.conversationId) }];
      } else {
        entries = [];
        const rows = userChats.listEntities<Record<string, unknown>>({
          queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
        });
        await guardStorage('listEntities', async () => {
          for await (const row of rows) {
            entries.push({ tenantId: fromTableKey(row.rowKey ?? ''), conversationId: String(row.conversationId) });
            if (entries.length > 50) break;
          }
        });
      }
      if (entries.length === 0) return { kind: 'none', tenantIds: [] };
      if (entries.length > 1) return { kind: 'ambiguous', tenantIds: entries.map((e) => e.tenantId) };
      const reference = await this.get(entries[0]!.conversationId);
      return reference === undefined
        ? { kind: 'none', tenantIds: [entries[0]!.tenantId] }
        : { kind: 'found', reference };
    },

    async markUndeliverable(conversationId, reason, now) {
      await ensureReady();
      await update(conversationId, (existing) =>
        existing === undefined || existing.undeliverableReason === reason
          ? undefined
          : { ...existing, undeliverableReason: reason, undeliverableAt: now.toISOString() },
      );
    },

    async findServiceUrlForTenant(tenantId) {
      await ensureReady();
      const row = await getEntity(conversations, TENANT_PARTITION, toTableKey(tenantId));
      if (typeof row?.serviceUrl === 'string' && row.serviceUrl !== '') return row.serviceUrl;
      // References stored before the tenant row existed: find one once (a filtered query, stopped at
      // the first hit) and remember it, so the next chat for this tenant is a point read.
      const rows = conversations.listEntities<Record<string, unknown>>({
        queryOptions: { filter: odata`tenantId eq ${tenantId} and installed eq true`, select: ['serviceUrl'] },
      });
      const found = await guardStorage('listEntities', async () => {
        for await (const r of rows) if (typeof r.serviceUrl === 'string' && r.serviceUrl !== '') return r.serviceUrl;
        return undefined;
      });
      if (found !== undefined) {
        await writeTenantServiceUrl(conversations, tenantId, found);
        tenantRows.wrote(tenantId, found, new Date());
      }
      return found;
    },

    async upsertCreated(reference) {
      await ensureReady();
      await update(
        reference.conversationId,
        (existing) => (existing === undefined ? reference : undefined),
        beforeReferenceWrite(new Date()),
      );
    },
  };
}
