/**
 * The budget shared by instances, on a simulated clock and an in-memory roster with Table
 * Storage's ordering (every read sees every write that completed before it started).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { conversationWindowsFor, tenantShare } from '../../src/core/budgetShare';
import {
  createSendBudget,
  IDLE_MS,
  JOIN_WAIT_MS,
  ROW_TTL_MS,
  SKEW_MS,
  type SendBudget,
} from '../../src/outbound/sendBudget';
import type { BudgetRoster, RosterSnapshot } from '../../src/store/budgetRoster';
import { WINDOW_SAFETY_MS, type GrantedSlot } from '../../src/core/rateLimiter';

describe('tenantShare', () => {
  it('divides the rate so that every view of the same members sums to at most the rate', () => {
    for (const rate of [1, 7, 30, 50, 1000]) {
      for (let n = 1; n <= 60; n += 1) {
        const members = Array.from({ length: n }, (_, i) => `i${String(i).padStart(2, '0')}`);
        const total = members.reduce((sum, m) => sum + tenantShare(rate, members, m), 0);
        expect(total, `rate ${rate}, ${n} instances`).toBeLessThanOrEqual(rate);
        if (n <= rate)
          expect(total, `rate ${rate}, ${n} instances`).toBeGreaterThanOrEqual(
            Math.min(rate, n * Math.floor(rate / n)),
          );
      }
    }
    expect(['a', 'b', 'c'].map((m) => tenantShare(50, ['a', 'b', 'c'], m))).toEqual([17, 17, 16]);
  });

  it('stays within the rate when views count members that already left (seeded random views)', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 2000; trial += 1) {
      const rate = [7, 30, 50, 120][trial % 4]!;
      const live = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, i) => `live${i}`);
      const gone = Array.from({ length: Math.floor(random() * 4) }, (_, i) => `gone${i}`);
      // Each live instance sees every live instance and any subset of those that left.
      const total = live.reduce(
        (sum, me) => sum + tenantShare(rate, [...live, ...gone.filter(() => random() < 0.5)], me),
        0,
      );
      expect(total).toBeLessThanOrEqual(rate);
    }
  });

  it('divides each conversation window, at least one each', () => {
    expect(conversationWindowsFor(1).map((w) => w.limit)).toEqual([7, 8, 60, 1800]);
    expect(conversationWindowsFor(3).map((w) => w.limit)).toEqual([2, 2, 20, 600]);
    expect(conversationWindowsFor(7).map((w) => w.limit)).toEqual([1, 1, 8, 257]);
  });
});

/** Simulated time and an in-memory roster; counts the storage operations. */
function world() {
  let t = 1_000_000;
  const rows = new Map<string, Map<string, { expiresAt?: number; until?: number }>>();
  const ops = { renew: 0, read: 0, remove: 0, pause: 0 };
  const part = (tenant: string) => rows.get(tenant) ?? rows.set(tenant, new Map()).get(tenant)!;
  const roster: BudgetRoster = {
    async renew(tenant, id, expiresAt) {
      ops.renew += 1;
      part(tenant).set(id, { expiresAt });
    },
    async read(tenant) {
      ops.read += 1;
      const snapshot: {
        members: { instanceId: string; expiresAt: number }[];
        conversationPauses: Map<string, number>;
        tenantPausedUntil?: number;
      } = { members: [], conversationPauses: new Map() };
      for (const [key, row] of part(tenant)) {
        if (key === '~pause') snapshot.tenantPausedUntil = row.until!;
        else if (key.startsWith('~pause:')) snapshot.conversationPauses.set(key.slice(7), row.until!);
        else snapshot.members.push({ instanceId: key, expiresAt: row.expiresAt! });
      }
      return snapshot as RosterSnapshot;
    },
    async remove(tenant, key) {
      ops.remove += 1;
      part(tenant).delete(key);
    },
    async pause(tenant, scope, until) {
      ops.pause += 1;
      part(tenant).set(scope.conversationId === undefined ? '~pause' : `~pause:${scope.conversationId}`, { until });
    },
  };
  const budgets: SendBudget[] = [];
  return {
    ops,
    now: () => t,
    advance: (ms: number) => (t += ms),
    budget(id: string, rate = 50) {
      const b = createSendBudget({ roster, ratePerSecond: rate, now: () => t, instanceId: id });
      budgets.push(b);
      return b;
    },
    close: () => Promise.all(budgets.map((b) => b.close())),
  };
}

/** How many sends one budget grants over the next second (asking every 10 ms, as busy workers do). */
async function grantedInOneSecond(w: ReturnType<typeof world>, budget: SendBudget): Promise<number> {
  let granted = 0;
  const end = w.now() + 1_000;
  for (let step = 0; w.now() < end && step < 200; step += 1) {
    for (let k = 0; k < 5; k += 1) if ((await budget.acquire(`conv-${w.now()}-${k}`, 't1')) === 0) granted += 1;
    w.advance(10);
  }
  return granted;
}

let current: ReturnType<typeof world> | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe('createSendBudget', () => {
  it('alone, the first send waits for one roster write and one read, then has the whole rate', async () => {
    const w = (current = world());
    const a = w.budget('a');
    a.prepare('t1');
    expect(await a.acquire('c1', 't1')).toBe(0);
    expect(w.ops).toMatchObject({ renew: 1, read: 1 });
    expect(await grantedInOneSecond(w, a)).toBe(49); // and the first one: 50
  });

  it('describes the slot it grants; a send answered at once frees its second sooner, settled once', async () => {
    // A second's worth of sends (5 per 100 ms), answered at once or never; then one more.
    const oneMoreAfterASecond = async (answered: boolean): Promise<number> => {
      const w = world();
      const a = w.budget('a');
      for (let i = 0; i < 50; i += 1) {
        const slot: GrantedSlot = {};
        expect(await a.acquire(`c${i}`, 't1', slot)).toBe(0);
        expect(slot.grantedAt).toBe(w.now());
        if (answered) {
          a.settle(`c${i}`, 't1', slot);
          expect(slot.grantedAt).toBeUndefined(); // a second answer for the slot settles nothing
        }
        if (i % 5 === 4) w.advance(100);
      }
      const wait = await a.acquire('next', 't1');
      await w.close();
      return wait;
    };
    expect(await oneMoreAfterASecond(false)).toBe(WINDOW_SAFETY_MS);
    expect(await oneMoreAfterASecond(true)).toBe(0);
  });

  it('a second instance waits until the first has read the roster again, then each takes its share', async () => {
    const w = (current = world());
    const a = w.budget('a');
    const b = w.budget('b');
    expect(await a.acquire('c', 't1')).toBe(0);
    w.advance(500);
    const wait = await b.acquire('c-b', 't1');
    expect(wait).toBeGreaterThan(JOIN_WAIT_MS - 100);

    // Run both for 20 simulated seconds, 10 ms steps; count grants in every 1 s window.
    const grants: number[] = [];
    let n = 0;
    for (let step = 0; step < 2000; step += 1) {
      for (const budget of [a, b]) {
        for (let k = 0; k < 3; k += 1) if ((await budget.acquire(`conv-${(n += 1)}`, 't1')) === 0) grants.push(w.now());
      }
      w.advance(10);
    }
    let worst = 0;
    for (let i = 0; i < grants.length; i += 1) {
      let j = i;
      while (j < grants.length && grants[j]! < grants[i]! + 1_000) j += 1;
      worst = Math.max(worst, j - i);
    }
    expect(worst).toBeLessThanOrEqual(50);
    // And close to it: at least 90% of the cap over the 20 s.
    expect(grants.length / 20).toBeGreaterThan(45 * 0.95);
  });

  it("a conversation's windows are shared too: two instances never exceed 7 per second to one chat", async () => {
    const w = (current = world());
    const a = w.budget('a');
    const b = w.budget('b');
    await a.acquire('warm', 't1');
    await b.acquire('warm-b', 't1');
    w.advance(JOIN_WAIT_MS + 10);
    const grants: number[] = [];
    for (let step = 0; step < 300; step += 1) {
      for (const budget of [a, b]) if ((await budget.acquire('hot-chat', 't1')) === 0) grants.push(w.now());
      w.advance(10);
    }
    for (let i = 0; i < grants.length; i += 1)
      expect(grants.filter((g) => g >= grants[i]! && g < grants[i]! + 1_000).length).toBeLessThanOrEqual(7);
    expect(grants.length).toBeGreaterThan(3);
  });

  it('a 429 pauses the conversation on every instance; a 429 on a quiet conversation pauses the tenant', async () => {
    const w = (current = world());
    const a = w.budget('a');
    const b = w.budget('b');
    // Both keep sending (and so renewing) every 500 ms, as busy instances do.
    const tick = async (ms: number): Promise<void> => {
      for (let left = ms; left > 0; left -= 500) {
        w.advance(Math.min(500, left));
        await a.acquire(`keep-a-${w.now()}`, 't1');
        await b.acquire(`keep-b-${w.now()}`, 't1');
      }
    };
    await a.acquire('x', 't1');
    await b.acquire('y', 't1');
    await tick(JOIN_WAIT_MS + 500);
    await a.acquire('busy', 't1');
    await a.acquire('busy', 't1');
    await a.throttled('busy', 't1', w.now() + 5_000);
    await tick(2_000); // b reads the roster again
    expect(await b.acquire('busy', 't1')).toBeGreaterThan(2_000);
    w.advance(100);
    expect(await b.acquire('fine', 't1')).toBe(0);

    await a.throttled('quiet', 't1', w.now() + 5_000);
    w.advance(2_000);
    await b.acquire('z', 't1'); // starts b's read of the roster in the background
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(await b.acquire('anything', 't1')).toBeGreaterThan(2_000);
    expect(w.ops.pause).toBe(2);
  });

  it('does no storage work while idle, and leaves a tenant it stopped sending to', async () => {
    const w = (current = world());
    const a = w.budget('a');
    await a.acquire('c', 't1');
    const before = { ...w.ops };
    w.advance(IDLE_MS * 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(w.ops.read).toBe(before.read);
    expect(w.ops.renew).toBe(before.renew);
  });

  it('a member that dies is counted until its row expires (and the skew margin), then the rest have the whole rate', async () => {
    const w = (current = world());
    const a = w.budget('a');
    const b = w.budget('b');
    await a.acquire('x', 't1');
    await b.acquire('y', 't1');
    w.advance(JOIN_WAIT_MS + 10);
    await a.acquire('x2', 't1');
    // b dies: it never renews again. After its row's TTL and the skew margin, a has the whole rate.
    w.advance(ROW_TTL_MS + SKEW_MS + 1_600);
    await a.acquire('refresh', 't1');
    w.advance(1_600);
    await a.acquire('refresh-2', 't1');
    w.advance(1_100);
    expect(await grantedInOneSecond(w, a)).toBe(50);
  });
});
