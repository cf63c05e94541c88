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

export async function rememberTenantServiceUrl(
  conversations: TableClient,
  reference: ConversationReference,
  previous: ConversationReference | undefined,
): Promise<void> {
  if (
    !reference.installed ||
    (previous?.serviceUrl === reference.serviceUrl && previous.tenantId === reference.tenantId && previous.installed)
  )
    return;
  await writeTenantServiceUrl(conversations, reference.tenantId, reference.serviceUrl);
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
