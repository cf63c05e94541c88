import { describe, expect, it } from 'vitest';
import {
  CONVERSATION_WINDOW_SAFETY_MS,
  createRateLimiter,
  tenantWindows,
  WINDOW_SAFETY_MS,
  type GrantedSlot,
} from '../../src/core/rateLimiter';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('rate limiter', () => {
  it('allows 7 sends per second to one conversation, then says how long to wait', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: tenantWindows(1000), now: c.now });
    for (let i = 0; i < 7; i += 1) expect(limiter.tryAcquire('a:1', 't')).toBe(0);
    expect(limiter.tryAcquire('a:1', 't')).toBe(1000 + CONVERSATION_WINDOW_SAFETY_MS);
    expect(limiter.tryAcquire('a:2', 't')).toBe(0); // another conversation is unaffected
  });

  it('enforces 8 per 2 s and 60 per 30 s', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: tenantWindows(1000), now: c.now });
    for (let i = 0; i < 7; i += 1) limiter.tryAcquire('a:1', 't');
    c.advance(1000 + CONVERSATION_WINDOW_SAFETY_MS);
    expect(limiter.tryAcquire('a:1', 't')).toBe(0); // 8th within 2 s
    expect(limiter.tryAcquire('a:1', 't')).toBe(1000); // 9th must wait for the first to leave the 2 s window
    // Sustained: count how many sends fit into 30 s at the best pace.
    let sent = 8;
    for (let i = 0; i < 10_000 && c.now() < 1_000_000 + 30_000; i += 1) {
      const wait = limiter.tryAcquire('a:1', 't');
      if (wait === 0) sent += 1;
      else c.advance(wait);
    }
    expect(sent).toBeLessThanOrEqual(60);
    expect(sent).toBeGreaterThanOrEqual(59);
  });

  it('limits a tenant to its rate across conversations, spread over the second', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: tenantWindows(50), now: c.now });
    // At most a tenth of the rate in any 100 ms: a late burst cannot spill into Teams' next second.
    for (let i = 0; i < 5; i += 1) expect(limiter.tryAcquire(`a:${i}`, 't1')).toBe(0);
    expect(limiter.tryAcquire('a:burst', 't1')).toBe(100);
    expect(limiter.tryAcquire('a:y', 't2')).toBe(0);
    // Over a second: 50 (the 5 above included), then the 1 s window (plus its margin) holds.
    let granted = 5;
    for (let step = 0; step < 100 && c.now() < 1_000_000 + 1_000; step += 1) {
      c.advance(10);
      for (let k = 0; k < 5; k += 1) if (limiter.tryAcquire(`a:${step}-${k}`, 't1') === 0) granted += 1;
    }
    expect(granted).toBe(50);
    expect(limiter.tryAcquire('a:x', 't1')).toBeGreaterThan(0);
  });

  it('a pause (429) blocks the scope until it ends', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: tenantWindows(50), now: c.now });
    limiter.pause({ conversationId: 'a:1' }, c.now() + 5000);
    expect(limiter.tryAcquire('a:1', 't')).toBe(5000);
    c.advance(5000);
    expect(limiter.tryAcquire('a:1', 't')).toBe(0);
  });

  it('forgets idle scopes and stays within its memory bound', () => {
    const c = clock();
    const limiter = createRateLimiter({ tenantWindows: tenantWindows(1_000_000), now: c.now, maxScopes: 100 });
    for (let i = 0; i < 1000; i += 1) limiter.tryAcquire(`a:${i}`, 't');
    expect(limiter.size).toBeLessThanOrEqual(101);
  });

  describe('settle: a send Teams answered had arrived by then', () => {
    // Two sends per second for the tenant, with the default safety margin; a roomy conversation scope.
    const twoPerSecond = [{ limit: 2, windowMs: 1_000 }];
    const roomy = [{ limit: 100, windowMs: 1_000 }];
    const limiter = (c: ReturnType<typeof clock>) =>
      createRateLimiter({ tenantWindows: twoPerSecond, conversationWindows: roomy, now: c.now });

    it('an answer sooner than the margin frees the slot a window after the answer; a later one changes nothing', () => {
      const c = clock();
      const l = limiter(c);
      const first: GrantedSlot = {};
      const second: GrantedSlot = {};
      expect(l.tryAcquire('a:1', 't', first)).toBe(0);
      expect(l.tryAcquire('a:2', 't', second)).toBe(0);
      expect(first.grantedAt).toBe(c.now());
      expect(l.tryAcquire('a:3', 't')).toBe(1_000 + WINDOW_SAFETY_MS);
      c.advance(10);
      l.settle('a:1', 't', first.grantedAt!);
      // The first now counts until 10 + 1,000 ms after its grant: 1,000 ms from now.
      expect(l.tryAcquire('a:3', 't')).toBe(1_000);
      c.advance(WINDOW_SAFETY_MS + 100);
      l.settle('a:2', 't', second.grantedAt!); // answered after its margin: the margin stands
      c.advance(1_000 - WINDOW_SAFETY_MS - 100);
      expect(l.tryAcquire('a:3', 't')).toBe(0);
      expect(l.tryAcquire('a:4', 't')).toBe(WINDOW_SAFETY_MS - 10);
    });

    it('an answer in the same millisecond still counts the send for a whole window from its grant', () => {
      const c = clock();
      const l = limiter(c);
      for (const id of ['a:1', 'a:2']) {
        const slot: GrantedSlot = {};
        l.tryAcquire(id, 't', slot);
        l.settle(id, 't', slot.grantedAt!);
      }
      expect(l.tryAcquire('a:3', 't')).toBe(1_000);
    });

    it('a send never answered keeps counting after more than its limit of newer, answered sends', () => {
      const c = clock();
      const l = limiter(c);
      l.tryAcquire('a:0', 't'); // no answer: counts until its grant + margin + window
      c.advance(1);
      const quick = (id: string): void => {
        const slot: GrantedSlot = {};
        expect(l.tryAcquire(id, 't', slot)).toBe(0);
        l.settle(id, 't', slot.grantedAt!);
      };
      quick('a:1');
      c.advance(1_000);
      quick('a:2');
      // a:1 has left the window, a:0 has not: two still count.
      expect(l.tryAcquire('a:3', 't')).toBe(WINDOW_SAFETY_MS - 1);
      c.advance(WINDOW_SAFETY_MS - 1);
      expect(l.tryAcquire('a:3', 't')).toBe(0);
    });

    it.each([
      ['in the same millisecond as another', 0],
      ['20 ms before a newer one', 20],
    ])('settles the send it names, granted %s, and that one only', (_label, gap) => {
      const c = clock();
      const t0 = c.now();
      const l = limiter(c);
      const named: GrantedSlot = {};
      l.tryAcquire('a:1', 't', named);
      c.advance(gap);
      l.tryAcquire('a:2', 't');
      c.advance(10);
      l.settle('a:1', 't', named.grantedAt!);
      // The named send counts until its answer + 1,000; the other, unanswered, until its grant +
      // margin + 1,000.
      expect(l.tryAcquire('a:3', 't')).toBe(1_000);
      c.advance(1_000);
      expect(l.tryAcquire('a:3', 't')).toBe(0);
      expect(l.tryAcquire('a:4', 't')).toBe(t0 + gap + WINDOW_SAFETY_MS + 1_000 - c.now());
    });

    it('keeps each send with its own answer when older sends are forgotten', () => {
      const c = clock();
      const l = limiter(c);
      // Four seconds of sends answered at once, 600 ms apart: the older ones are dropped as time moves on.
      for (let k = 0; k < 7; k += 1) {
        const slot: GrantedSlot = {};
        expect(l.tryAcquire(`a:${k}`, 't', slot)).toBe(0);
        l.settle(`a:${k}`, 't', slot.grantedAt!);
        c.advance(600);
      }
      c.advance(2_000);
      // Two sends never answered: each counts for its window and the whole margin.
      expect(l.tryAcquire('x', 't')).toBe(0);
      expect(l.tryAcquire('y', 't')).toBe(0);
      expect(l.tryAcquire('z', 't')).toBe(1_000 + WINDOW_SAFETY_MS);
    });

    it('leaves our own smoothing window (no margin) as it was', () => {
      const c = clock();
      const l = createRateLimiter({ tenantWindows: tenantWindows(50), now: c.now });
      for (let i = 0; i < 5; i += 1) {
        const slot: GrantedSlot = {};
        l.tryAcquire(`a:${i}`, 't', slot);
        l.settle(`a:${i}`, 't', slot.grantedAt!);
      }
      expect(l.tryAcquire('a:5', 't')).toBe(100);
    });
  });
});
