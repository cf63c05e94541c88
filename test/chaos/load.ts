/**
 * Part 5, sustained load: signed activities into /api/messages at a fixed rate (open loop: a slow
 * answer does not slow the sender down), bounded in count and in time. A mix of repeats of known
 * conversations (one read, no write), new conversations (a write and the user index) and install
 * changes (a write). Reports errors, latency percentiles, and the app's memory at start and end.
 */
import { expect } from 'vitest';
import { personalInstallationUpdate, personalMessage, type Activity } from '../../host/emulator';
import { APP_ID, PLAN, SEED, percentile, printTable, rngFor, sleep, type ChaosRig } from './harness';

const TENANT = '7c0a0000-0000-4000-8000-00000000a005';
/** Requests the generator keeps in flight at most; beyond it a request is counted as not sent. */
const MAX_IN_FLIGHT = 2_000;

export async function sustainedLoad(rig: ChaosRig): Promise<void> {
  const rng = rngFor('load');
  const regions = ['amer', 'emea', 'apac', 'teams'].map((r) => rig.connector.serviceUrl(r));
  for (const serviceUrl of regions) await rig.token(serviceUrl);
  const total = PLAN.loadRps * PLAN.loadSeconds;
  const known: { id: string; user: number; serviceUrl: string; installed: boolean }[] = [];
  let created = 0;
  const kinds = { repeat: 0, created: 0, install: 0 };
  const build = (i: number): Activity => {
    const kind =
      known.length < 20
        ? 'created'
        : rng.weighted([
            [60, 'repeat'],
            [25, 'created'],
            [15, 'install'],
          ] as const);
    kinds[kind] += 1;
    if (kind === 'created') {
      const entry = {
        id: `a:chaos-load-${SEED}-${created}`,
        user: created,
        serviceUrl: rng.pick(regions),
        installed: true,
      };
      created += 1;
      known.push(entry);
      return personalMessage({
        appId: APP_ID,
        tenantId: TENANT,
        serviceUrl: entry.serviceUrl,
        conversationId: entry.id,
        user: user(entry.user),
        text: `load ${i}`,
      });
    }
    const entry = rng.pick(known);
    if (kind === 'repeat')
      return personalMessage({
        appId: APP_ID,
        tenantId: TENANT,
        serviceUrl: entry.serviceUrl,
        conversationId: entry.id,
        user: user(entry.user),
        text: `load ${i}`,
      });
    entry.installed = !entry.installed;
    return personalInstallationUpdate({
      appId: APP_ID,
      tenantId: TENANT,
      serviceUrl: entry.serviceUrl,
      conversationId: entry.id,
      user: user(entry.user),
      action: entry.installed ? 'add' : 'remove',
    });
  };

  await sleep(2_000);
  const rssStart = rig.app.rssMb() ?? NaN;
  let rssPeak = rssStart;
  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  let notSent = 0;
  const pending = new Set<Promise<void>>();
  const started = performance.now();
  const deadline = started + PLAN.loadSeconds * 1_000;
  let lastSample = started;
  for (let i = 0; i < total;) {
    const now = performance.now();
    if (now > deadline + 5_000) break;
    if (now - lastSample >= 1_000) {
      lastSample = now;
      const rss = rig.app.rssMb();
      if (rss !== undefined && rss > rssPeak) rssPeak = rss;
    }
    // Every request whose time has come is sent now: the rate does not depend on the answers.
    const due = Math.min(total, Math.floor(((now - started) * PLAN.loadRps) / 1_000) + 1);
    for (; i < due; i += 1) {
      if (inFlight >= MAX_IN_FLIGHT) {
        notSent += 1;
        continue;
      }
      const activity = build(i);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const task = rig.postSigned(activity).then((answer) => {
        inFlight -= 1;
        const key = answer.status === 0 ? 'network error' : String(answer.status);
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (answer.status === 200) latencies.push(answer.ms);
      });
      pending.add(task);
      void task.finally(() => pending.delete(task));
    }
    await sleep(2);
  }
  const sendingMs = performance.now() - started;
  await Promise.race([Promise.all(pending), sleep(60_000)]);
  const elapsedMs = performance.now() - started;
  const rssEnd = rig.app.rssMb() ?? NaN;
  rssPeak = Math.max(rssPeak, rssEnd);

  latencies.sort((a, b) => a - b);
  const ok = statuses.get('200') ?? 0;
  const errors = [...statuses].filter(([s]) => s !== '200').reduce((a, [, n]) => a + n, 0) + notSent + pending.size;
  const stored = (await rig.scan('conversations', ['conversationId'])).filter((r) =>
    String(r.conversationId).startsWith(`a:chaos-load-${SEED}-`),
  ).length;

  printTable('5. Sustained load on /api/messages', [
    ['target rate × duration', `${PLAN.loadRps}/s × ${PLAN.loadSeconds} s = ${total} activities`],
    ['mix: repeats / new conversations / install changes', `${kinds.repeat} / ${kinds.created} / ${kinds.install}`],
    ['sent in / all answered in', `${(sendingMs / 1000).toFixed(1)} s / ${(elapsedMs / 1000).toFixed(1)} s`],
    ['achieved rate (answers per second while sending)', (ok / (sendingMs / 1000)).toFixed(0)],
    ['answers', [...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')],
    ['**errors** (non-200, network, not sent, unanswered)', errors],
    [
      'latency p50 / p90 / p99 / max (ms)',
      [50, 90, 99, 100].map((p) => percentile(latencies, p).toFixed(1)).join(' / '),
    ],
    ['most requests in flight at once', maxInFlight],
    ['new conversations stored', `${stored} of ${created}`],
    ['app RSS at start / peak / end (MiB)', `${rssStart.toFixed(0)} / ${rssPeak.toFixed(0)} / ${rssEnd.toFixed(0)}`],
  ]);

  expect(errors).toBe(0);
  expect(stored).toBe(created);
  expect(rig.app.alive).toBe(true);
  expect(rssEnd).toBeLessThan(rssStart + 300);
}

function user(i: number): { id: string; name: string; aadObjectId: string } {
  return {
    id: `29:chaos-load-${i}`,
    name: `Load User ${i}`,
    aadObjectId: `a5000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  };
}
