/**
 * Paging through stored conversation references (broadcasts to everyone installed, the operator
 * CLI). A filtered query over the table, read a page at a time with continuation tokens, so a
 * fan-out over thousands of conversations never has to hold them all or outlive a function.
 */
import { odata } from '@azure/data-tables';
import type { ConversationType } from '../core/activity';
import { guardStorage, type TableClient } from './tableClients';

export interface ListFilter {
  readonly installedOnly?: boolean;
  readonly tenantId?: string;
  readonly conversationType?: ConversationType;
}

export interface ListedConversation {
  readonly conversationId: string;
  readonly conversationType: ConversationType;
  readonly tenantId: string;
  readonly installed: boolean;
  readonly name?: string;
  readonly lastSeenAt?: string;
}

export interface ConversationPage {
  readonly conversations: readonly ListedConversation[];
  /** Opaque; pass it back for the next page. Absent on the last page. */
  readonly continuationToken?: string;
}

function toFilter(filter: ListFilter): string | undefined {
  // Reference rows only (the table also holds one serviceUrl row per tenant).
  const parts: string[] = [odata`RowKey eq ${'ref'}`];
  if (filter.installedOnly) parts.push(odata`installed eq ${true}`);
  if (filter.tenantId !== undefined) parts.push(odata`tenantId eq ${filter.tenantId}`);
  if (filter.conversationType !== undefined) parts.push(odata`conversationType eq ${filter.conversationType}`);
  return parts.length === 0 ? undefined : parts.join(' and ');
}

export async function listConversations(
  table: TableClient,
  filter: ListFilter,
  page: { pageSize: number; continuationToken?: string },
): Promise<ConversationPage> {
  const queryFilter = toFilter(filter);
  const iterator = table
    .listEntities<Record<string, unknown>>({
      queryOptions: {
        ...(queryFilter === undefined ? {} : { filter: queryFilter }),
        select: [
          'conversationId',
          'conversationType',
          'tenantId',
          'installed',
          'userName',
          'channelName',
          'teamName',
          'lastSeenAt',
        ],
      },
    })
    .byPage({
      maxPageSize: page.pageSize,
      ...(page.continuationToken === undefined ? {} : { continuationToken: page.continuationToken }),
    });
  return guardStorage('listEntities', async () => {
    const result = await iterator.next();
    if (result.done === true || result.value === undefined) return { conversations: [] };
    const conversations = result.value.map((row) => {
      const name = [row.teamName, row.channelName, row.userName]
        .filter((v) => typeof v === 'string' && v !== '')
        .join(' / ');
      return {
        conversationId: String(row.conversationId),
        conversationType: row.conversationType as ConversationType,
        tenantId: String(row.tenantId),
        installed: row.installed === true,
        ...(name === '' ? {} : { name }),
        ...(typeof row.lastSeenAt === 'string' ? { lastSeenAt: row.lastSeenAt } : {}),
      };
    });
    const token = result.value.continuationToken;
    return { conversations, ...(token === undefined ? {} : { continuationToken: token }) };
  });
}
