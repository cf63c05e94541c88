/**
 * Part 2, inbound under faults.
 *
 * a) Azurite is stopped; signed activities posted meanwhile must get a 5xx (the Bot Connector
 *    retries on 5xx), never a 2xx. After Azurite is back, the same requests are captured.
 * b) Conversations go through install/uninstall steps, each from another regional serviceUrl,
 *    posted the way the Connector does (retry on 5xx), while Azurite is stopped once in the middle.
 *    After every 2xx the stored reference must show that step's install state and serviceUrl
 *    together; at the end, every conversation shows its last step.
 * c) A partial storage failure (only the user -> chat index table fails, through a proxy) must not
 *    leave an activity half-applied: once the retried activity is answered 2xx, both the reference
 *    and the index exist, and a job addressed to the user by aadObjectId reaches that chat.
 */
import { expect } from 'vitest';
import { personalInstallationUpdate, personalMessage, type Activity } from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';
import {
  APP_ID,
  PLAN,
  SEED,
  StorageProxy,
  mapLimit,
  printTable,
  sleep,
  waitFor,
  type ChaosRig,
  type PostAnswer,
} from './harness';

const REGIONS = ['amer', 'emea', 'apac', 'teams', 'amer/extra', 'emea/extra'];

interface Step {
  readonly activity: Activity;
  readonly installed: boolean;
  readonly serviceUrl: string;
}

/** Posts until the answer is not a 5xx (or a connection error), as the Bot Connector retries; bounded. */
async function postLikeTheConnector(
  rig: ChaosRig,
  activity: Activity,
  counts: { retries: number },
): Promise<PostAnswer> {
  let answer: PostAnswer = { status: 0, body: '', ms: 0 };
  for (let attempt = 0; attempt < 80; attempt += 1) {
    answer = await rig.postSigned(activity);
    if (answer.status !== 0 && answer.status < 500) return answer;
    counts.retries += 1;
    await sleep(250);
  }
  return answer;
}

export async function inboundUnderFaults(rig: ChaosRig): Promise<void> {
  const tenantId = '7c0a0000-0000-4000-8000-00000000b002';
  const user = (i: number): { id: string; name: string; aadObjectId: string } => ({
    id: `29:chaos-inbound-user-${i}`,
    name: `Inbound User ${i}`,
    aadObjectId: `b0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  });
  const conversationId = (i: number): string => `a:chaos-inbound-${SEED}-${i}`;

  // ---- a) storage down: 5xx, never 2xx; after recovery the same requests are captured -----------
  const first = Array.from({ length: PLAN.inboundConversations }, (_, i) =>
    personalInstallationUpdate({
      appId: APP_ID,
      tenantId,
      serviceUrl: rig.connector.serviceUrl(REGIONS[0]),
      user: user(i),
      conversationId: conversationId(i),
      action: 'add',
    }),
  );
  // Warm the key cache, so "storage down" is the only thing wrong.
  const warm = await rig.postSigned(
    personalMessage({
      appId: APP_ID,
      tenantId,
      serviceUrl: rig.connector.serviceUrl('amer'),
      user: user(9_999),
      conversationId: `a:chaos-inbound-warm-${SEED}`,
      text: 'warm',
    }),
  );
  expect(warm.status).toBe(200);

  await rig.storage.stop();
  let whileDown: PostAnswer[];
  try {
    whileDown = await mapLimit(first, 8, (activity) => rig.postSigned(activity));
  } finally {
    await rig.storage.start();
  }
  const downStatuses = countBy(whileDown.map((a) => a.status));
  for (const [i, answer] of whileDown.entries()) {
    expect(answer.status, `activity ${i} while storage was down: ${answer.body}`).toBeGreaterThanOrEqual(500);
  }
  for (let i = 0; i < first.length; i += 1)
    expect(await rig.conversation(conversationId(i)), `nothing stored for ${conversationId(i)} yet`).toBeUndefined();
  const retryCounts = { retries: 0 };
  const afterRecovery = await mapLimit(first, 8, (activity) => postLikeTheConnector(rig, activity, retryCounts));
  for (const [i, answer] of afterRecovery.entries()) {
    expect(answer.status, `activity ${i} after recovery: ${answer.body}`).toBe(200);
    const stored = await rig.conversation(conversationId(i));
    expect(stored, conversationId(i)).toMatchObject({
      installed: true,
      serviceUrl: first[i]!.serviceUrl,
      userAadObjectId: user(i).aadObjectId,
    });
  }

  // ---- b) install/uninstall steps from moving serviceUrls, with an outage in the middle --------------
  const sequences: Step[][] = Array.from({ length: PLAN.inboundConversations }, (_, i) =>
    Array.from({ length: PLAN.inboundSteps }, (_, s) => {
      const installed = s % 2 === 1; // the conversation starts installed (part a); step 0 uninstalls
      const serviceUrl = rig.connector.serviceUrl(REGIONS[(i + s + 1) % REGIONS.length]);
      return {
        installed,
        serviceUrl,
        activity: personalInstallationUpdate({
          appId: APP_ID,
          tenantId,
          serviceUrl,
          user: user(i),
          conversationId: conversationId(i),
          action: installed ? 'add' : 'remove',
        }),
      };
    }),
  );
  const total = sequences.length * PLAN.inboundSteps;
  let posted = 0;
  let outageDone = false;
  const flapRetries = { retries: 0 };
  const halfApplied: string[] = [];
  const twoXxNotStored: string[] = [];
  const statuses: number[] = [];
  // Once a third of the steps is posted, the workers wait until Azurite is down before posting
  // more, so the outage falls in the middle of steps however fast they go.
  let storageIsDown!: () => void;
  const down = new Promise<void>((resolve) => (storageIsDown = resolve));
  const outageWindow = { stoppedAt: 0, startedAt: 0 };
  const outage = (async () => {
    await waitFor('a third of the steps posted', 120_000, () => (posted >= total / 3 ? true : undefined), 20);
    outageWindow.stoppedAt = Date.now();
    await rig.storage.stop();
    storageIsDown();
    await sleep(PLAN.outageMs);
    await rig.storage.start();
    outageWindow.startedAt = Date.now();
    outageDone = true;
  })();
  /** Steps whose posting (retries included) overlapped the outage. */
  const stepsInOutage: string[] = [];
  await mapLimit(sequences, 8, async (steps, i) => {
    for (const [s, step] of steps.entries()) {
      if (posted >= total / 3) await down;
      const began = Date.now();
      const retried = { retries: 0 };
      const answer = await postLikeTheConnector(rig, step.activity, retried);
      flapRetries.retries += retried.retries;
      const overlapped =
        outageWindow.stoppedAt > 0 &&
        began <= (outageWindow.startedAt || Number.POSITIVE_INFINITY) &&
        Date.now() >= outageWindow.stoppedAt;
      if (overlapped && retried.retries > 0) stepsInOutage.push(`${conversationId(i)} step ${s}`);
      posted += 1;
      statuses.push(answer.status);
      if (answer.status !== 200) {
        twoXxNotStored.push(`${conversationId(i)} step ${s}: answered ${answer.status} ${answer.body}`);
        continue;
      }
      // Answered 2xx: the step must be stored, install state and serviceUrl together.
      const stored = await waitFor('the stored reference', 60_000, () => rig.conversation(conversationId(i)), 100);
      if (stored.installed !== step.installed || stored.serviceUrl !== step.serviceUrl) {
        (stored.serviceUrl === step.serviceUrl || stored.installed === step.installed
          ? halfApplied
          : twoXxNotStored
        ).push(
          `${conversationId(i)} step ${s}: stored installed=${String(stored.installed)} serviceUrl=${String(stored.serviceUrl)}, expected ${step.installed} ${step.serviceUrl}`,
        );
      }
    }
  });
  await outage;
  expect(outageDone).toBe(true);
  // The outage hit steps in flight: they were answered 5xx and posted again, like the Connector does.
  expect(stepsInOutage.length, 'steps posted while Azurite was stopped').toBeGreaterThan(0);
  expect(flapRetries.retries).toBeGreaterThan(0);
  const finalMismatch: string[] = [];
  for (const [i, steps] of sequences.entries()) {
    const last = steps[steps.length - 1]!;
    const stored = await rig.conversation(conversationId(i));
    if (stored?.installed !== last.installed || stored.serviceUrl !== last.serviceUrl)
      finalMismatch.push(
        `${conversationId(i)}: ${JSON.stringify({ installed: stored?.installed, serviceUrl: stored?.serviceUrl })}`,
      );
  }

  // ---- c) only the index table fails: no half-applied personal chat ---------------------------------
  const proxy = await StorageProxy.start(() => rig.storage.ports.tablePort);
  const partial: { chats: number; answeredWhileFailing: number[]; indexMissing: string[]; jobs: string[] } = {
    chats: 6,
    answeredWhileFailing: [],
    indexMissing: [],
    jobs: [],
  };
  try {
    await rig.restartApp(rig.storage.connectionStringWithTablePort(proxy.port));
    const base = 5_000;
    const chats = Array.from({ length: partial.chats }, (_, k) => {
      const i = base + k;
      return personalMessage({
        appId: APP_ID,
        tenantId,
        serviceUrl: rig.connector.serviceUrl('emea'),
        user: user(i),
        conversationId: conversationId(i),
        text: 'hello',
      });
    });
    // Warm the app against the proxy (tables created, keys cached), then fail only userchats.
    expect(
      (
        await rig.postSigned(
          personalMessage({
            appId: APP_ID,
            tenantId,
            serviceUrl: rig.connector.serviceUrl('emea'),
            user: user(4_999),
            conversationId: conversationId(4_999),
            text: 'warm',
          }),
        )
      ).status,
    ).toBe(200);
    proxy.failWhen = (_method, url) => /\/userchats[(?]/i.test(url);
    for (const activity of chats) partial.answeredWhileFailing.push((await rig.postSigned(activity)).status);
    proxy.failWhen = undefined;
    const retries = { retries: 0 };
    for (const activity of chats) expect((await postLikeTheConnector(rig, activity, retries)).status).toBe(200);
    for (let k = 0; k < partial.chats; k += 1) {
      const i = base + k;
      const index = await rig.storage
        .table('userchats')
        .getEntity<Record<string, unknown>>(toTableKey(user(i).aadObjectId), toTableKey(tenantId))
        .catch(() => undefined);
      if (index?.conversationId !== conversationId(i)) partial.indexMissing.push(conversationId(i));
    }
    // And the proof that matters to a flow: a job to the user by aadObjectId reaches that chat.
    const jobIds = chats.map((_, k) => `p2-${SEED}-user-${k}`);
    await rig.enqueue(
      chats.map((_, k) =>
        JSON.stringify({
          id: jobIds[k],
          to: { aadObjectId: user(base + k).aadObjectId, tenantId },
          text: `[job:${jobIds[k]}] by aadObjectId`,
        }),
      ),
    );
    for (const [k, jobId] of jobIds.entries()) {
      const record = await waitFor(
        `job ${jobId}`,
        60_000,
        async () => {
          const r = await rig.deliveryRecord(jobId);
          return r?.status === 'sent' || r?.status === 'failed' ? r : undefined;
        },
        250,
      );
      const delivered = rig.connector.delivered.filter(
        (d) => typeof d.activity?.text === 'string' && d.activity.text.startsWith(`[job:${jobId}]`),
      );
      if (record.status !== 'sent' || !delivered.some((d) => d.conversationId === conversationId(base + k))) {
        partial.jobs.push(
          `${jobId}: ${String(record.status)} ${String(record.lastErrorCode ?? '')} -> ${delivered.map((d) => d.conversationId).join(', ') || 'nothing delivered'} (expected ${conversationId(base + k)})`,
        );
      }
    }
  } finally {
    proxy.failWhen = undefined;
    await rig.restartApp(rig.storage.connectionString);
    await proxy.close();
  }

  printTable('2. Inbound under faults', [
    ['activities posted while Azurite was stopped', whileDown.length],
    ['  answered (status: count)', [...downStatuses].map(([s, n]) => `${s}: ${n}`).join(', ')],
    ['  answered 2xx', whileDown.filter((a) => a.status >= 200 && a.status < 300).length],
    ['  captured after recovery (same requests)', afterRecovery.filter((a) => a.status === 200).length],
    [
      'install/uninstall steps, serviceUrl moving each step',
      `${total} (${sequences.length} conversations × ${PLAN.inboundSteps})`,
    ],
    [
      '  Azurite stopped during the steps',
      `1 × ${((outageWindow.startedAt - outageWindow.stoppedAt) / 1000).toFixed(1)} s`,
    ],
    ['  steps posted while it was stopped (answered 5xx, posted again)', stepsInOutage.length],
    ['  5xx answers retried like the Connector', flapRetries.retries],
    ['  2xx answers whose step was not stored', twoXxNotStored.length],
    ['  half-applied (install state and serviceUrl disagree)', halfApplied.length],
    ['  conversations not at their last step', finalMismatch.length],
    ['only the user index table failing: answers', partial.answeredWhileFailing.join(', ')],
    ['  personal chats without their index entry after the retry', partial.indexMissing.length],
    ['  jobs by aadObjectId that missed the chat', partial.jobs.length],
  ]);

  expect(twoXxNotStored, twoXxNotStored.slice(0, 10).join('\n')).toEqual([]);
  expect(halfApplied, halfApplied.slice(0, 10).join('\n')).toEqual([]);
  expect(finalMismatch, finalMismatch.slice(0, 10).join('\n')).toEqual([]);
  for (const status of partial.answeredWhileFailing) expect(status).toBeGreaterThanOrEqual(500);
  expect(
    partial.indexMissing,
    `personal chats stored without their userchats entry: ${partial.indexMissing.join(', ')}`,
  ).toEqual([]);
  expect(partial.jobs, partial.jobs.join('\n')).toEqual([]);
}

function countBy(values: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return new Map([...counts].sort(([a], [b]) => a - b));
}
