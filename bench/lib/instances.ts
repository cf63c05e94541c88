/**
 * The scale-out rig, for `bench/scaleOut.ts` and `test/scale/` (through `test/helpers/instances.ts`):
 *
 * - `scaleWorld.ts`: ONE Azurite, ONE stub world in its own process, N app instances
 *   (`appInstances.ts`), all sharing one storage account through a counting proxy
 *   (`storageCounter.ts`);
 * - `broadcastRun.ts`: one broadcast run on that world and its figures (`figures.ts`);
 * - `build.ts`: the compiled app and stub they run.
 */
export { AppInstance } from './appInstances';
export {
  type BroadcastPlan,
  type BroadcastRun,
  type ChildRecords,
  type ParentProgress,
  type TenantFigures,
  runBroadcast,
} from './broadcastRun';
export { HOST_MAIN_JS, STUB_PROCESS_JS, ensureBuilt } from './build';
export { perSecond, shareOfCap } from './figures';
export {
  OUTBOUND_QUEUE,
  TENANT_CAP_PER_SECOND,
  scalePrefix,
  scaleTenantId,
  startScaleWorld,
  type ScaleWorld,
  type ScaleWorldOptions,
} from './scaleWorld';
export {
  StorageCounter,
  classifyStorageRequest,
  parseBatchBody,
  storageBreakdown,
  type OperationCount,
  type StorageCounts,
  type StorageService,
} from './storageCounter';
export type { StubReady, StubSnapshot, TenantTraffic } from './stubWorld';
