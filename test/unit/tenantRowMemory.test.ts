import { describe, expect, it } from 'vitest';
import { TENANT_ROW_FRESH_MS, TENANT_ROWS_REMEMBERED, TenantRowMemory } from '../../src/store/conversationIndexes';

const t0 = new Date('2026-12-07T10:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const URL_A = 'https://smba.trafficmanager.net/amer/';
const URL_B = 'https://smba.trafficmanager.net/emea/';

describe('TenantRowMemory', () => {
  it('takes a row it wrote as current for that serviceUrl, for 10 minutes from the write', () => {
    const memory = new TenantRowMemory();
    expect(memory.isCurrent('t1', URL_A, t0)).toBe(false);
    memory.wrote('t1', URL_A, t0);
    expect(memory.isCurrent('t1', URL_A, t0)).toBe(true);
    expect(memory.isCurrent('t1', URL_A, at(TENANT_ROW_FRESH_MS - 1))).toBe(true);
    expect(memory.isCurrent('t1', URL_A, at(TENANT_ROW_FRESH_MS))).toBe(false);
    expect(memory.isCurrent('t1', URL_B, t0)).toBe(false);
    expect(memory.isCurrent('t2', URL_A, t0)).toBe(false);
    // A clock that went back is no proof the row is current.
    expect(memory.isCurrent('t1', URL_A, at(-1))).toBe(false);
  });

  it('remembers the latest serviceUrl written for a tenant', () => {
    const memory = new TenantRowMemory();
    memory.wrote('t1', URL_A, t0);
    memory.wrote('t1', URL_B, at(1_000));
    expect(memory.isCurrent('t1', URL_A, at(1_000))).toBe(false);
    expect(memory.isCurrent('t1', URL_B, at(1_000))).toBe(true);
  });

  it(`holds at most ${TENANT_ROWS_REMEMBERED} tenants, then starts again`, () => {
    const memory = new TenantRowMemory();
    for (let i = 0; i < TENANT_ROWS_REMEMBERED; i += 1) memory.wrote(`t${i}`, URL_A, t0);
    expect(memory.size).toBe(TENANT_ROWS_REMEMBERED);
    // Rewriting one it holds keeps the rest.
    memory.wrote('t0', URL_B, t0);
    expect(memory.size).toBe(TENANT_ROWS_REMEMBERED);
    expect(memory.isCurrent('t1', URL_A, t0)).toBe(true);
    // One more tenant: the memory starts again with it alone.
    memory.wrote('new', URL_A, t0);
    expect(memory.size).toBe(1);
    expect(memory.isCurrent('new', URL_A, t0)).toBe(true);
    expect(memory.isCurrent('t1', URL_A, t0)).toBe(false);
  });
});
