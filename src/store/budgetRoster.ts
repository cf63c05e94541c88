/**
 * The roster behind the send budget shared by every instance (docs/scale.md): table `budget`,
 * one partition per tenant.
 * - RowKey = an instance id: that instance sends to the tenant; `expiresAt` (ms, the writer's clock).
 * - RowKey = `~pause`: Teams throttled the whole tenant; `until` (ms, the writer's clock).
 * - RowKey = `~pause:<escaped conversation id>`: Teams throttled that conversation.
 * One query of the partition returns all of it; instances never write each other's rows, except to
 * remove rows expired long ago.
 */
import { odata } from '@azure/data-tables';
import { fromTableKey, toTableKey } from '../core/tableKeys';
import { ensureTable, guardStorage, statusOf, type TableClient } from './tableClients';

export interface RosterMember {
  readonly instanceId: string;
  readonly expiresAt: number;
}

export interface RosterSnapshot {
  readonly members: readonly RosterMember[];
  /** Tenant pause, if any (writer's clock). */
  readonly tenantPausedUntil?: number;
  /** Conversation pauses (writer's clock). */
  readonly conversationPauses: ReadonlyMap<string, number>;
}

export interface BudgetRoster {
  /** Writes (or renews) this instance's row. */
  renew(tenantId: string, instanceId: string, expiresAt: number): Promise<void>;
  /** The whole partition: members and pauses. */
  read(tenantId: string): Promise<RosterSnapshot>;
  /** Removes a row: this instance leaving, or a row long expired. */
  remove(tenantId: string, rowKey: string): Promise<void>;
  /** Records a 429 pause for every instance to see. */
  pause(tenantId: string, scope: { conversationId?: string }, until: number): Promise<void>;
}

const PAUSE = '~pause';

export function createBudgetRoster(table: TableClient): BudgetRoster {
  let ready: Promise<void> | undefined;
  const ensureReady = (): Promise<void> =>
    (ready ??= ensureTable(table).catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));

  return {
    async renew(tenantId, instanceId, expiresAt) {
      await ensureReady();
      await guardStorage('upsertEntity', () =>
        table.upsertEntity({ partitionKey: toTableKey(tenantId), rowKey: instanceId, expiresAt }, 'Replace'),
      );
    },

    async read(tenantId) {
      await ensureReady();
      const members: RosterMember[] = [];
      const conversationPauses = new Map<string, number>();
      let tenantPausedUntil: number | undefined;
      const rows = table.listEntities<Record<string, unknown>>({
        queryOptions: { filter: odata`PartitionKey eq ${toTableKey(tenantId)}` },
      });
      await guardStorage('listEntities', async () => {
        for await (const row of rows) {
          const key = row.rowKey ?? '';
          if (key === PAUSE && typeof row.until === 'number') tenantPausedUntil = row.until;
          else if (key.startsWith(`${PAUSE}:`) && typeof row.until === 'number')
            conversationPauses.set(fromTableKey(key.slice(PAUSE.length + 1)), row.until);
          else if (!key.startsWith('~') && typeof row.expiresAt === 'number')
            members.push({ instanceId: key, expiresAt: row.expiresAt });
        }
      });
      return { members, conversationPauses, ...(tenantPausedUntil === undefined ? {} : { tenantPausedUntil }) };
    },

    async remove(tenantId, rowKey) {
      await ensureReady();
      try {
        await guardStorage('deleteEntity', () => table.deleteEntity(toTableKey(tenantId), rowKey));
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },

    async pause(tenantId, scope, until) {
      await ensureReady();
      const rowKey = scope.conversationId === undefined ? PAUSE : `${PAUSE}:${toTableKey(scope.conversationId)}`;
      await guardStorage('upsertEntity', () =>
        table.upsertEntity({ partitionKey: toTableKey(tenantId), rowKey, until }, 'Replace'),
      );
    },
  };
}
