import { describe, expect, it } from 'vitest';
import { fromTableKey, MAX_KEY_LENGTH, toTableKey } from '../../src/core/tableKeys';

describe('toTableKey', () => {
  it('leaves ordinary Teams ids readable', () => {
    expect(toTableKey('19:abc@thread.tacv2;messageid=1')).toBe('19:abc@thread.tacv2;messageid=1');
    expect(toTableKey('a:1xyz-_.')).toBe('a:1xyz-_.');
  });

  it('escapes every character Table Storage forbids, and % itself', () => {
    const key = toTableKey('a/b\\c#d?e%f\u0000g\u001fh\u007fi\u009fj');
    expect(key).toBe('a%2Fb%5Cc%23d%3Fe%25f%00g%1Fh%7Fi%9Fj');
    // eslint-disable-next-line no-control-regex
    expect(key).not.toMatch(/[/\\#?\u0000-\u001f\u007f-\u009f]/);
  });

  it('is reversible, so distinct ids never share a key', () => {
    const ids = ['a/b', 'a%2Fb', 'a%252Fb', 'ü/ñ#✓', '19:x;messageid=1?y'];
    const keys = ids.map(toTableKey);
    expect(new Set(keys).size).toBe(ids.length);
    for (const id of ids) expect(fromTableKey(toTableKey(id))).toBe(id);
  });

  it('rejects ids too long to be a key', () => {
    expect(() => toTableKey('x'.repeat(MAX_KEY_LENGTH + 1))).toThrow(RangeError);
    expect(toTableKey('x'.repeat(MAX_KEY_LENGTH))).toHaveLength(MAX_KEY_LENGTH);
  });

  it('escapes lone surrogates reversibly, so any JavaScript string makes a valid key', () => {
    const lone = 'a:\uD800x\uDC00y';
    const key = toTableKey(lone);
    expect(key).toBe('a:%uD800x%uDC00y');
    expect(() => encodeURIComponent(key)).not.toThrow();
    expect(fromTableKey(key)).toBe(lone);
    expect(toTableKey('pair \uD83D\uDE00')).toBe('pair \uD83D\uDE00');
  });
});
