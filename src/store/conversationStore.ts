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
import { odata, type TableEntityResult } from '@azure/data-tables';
import type { CapturePlan } from '../core/activity';
import { mergeReference, withInstallState, type ConversationReference } from '../core/reference';
import { fromTableKey, toTableKey } from '../core/tableKeys';
import { ensureTable, guardStorage, statusOf, type TableClient } from './tableClients';

const REF_ROW = 'ref';
/**
 * One row per tenant: the serviceUrl Teams last used there. toTableKey never makes a key that is
 * `%` followed by a letter past F, so no conversation id can land in this partition.
 */
const TENANT_PARTITION = '%tenants';
const MAX_WRITE_ATTEMPTS = 4;

type Entity = TableEntityResult<Record<string, unknown>>;

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

const REFERENCE_FIELDS = [
  'conversationId',
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
  'installed',
  'installedChangedAt',
  'firstSeenAt',
  'lastSeenAt',
  'undeliverableReason',
  'undeliverableAt',
] as const;

function toEntity(
  reference: ConversationReference,
): Record<string, unknown> & { partitionKey: string; rowKey: string } {
  const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
    partitionKey: toTableKey(reference.conversationId),
    rowKey: REF_ROW,
  };
  for (const field of REFERENCE_FIELDS) {
    const value = reference[field];
    if (value !== undefined) entity[field] = value;
  }
  return entity;
}

function fromEntity(entity: Entity): ConversationReference {
  const reference: Record<string, unknown> = {};
  for (const field of REFERENCE_FIELDS) {
    const value = entity[field];
    if (value !== undefined && value !== null) reference[field] = value;
  }
  return reference as unknown as ConversationReference;
}

async function getEntity(client: TableClient, partitionKey: string, rowKey: string): Promise<Entity | undefined> {
  try {
    return await guardStorage('getEntity', () => client.getEntity<Record<string, unknown>>(partitionKey, rowKey));
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Create-or-conditional-replace of a merged reference. Returns false when a concurrent writer won. */
async function writeReference(
  client: TableClient,
  next: ConversationReference,
  etag: string | undefined,
): Promise<boolean> {
  const entity = toEntity(next);
  try {
    if (etag === undefined) await guardStorage('createEntity', () => client.createEntity(entity));
    else await guardStorage('updateEntity', () => client.updateEntity(entity, 'Replace', { etag }));
    return true;
  } catch (err) {
    const status = statusOf(err);
    if (status === 409 || status === 412) return false;
    throw err;
  }
}

export function createConversationStore(clients: {
  conversations: TableClient;
  userChats: TableClient;
}): ConversationStore {
  const { conversations, userChats } = clients;
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
  async function beforeReferenceWrite(
    reference: ConversationReference,
    previous: ConversationReference | undefined,
  ): Promise<void> {
    await Promise.all([indexPersonalChat(reference, previous), rememberTenantServiceUrl(reference, previous)]);
  }

  async function rememberTenantServiceUrl(
    reference: ConversationReference,
    previous: ConversationReference | undefined,
  ): Promise<void> {
    if (
      !reference.installed ||
      (previous?.serviceUrl === reference.serviceUrl && previous.tenantId === reference.tenantId && previous.installed)
    )
      return;
    await writeTenantServiceUrl(reference.tenantId, reference.serviceUrl);
  }

  async function writeTenantServiceUrl(tenantId: string, serviceUrl: string): Promise<void> {
    await guardStorage('upsertEntity', () =>
      conversations.upsertEntity(
        { partitionKey: TENANT_PARTITION, rowKey: toTableKey(tenantId), serviceUrl },
        'Replace',
      ),
    );
  }

  async function indexPersonalChat(
    reference: ConversationReference,
    previous: ConversationReference | undefined,
  ): Promise<void> {
    if (reference.conversationType !== 'personal' || reference.userAadObjectId === undefined) return;
    if (
      previous !== undefined &&
      previous.userAadObjectId === reference.userAadObjectId &&
      previous.tenantId === reference.tenantId
    )
      return;
    await guardStorage('upsertEntity', () =>
      userChats.upsertEntity(
        {
          partitionKey: toTableKey(reference.userAadObjectId!),
          rowKey: toTableKey(reference.tenantId),
          conversationId: reference.conversationId,
        },
        'Replace',
      ),
    );
  }

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
        beforeReferenceWrite,
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
      if (found !== undefined) await writeTenantServiceUrl(tenantId, found);
      return found;
    },

    async upsertCreated(reference) {
      await ensureReady();
      await update(
        reference.conversationId,
        (existing) => (existing === undefined ? reference : undefined),
        beforeReferenceWrite,
      );
    },
  };
}
