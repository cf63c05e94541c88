/**
 * The scale-out rig for tests: one Azurite, one stub world (Entra + Bot Connector with Teams' limits,
 * in its own process) and N app instances (`node dist/host/main.js` each), with a counting storage
 * proxy in front of Azurite. The code lives in bench/lib/ (instances.ts lists its modules) so that
 * `npm run bench` uses the very same rig; this module adds nothing vitest-specific.
 */
export {
  AppInstance,
  OUTBOUND_QUEUE,
  StorageCounter,
  TENANT_CAP_PER_SECOND,
  classifyStorageRequest,
  ensureBuilt,
  parseBatchBody,
  perSecond,
  runBroadcast,
  scalePrefix,
  scaleTenantId,
  shareOfCap,
  startScaleWorld,
  storageBreakdown,
  type BroadcastPlan,
  type BroadcastRun,
  type ChildRecords,
  type OperationCount,
  type ParentProgress,
  type ScaleWorld,
  type ScaleWorldOptions,
  type StorageCounts,
  type StubSnapshot,
  type TenantFigures,
} from '../../bench/lib/instances';
