/**
 * `npm run emulator -- batch <text>`: a Teams batch job to users of the emulator tenant on the app's
 * queue, then its delivery record as GET /api/notify/{id} shows it, the counts printed each time
 * they change, until the job is done (bounded in time).
 */
import type { QueueClient } from '@azure/storage-queue';
import type { StorageConfig } from '../../src/config';
import { toStatusView } from '../../src/flows/statusView';
import { createDeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { EMULATOR_TENANT_ID, EMULATOR_USER } from './activities';

export interface BatchWatchIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const WATCH_MS = 5 * 60_000;

export interface SendBatchDeps {
  /** Sends the app an installationUpdate (add) from the emulator user: the app learns the tenant's serviceUrl. */
  readonly install: () => Promise<{ readonly status: number; readonly json: unknown }>;
  readonly queue: QueueClient;
  readonly storage: StorageConfig;
}

/**
 * The emulator user, a few users the emulator derives from new Entra object ids, one it fails
 * (`fail` in the id) and one it throttles once (`throttle`).
 */
export async function sendBatch(text: string, io: BatchWatchIo, deps: SendBatchDeps): Promise<number> {
  if (text === '') {
    io.err('batch needs a message, e.g. npm run emulator -- batch "Maintenance tonight at 22:00"');
    return 1;
  }
  const installed = await deps.install();
  if (installed.status !== 200) {
    io.err(`emulator: could not tell the app about the emulator tenant (${JSON.stringify(installed.json)})`);
    return 1;
  }
  const id = `emulator-batch-${Date.now()}`;
  const users = [
    EMULATOR_USER.aadObjectId,
    ...Array.from({ length: 5 }, (_, i) => `00000000-0000-4000-8000-${String(0xb00 + i).padStart(12, '0')}`),
    '29:emulator-fail-1',
    '29:emulator-throttle-1',
  ];
  await deps.queue.createIfNotExists();
  await deps.queue.sendMessage(
    JSON.stringify({ id, to: { batch: 'users', users, tenantId: EMULATOR_TENANT_ID }, text }),
  );
  io.out(`queued batch job ${id} for ${users.length} users of tenant ${EMULATOR_TENANT_ID} on ${deps.queue.name}`);
  io.out(
    'the app polls Teams after BATCH_POLL_INTERVAL_MS (10 s by default; lower it in local.settings.json for a quicker run)',
  );
  return watchBatch(deps.storage, id, io);
}

function line(body: Record<string, unknown>): string {
  const n = (key: string): number => (typeof body[key] === 'number' ? (body[key] as number) : 0);
  const operations = Array.isArray(body.operations) ? body.operations.length : 0;
  return `${String(body.status)}: sent ${n('sent')}/${n('total')}, failed ${n('failed')}, throttled ${n('throttled')}, pending ${n('pending')} (${operations} operation${operations === 1 ? '' : 's'})`;
}

export async function watchBatch(
  storage: StorageConfig,
  id: string,
  io: BatchWatchIo,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<number> {
  const deliveries = createDeliveryStore(createTableClient(storage, TABLES.deliveries));
  const deadline = Date.now() + (options.timeoutMs ?? WATCH_MS);
  let last = '';
  while (Date.now() < deadline) {
    const record = await deliveries.get(id);
    if (record !== undefined) {
      const view = toStatusView(record, undefined, new Date());
      const now = line(view.body);
      if (now !== last) io.out(`${id} ${now}`);
      last = now;
      if (view.done) {
        const error = view.body.error as { code?: string; reason?: string } | undefined;
        if (error?.code !== undefined) io.out(`  last error ${error.code}: ${error.reason ?? ''}`);
        const failures = await deliveries.listFailures(id, 20);
        for (const f of failures) io.out(`  failed ${f.id}: ${f.error}`);
        return view.body.status === 'sent' || view.body.status === 'partial' ? 0 : 1;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 1_000));
  }
  io.err(`${id} was not done after ${Math.round((options.timeoutMs ?? WATCH_MS) / 1000)} s; is npm start running?`);
  return 1;
}
