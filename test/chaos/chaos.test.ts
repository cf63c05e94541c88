/**
 * The chaos suite (docs/reliability.md): the app as `npm start` runs it (`node dist/host/main.js`),
 * against a real Azurite and the local HTTPS stubs, seeded so a failure can be replayed.
 *
 *   CHAOS_SIZE=small (default; `npm test` in CI) or full (`npm run test:chaos`, the published figures)
 *   CHAOS_SEED=<n>   (default 20261125; printed, with the command that replays it)
 *   CHAOS_KEEP=1     keeps the run folder (every log line, Azurite's data) for a look afterwards
 *
 * The parts run in order in one app and one Azurite; each prints a table. The log search at the
 * end covers every line the app and the stubs wrote during the whole suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryUnderFaults } from './delivery';
import { PLAN, REPORT, SEED, SIZE, ChaosRig } from './harness';
import { inboundUnderFaults } from './inbound';
import { fuzzMessagesEndpoint, fuzzQueue } from './fuzz';
import { foreignServiceUrl, logLeakSearch, specialConversationIds } from './trust';
import { sustainedLoad } from './load';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const replay = `CHAOS_SEED=${SEED} CHAOS_SIZE=${SIZE} npx vitest run test/chaos`;
let rig: ChaosRig | undefined;

function theRig(): ChaosRig {
  if (rig === undefined) throw new Error('the chaos rig did not start');
  return rig;
}

/** Each part starts from a running app, whatever the previous part left behind. */
async function ready(): Promise<ChaosRig> {
  const r = theRig();
  if (!r.storage.up) await r.storage.start();
  if (!r.app.alive) await r.app.start();
  return r;
}

beforeAll(async () => {
  console.log(`chaos suite: CHAOS_SIZE=${SIZE} CHAOS_SEED=${SEED}; replay with: ${replay}`);
  rig = new ChaosRig();
  console.log(`chaos suite: logs and Azurite data in ${rig.runDir} (kept when CHAOS_KEEP=1)`);
  await rig.start();
}, 180_000);

afterAll(async () => {
  if (rig === undefined) return;
  try {
    writeFileSync(path.join(rig.runDir, 'report.md'), `${REPORT.join('\n\n')}\n`);
  } catch {
    // The folder may be gone already.
  }
  await rig.close();
  rig.cleanUp();
  console.log(`chaos suite done (seed ${SEED}); replay with: ${replay}`);
}, 120_000);

describe(`chaos (size ${SIZE}, seed ${SEED}; replay: ${replay})`, () => {
  it(
    `1. delivery under faults: ${PLAN.jobs} jobs, a SIGKILL and a storage outage; sent once or failed with a reason`,
    async () => {
      await deliveryUnderFaults(await ready());
    },
    PLAN.partTimeoutMs + PLAN.drainLimitMs,
  );

  it(
    '2. inbound under faults: 5xx while storage is down, captured after recovery, never half-applied',
    async () => {
      await inboundUnderFaults(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    `3a. fuzzing /api/messages: ${PLAN.fuzzRequests} requests; no 5xx, nothing stored unsigned, process up, memory bounded`,
    async () => {
      await fuzzMessagesEndpoint(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    `3b. fuzzing the queue: ${PLAN.fuzzMessages} messages; each invalid one fails with its reason, valid ones delivered`,
    async () => {
      await fuzzQueue(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    '4a. a foreign serviceUrl written into the table: the job fails with a reason, the foreign host gets nothing',
    async () => {
      await foreignServiceUrl(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    '4b. conversation ids with / \\ # ? % ; and non-ASCII round-trip from capture to delivery',
    async () => {
      await specialConversationIds(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    `5. sustained load: ${PLAN.loadRps} activities/s for ${PLAN.loadSeconds} s into /api/messages`,
    async () => {
      await sustainedLoad(await ready());
    },
    PLAN.partTimeoutMs,
  );

  it(
    '4c. no token, password or storage key in any log line of the whole suite',
    async () => {
      const r = theRig();
      await r.app.stop();
      await logLeakSearch(r);
      expect(r.log.lines).toBeGreaterThan(0);
    },
    PLAN.partTimeoutMs,
  );
});
