/**
 * What must exist whenever a conversation reference does (docs/storage.md): the user -> personal
 * chat index (table `userchats`), and the tenant's latest serviceUrl (a `%tenants` row of
 * `conversations`), read when the sender creates a chat for a user never seen.
 */
import type { ConversationReference } from '../core/reference';
import { toTableKey } from '../core/tableKeys';
import { guardStorage, type TableClient } from './tableClients';

/**
 * One row per tenant: the serviceUrl Teams last used there. toTableKey never makes a key that is
 * `%` followed by a letter past F, so no conversation id can land in this partition.
 */
export const TENANT_PARTITION = '%tenants';

/** How long an instance takes the tenant row it wrote as current. */
export const TENANT_ROW_FRESH_MS = 10 * 60_000;
/** Tenants remembered at most; past that the memory starts again (a write each, nothing lost). */
export const TENANT_ROWS_REMEMBERED = 10_000;

/**
 * The tenant rows this instance wrote, and when. Every new chat in a tenant would otherwise write
 * the same row again: in an install wave that is one write per new chat, all into the one
 * `%tenants` partition (Azure's target: 2,000 entities per second per partition). A row another
 * instance rewrote meanwhile holds a serviceUrl Teams used there just as well, and the sender's
 * reader rebuilds a missing row from the references.
 */
export class TenantRowMemory {
  private readonly rows = new Map<string, { readonly serviceUrl: string; readonly at: number }>();

  isCurrent(tenantId: string, serviceUrl: string, now: Date): boolean {
    const row = this.rows.get(tenantId);
    if (row?.serviceUrl !== serviceUrl) return false;
    const age = now.getTime() - row.at;
    return age >= 0 && age < TENANT_ROW_FRESH_MS;
  }

  wrote(tenantId: string, serviceUrl: string, now: Date): void {
    if (this.rows.size >= TENANT_ROWS_REMEMBERED && !this.rows.has(tenantId)) this.rows.clear();
    this.rows.set(tenantId, { serviceUrl, at: now.getTime() });
  }

  get size(): number {
    return this.rows.size;
  }
}

export async function rememberTenantServiceUrl(
  conversations: TableClient,
  reference: ConversationReference,
  previous: ConversationReference | undefined,
  memory: TenantRowMemory,
  now: Date,
): Promise<void> {
  if (
    !reference.installed ||
    (previous?.serviceUrl === reference.serviceUrl && previous.tenantId === reference.tenantId && previous.installed)
  )
    return;
  if (memory.isCurrent(reference.tenantId, reference.serviceUrl, now)) return;
  await writeTenantServiceUrl(conversations, reference.tenantId, reference.serviceUrl);
  memory.wrote(reference.tenantId, reference.serviceUrl, now);
}

export async function writeTenantServiceUrl(
  conversations: TableClient,
  tenantId: string,
  serviceUrl: string,
): Promise<void> {
  await guardStorage('upsertEntity', () =>
    conversations.upsertEntity({ partitionKey: TENANT_PARTITION, rowKey: toTableKey(tenantId), serviceUrl }, 'Replace'),
  );
}

export async function indexPersonalChat(
  userChats: TableClient,
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
