/**
 * One broadcast run on a scale world: seed the recipients, clear every counter, enqueue one broadcast
 * per tenant at once, wait (bounded) until every child job is recorded sent or failed, then collect
 * the figures: pace per tenant, 429s, exactly once, child records, storage transactions, CPU.
 */
import { StopWaiting, waitFor } from '../../host/emulator/waitFor';
import type { DeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { processCpuMs, sleep } from './common';
import { perSecond, shareOfCap } from './figures';
import { TENANT_CAP_PER_SECOND, scalePrefix, type ScaleWorld } from './scaleWorld';
import type { StorageCounts } from './storageCounter';

export interface BroadcastPlan {
  /** One broadcast per tenant, all enqueued at once. */
  readonly tenants: readonly { readonly tenantId: string; readonly recipients: number }[];
  /** Limit for every broadcast to finish (all children recorded sent or failed); default 120 s. */
  readonly deadlineMs?: number;
  /** Job id prefix; default `scale-<time>`. */
  readonly runId?: string;
}

export interface ParentProgress {
  readonly id: string;
  readonly tenantId: string;
  readonly recipients: number;
  readonly status?: string;
  readonly fanOutComplete: boolean;
  readonly total?: number;
  readonly sent: number;
  readonly failed: number;
  readonly pending: number;
}

export interface ChildRecords {
  /** Child jobs' own delivery records (RowKey `job`, job id `<broadcast id>~<n>`), by status. */
  readonly byStatus: Record<string, number>;
  /** Children with more than one attempt (429s retried, ...). */
  readonly retried: number;
  readonly attempts: number;
  readonly ambiguousResends: number;
}

export interface TenantFigures {
  readonly tenantId: string;
  readonly recipients: number;
  readonly delivered: number;
  readonly requests: number;
  readonly throttled: number;
  /** First to last delivery at the stub, ms. */
  readonly spanMs: number;
  /** (delivered - 1) / span / cap. */
  readonly shareOfCap: number;
  /** Middle 80 % of the deliveries (10th to 90th by arrival): their count / their span / cap. */
  readonly steadyShareOfCap: number;
  readonly steadyRate: number;
  /** Deliveries in each second after the broadcast was enqueued (at most 300 seconds). */
  readonly perSecond: readonly number[];
}

export interface BroadcastRun {
  readonly instances: number;
  readonly recipients: number;
  /** Enqueue of the broadcast job(s) to the last delivery at the stub, ms. */
  readonly durationMs: number;
  /** Enqueue to the moment the rig saw every child recorded (polling: up to ~0.5 s late), ms. */
  readonly recordedMs: number;
  readonly timedOut: boolean;
  readonly parents: readonly ParentProgress[];
  readonly children: ChildRecords;
  readonly tenants: readonly TenantFigures[];
  /** Connector write requests (sends, creates ...) and 429s, whole run. */
  readonly connectorRequests: number;
  readonly throttled: number;
  readonly throttledShare: number;
  readonly throttledBy: Record<string, number>;
  readonly tokenRequests: number;
  /** Conversations with more than one delivery / seeded conversations with none / deliveries to conversations not seeded. */
  readonly duplicates: number;
  readonly missing: number;
  readonly unexpected: number;
  readonly deliveredExactlyOnce: boolean;
  readonly storage: StorageCounts;
  readonly storagePerMessage: number;
  /** Sender outcomes from the instances' logs, summed, and per instance. */
  readonly outcomes: Record<string, number>;
  readonly outcomesPerInstance: readonly Record<string, number>[];
  /** CPU ms over the run: instances (sum), Azurite, stub world. */
  readonly cpuMs: { readonly instances: number; readonly azurite: number; readonly stub: number };
  readonly problems: readonly string[];
}

async function parentProgress(
  deliveries: DeliveryStore,
  id: string,
  tenantId: string,
  recipients: number,
): Promise<ParentProgress> {
  const record = await deliveries.get(id);
  const counts = record === undefined ? { sent: 0, failed: 0, pending: 0 } : await deliveries.countChildren(id);
  return {
    id,
    tenantId,
    recipients,
    ...(record?.status === undefined ? {} : { status: record.status }),
    fanOutComplete: record?.fanOutComplete === true,
    ...(record?.total === undefined ? {} : { total: record.total }),
    sent: counts.sent,
    failed: counts.failed,
    pending: counts.pending,
  };
}

const isDone = (p: ParentProgress): boolean =>
  p.fanOutComplete && p.total !== undefined && p.sent + p.failed >= p.total;

/** Reads every child job's own record back (one scan of `deliveries`, straight from Azurite). */
async function readChildRecords(world: ScaleWorld, parentIds: readonly string[]): Promise<ChildRecords> {
  const parents = new Set(parentIds);
  const table = createTableClient(
    { kind: 'connectionString', connectionString: world.directConnectionString },
    TABLES.deliveries,
  );
  const byStatus: Record<string, number> = {};
  let retried = 0;
  let attempts = 0;
  let ambiguousResends = 0;
  let rows = 0;
  for await (const row of table.listEntities<Record<string, unknown>>({
    queryOptions: { select: ['RowKey', 'jobId', 'status', 'attempts', 'ambiguousResends'] },
  })) {
    rows += 1;
    if (rows > 200_000) break;
    // A child's own record does not name its parent; its id does (`<broadcast id>~<n>`, fanOut.ts).
    const parent = typeof row.jobId === 'string' ? /^(.*)~\d+$/.exec(row.jobId)?.[1] : undefined;
    if (row.rowKey !== 'job' || parent === undefined || !parents.has(parent)) continue;
    const status = String(row.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const a = Number(row.attempts ?? 0);
    attempts += a;
    if (a > 1) retried += 1;
    ambiguousResends += Number(row.ambiguousResends ?? 0);
  }
  return { byStatus, retried, attempts, ambiguousResends };
}

const usedTenants = new WeakMap<ScaleWorld, Set<string>>();

/**
 * Seeds the recipients, clears every counter, enqueues one broadcast per tenant at once, waits
 * (bounded) until each broadcast has every child recorded sent or failed, then collects the figures.
 */
export async function runBroadcast(world: ScaleWorld, plan: BroadcastPlan): Promise<BroadcastRun> {
  const runId = plan.runId ?? `scale-${Date.now().toString(36)}`;
  const deadlineMs = plan.deadlineMs ?? 120_000;
  for (const t of plan.tenants) {
    // A tenant's earlier recipients would be in its allInstalled broadcast too.
    if (usedTenants.has(world) && usedTenants.get(world)!.has(t.tenantId))
      throw new Error(`tenant ${t.tenantId} was already used in this world: use another tenant id or a new world`);
    (usedTenants.get(world) ?? usedTenants.set(world, new Set()).get(world)!).add(t.tenantId);
  }
  const seeded = new Set<string>();
  for (const [k, t] of plan.tenants.entries()) {
    for (const id of await world.seedPersonalChats({
      tenantId: t.tenantId,
      prefix: `${runId.slice(-4)}${scalePrefix(k)}`,
      count: t.recipients,
      salt: 100 + k,
    }))
      seeded.add(id);
  }
  // Let the instances settle into their idle polling, then count from zero.
  await sleep(500);
  await world.resetCounters();
  const cpu = (): { instances: number; azurite: number; stub: number } => ({
    instances: world.instances.reduce((sum, i) => sum + (processCpuMs(i.pid) ?? NaN), 0),
    azurite: processCpuMs(world.azurite.process.pid) ?? NaN,
    stub: processCpuMs(world.stub.pid) ?? NaN,
  });
  const cpuBefore = cpu();

  const broadcasts = plan.tenants.map((t, k) => ({
    id: `${runId}-t${k}`,
    tenantId: t.tenantId,
    recipients: t.recipients,
  }));
  const recipients = broadcasts.reduce((sum, b) => sum + b.recipients, 0);
  const t0 = Date.now();
  await Promise.all(
    broadcasts.map((b) =>
      world.enqueueBroadcast({
        id: b.id,
        tenantId: b.tenantId,
        text: `Scale-out broadcast ${b.id}: maintenance tonight at 22:00.`,
      }),
    ),
  );

  // Cheap progress from the stub (delivered count) every 200 ms; the exact check (the parents'
  // child counts, one partition query each) once everything may have arrived, and every 3 s in case
  // some children fail instead. An instance that exits, or the stub not answering, ends the wait.
  let progress: ParentProgress[] = [];
  let lastExactCheck = 0;
  const allRecorded = async (): Promise<true | undefined> => {
    world.assertAlive();
    const answer = await world.stub.request({ cmd: 'progress' }).catch((err: unknown) => {
      throw new StopWaiting(`the stub world did not answer: ${err instanceof Error ? err.message : String(err)}`);
    });
    const delivered = Number(answer.delivered);
    if (delivered < recipients && Date.now() - lastExactCheck < 3_000) return undefined;
    lastExactCheck = Date.now();
    // Azurite busy: an error here means "look again".
    progress = await Promise.all(
      broadcasts.map((b) => parentProgress(world.deliveries, b.id, b.tenantId, b.recipients)),
    );
    return progress.every(isDone) ? true : undefined;
  };
  const timedOut = await waitFor(
    'every broadcast to have every child recorded',
    t0 + deadlineMs - Date.now(),
    allRecorded,
    200,
  ).then(
    () => false,
    (err: unknown) => {
      if (err instanceof StopWaiting) throw err;
      return true;
    },
  );
  const recordedMs = Date.now() - t0;
  const storage = world.storage.snapshot();
  const cpuAfter = cpu();
  const stub = await world.snapshotStub();
  const children = await readChildRecords(
    world,
    broadcasts.map((b) => b.id),
  );

  let duplicates = 0;
  let missing = 0;
  let unexpected = 0;
  for (const id of seeded) {
    const n = stub.perConversation[id] ?? 0;
    if (n === 0) missing += 1;
    else if (n > 1) duplicates += 1;
  }
  for (const id of Object.keys(stub.perConversation)) if (!seeded.has(id)) unexpected += 1;

  const tenants = broadcasts.map((b): TenantFigures => {
    const traffic = stub.perTenant[b.tenantId] ?? { requests: 0, throttled: 0, delivered: 0, deliveryTimes: [] };
    const s = shareOfCap(traffic.deliveryTimes, TENANT_CAP_PER_SECOND);
    return {
      tenantId: b.tenantId,
      recipients: b.recipients,
      delivered: traffic.delivered,
      requests: traffic.requests,
      throttled: traffic.throttled,
      spanMs: s.spanMs,
      shareOfCap: s.share,
      steadyShareOfCap: s.steadyShare,
      steadyRate: s.steadyRate,
      perSecond: perSecond(traffic.deliveryTimes, t0),
    };
  });
  const connectorRequests = Object.values(stub.perTenant).reduce((sum, t) => sum + t.requests, 0);
  const throttled = Object.values(stub.perTenant).reduce((sum, t) => sum + t.throttled, 0);
  const outcomesPerInstance = world.instances.map((i) => ({ ...i.tally }));
  const outcomes: Record<string, number> = {};
  for (const tally of outcomesPerInstance)
    for (const [k, v] of Object.entries(tally)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const delivered = Object.values(stub.perConversation).reduce((sum, n) => sum + n, 0);
  const lastDelivery = Math.max(...Object.values(stub.perTenant).map((t) => t.deliveryTimes.at(-1) ?? -Infinity));

  return {
    instances: world.instances.length,
    recipients,
    durationMs: Number.isFinite(lastDelivery) ? lastDelivery - t0 : NaN,
    recordedMs,
    timedOut,
    parents: progress,
    children,
    tenants,
    connectorRequests,
    throttled,
    throttledShare: connectorRequests > 0 ? throttled / connectorRequests : NaN,
    throttledBy: stub.throttledBy,
    tokenRequests: stub.tokenRequests,
    duplicates,
    missing,
    unexpected,
    deliveredExactlyOnce: duplicates === 0 && missing === 0 && unexpected === 0 && seeded.size === recipients,
    storage,
    storagePerMessage: delivered > 0 ? storage.total / delivered : NaN,
    outcomes,
    outcomesPerInstance,
    cpuMs: {
      instances: cpuAfter.instances - cpuBefore.instances,
      azurite: cpuAfter.azurite - cpuBefore.azurite,
      stub: cpuAfter.stub - cpuBefore.stub,
    },
    problems: world.instances.flatMap((i) => i.problems.map((p) => `instance ${i.index}: ${p}`)).slice(0, 10),
  };
}
