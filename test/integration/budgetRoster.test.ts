/**
 * The shared budget's roster against Azurite, and several budgets (as several instances would)
 * sharing one tenant through it, on the real clock.
 */
import { describe, expect, it } from 'vitest';
import { createSendBudget } from '../../src/outbound/sendBudget';
import { createBudgetRoster } from '../../src/store/budgetRoster';
import { TABLES } from '../../src/store/tables';
import { useAzurite } from '../helpers/storage';

const storage = useAzurite();

describe('budget roster against Azurite', () => {
  it('keeps members and pauses per tenant, with ids and conversation ids of any shape', async () => {
    const roster = createBudgetRoster(storage().table(TABLES.budget));
    const tenant = 'tenant/with#odd?chars';
    await roster.renew(tenant, 'instance-a', 1_000);
    await roster.renew(tenant, 'instance-b', 2_000);
    await roster.renew('other-tenant', 'instance-c', 3_000);
    await roster.pause(tenant, {}, 5_000);
    await roster.pause(tenant, { conversationId: '19:abc@thread.tacv2;messageid=1/2' }, 6_000);
    await roster.renew(tenant, 'instance-a', 1_500);
    const snapshot = await roster.read(tenant);
    expect([...snapshot.members].sort((x, y) => x.instanceId.localeCompare(y.instanceId))).toEqual([
      { instanceId: 'instance-a', expiresAt: 1_500 },
      { instanceId: 'instance-b', expiresAt: 2_000 },
    ]);
    expect(snapshot.tenantPausedUntil).toBe(5_000);
    expect(snapshot.conversationPauses).toEqual(new Map([['19:abc@thread.tacv2;messageid=1/2', 6_000]]));
    await roster.remove(tenant, 'instance-b');
    await roster.remove(tenant, 'instance-b'); // already gone: fine
    expect((await roster.read(tenant)).members.map((m) => m.instanceId)).toEqual(['instance-a']);
  });

  it('three budgets on one roster stay within the tenant rate together, measured on the real clock', async () => {
    const roster = createBudgetRoster(storage().table(TABLES.budget));
    const budgets = ['i1', 'i2', 'i3'].map((instanceId) => createSendBudget({ roster, ratePerSecond: 20, instanceId }));
    const grants: number[] = [];
    const deadline = Date.now() + 7_000;
    try {
      let n = 0;
      await Promise.all(
        budgets.map(async (budget) => {
          while (Date.now() < deadline) {
            const wait = await budget.acquire(`conv-${(n += 1)}`, 'shared-tenant');
            if (wait === 0) grants.push(Date.now());
            else await new Promise((r) => setTimeout(r, Math.min(wait, 50)));
          }
        }),
      );
    } finally {
      await Promise.all(budgets.map((b) => b.close()));
    }
    grants.sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0; i < grants.length; i += 1) {
      let j = i;
      while (j < grants.length && grants[j]! < grants[i]! + 1_000) j += 1;
      worst = Math.max(worst, j - i);
    }
    expect(worst).toBeLessThanOrEqual(20);
    // After the joins (about 3 s), the three together use most of the rate.
    const steady = grants.filter((g) => g > deadline - 3_000).length / 3;
    expect(steady).toBeGreaterThan(20 * 0.8);
  });
});
