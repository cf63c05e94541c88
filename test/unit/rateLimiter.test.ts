import { describe, expect, it } from 'vitest';
import { CONVERSATION_WINDOW_SAFETY_MS, createRateLimiter, tenantWindows } from '../../src/core/rateLimiter';

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
});
