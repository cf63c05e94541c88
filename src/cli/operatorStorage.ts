/**
 * The clients the operator commands (`poison`, `stats`) need beyond src/cli/storage.ts: the poison
 * queue, the job queue (to put jobs back and count them) and the `stats` table. Built on first use
 * from the same settings; the store modules do the construction.
 *
 * Permissions with Entra ID: `stats` needs Storage Table Data Reader and Storage Queue Data Reader;
 * `poison list` / `show` need Storage Queue Data Contributor on the poison queue (reading is
 * receiving: docs/operate.md); `poison replay` also needs Storage Queue Data Message Sender on the
 * job queue and Storage Table Data Contributor.
 */
import { createStorageCredential } from '../store/storageCredential';
import { createJobQueue, createQueueClient, type JobQueue } from '../store/jobQueue';
import { approximateMessageCount, createPoisonQueue, type PoisonQueue } from '../store/poisonQueue';
import { createTableClient, statusOf, type TableClient } from '../store/tableClients';
import { TABLES } from '../store/tables';
import type { CliContext } from './context';
import { CliFailure } from './io';

export interface OperatorStorage {
  readonly queueName: string;
  readonly poisonQueueName: string;
  poison(): PoisonQueue;
  jobs(): JobQueue;
  /** Messages on the job queue now (approximate; scheduled and delayed retries included). */
  jobCount(): Promise<number>;
  statsTable(): TableClient;
}

const built = new WeakMap<CliContext, OperatorStorage>();

export function operatorStorage(ctx: CliContext): OperatorStorage {
  const existing = built.get(ctx);
  if (existing !== undefined) return existing;
  const { settings } = ctx.storage();
  const poisonQueueName = `${settings.queueName}-poison`;
  let credential: ReturnType<typeof createStorageCredential> | undefined;
  const getCredential = (): ReturnType<typeof createStorageCredential> =>
    (credential ??= createStorageCredential(settings.storage));
  let jobsClient: ReturnType<typeof createQueueClient> | undefined;
  let poisonClient: ReturnType<typeof createQueueClient> | undefined;
  const jobsQueueClient = (): ReturnType<typeof createQueueClient> =>
    (jobsClient ??= createQueueClient(settings.storage, settings.queueName, getCredential));
  const poisonQueueClient = (): ReturnType<typeof createQueueClient> =>
    (poisonClient ??= createQueueClient(settings.storage, poisonQueueName, getCredential));
  let poison: PoisonQueue | undefined;
  let jobs: JobQueue | undefined;
  let stats: TableClient | undefined;
  const storage: OperatorStorage = {
    queueName: settings.queueName,
    poisonQueueName,
    poison: () => (poison ??= createPoisonQueue(poisonQueueClient())),
    jobs: () => (jobs ??= createJobQueue({ jobs: jobsQueueClient(), poison: poisonQueueClient() })),
    jobCount: () => approximateMessageCount(jobsQueueClient()),
    statsTable: () => (stats ??= createTableClient(settings.storage, TABLES.stats, getCredential)),
  };
  built.set(ctx, storage);
  return storage;
}

/** A refusal by storage, as one line naming the roles the command needs; other errors pass through. */
export function explainRefusal(error: unknown, roles: string): never {
  const status = statusOf(error);
  if (status === 401 || status === 403) {
    throw new CliFailure(
      `teams-courier: storage refused the request (HTTP ${status}): the signed-in identity needs ${roles} (docs/operate.md); new role assignments take a few minutes`,
    );
  }
  throw error;
}
