/**
 * The log redaction safety net: what it catches, and that it stays linear on hostile input.
 *
 * Linear time is checked on the patterns' shape, not with a clock: a pattern that is a
 * bounded-length prefix followed by one greedy character-class quantifier (and nothing after it)
 * does a bounded amount of work per start position before it either fails or can no longer fail,
 * and a global replace resumes after each match, so no character is scanned twice. The old JWT
 * pattern, which took 0.6 s on 32 K characters, fails this check.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, redact, SECRET_PATTERNS } from '../../src/log';

/** Why `source` is not linear-time by shape, or undefined when it is. */
function shapeProblem(pattern: RegExp): string | undefined {
  if (!pattern.global) return 'not global: a match must be consumed, not rescanned';
  const source = pattern.source;
  const tail = /\[(?:\\.|[^\]\\])+\](?:\*|\+|\{\d+,\})$/.exec(source);
  if (tail === null) return 'does not end with one greedy character-class quantifier';
  const prefix = source.slice(0, tail.index);
  if (/\(\?<?[=!]|\\[1-9]|\\k</.test(prefix)) return 'has a lookaround or a backreference';
  // Escapes and classes cannot hold quantifiers; what remains must have only bounded ones.
  const bare = prefix.replace(/\\./g, 'x').replace(/\[(?:\\.|[^\]\\])*\]/g, 'x');
  if (/[*+]|\{\d+,\}/.test(bare)) return `an unbounded quantifier comes before the end: ${prefix}`;
  if (/\{\d+,\d+\}\?|\?\?/.test(bare)) return 'has a lazy quantifier';
  return undefined;
}

/** The patterns before the security review, for the shape check's own test and the differential test. */
const OLD_PATTERNS: readonly [RegExp, string][] = [
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [/(AccountKey|SharedAccessSignature|sig|client_secret|password)=([^;&"\s]+)/gi, '$1=[redacted]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, '$1[redacted]'],
];
const oldRedact = (text: string): string =>
  OLD_PATTERNS.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz';

describe('redact: linear time by construction', () => {
  it.each(SECRET_PATTERNS.map(({ pattern }) => [pattern.source, pattern] as const))(
    '%s has the linear shape',
    (_source, pattern) => {
      expect(shapeProblem(pattern)).toBeUndefined();
    },
  );

  it('the shape check rejects the quadratic JWT pattern that was replaced', () => {
    expect(shapeProblem(OLD_PATTERNS[0]![0])).toMatch(/unbounded quantifier comes before the end/);
    expect(shapeProblem(/a+b/g)).toBeDefined();
    expect(shapeProblem(/(?:ab)*[a-z]+/g)).toBeDefined();
    expect(shapeProblem(/x\s{1,4}[a-z]{2,}/g)).toBeUndefined();
  });

  it('handles 64 K-character adversarial fields correctly (each one is a single linear pass)', () => {
    const n = 64 * 1024;
    expect(redact('eyJ'.repeat(n / 3))).toBe('eyJ'.repeat(n / 3));
    expect(redact(`${'eyJaaaaa.'.repeat(n / 9)}x`)).toContain('[redacted-jwt]');
    expect(redact(`Bearer${' '.repeat(n)}`)).toBe(`Bearer${' '.repeat(n)}`);
    expect(redact('sig='.repeat(n / 4))).toBe('sig=[redacted]');
    expect(redact(`password=${'p'.repeat(n)}`)).toBe('password=[redacted]');
    const line = JSON.stringify({ event: 'job.failed', text: `${'eyJ'.repeat(n / 3)} ${JWT}` });
    expect(redact(line)).toBe(JSON.stringify({ event: 'job.failed', text: `${'eyJ'.repeat(n / 3)} [redacted-jwt]` }));
  });
});

describe('redact: what it catches', () => {
  it.each([
    ['a JWT', `token ${JWT} end`, 'token [redacted-jwt] end'],
    ['a JWT glued to other text', `x${JWT}.tail`, 'x[redacted-jwt].tail'],
    ['a JWT after a short eyJ segment', `eyJab.${JWT}`, 'eyJab.[redacted-jwt]'],
    ['a JWT with an empty signature (alg none)', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', '[redacted-jwt]'],
    ['two JWTs', `${JWT} and ${JWT}`, '[redacted-jwt] and [redacted-jwt]'],
    [
      'an account key',
      'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/==;EndpointSuffix=x',
      'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=[redacted];EndpointSuffix=x',
    ],
    [
      'a SAS signature',
      'https://a.blob.core.windows.net/c?sv=1&sig=AbC%2B&se=2',
      'https://a.blob.core.windows.net/c?sv=1&sig=[redacted]&se=2',
    ],
    ['a SharedAccessSignature', 'SharedAccessSignature=sv=1&sig=x', 'SharedAccessSignature=[redacted]&sig=[redacted]'],
    [
      'a client secret',
      'grant_type=client_credentials&client_secret=s3cr3t~value&scope=x',
      'grant_type=client_credentials&client_secret=[redacted]&scope=x',
    ],
    ['a password, any case', 'PASSWORD=hunter2 next', 'PASSWORD=[redacted] next'],
    ['a Bearer token', 'Authorization: Bearer abc.def-ghi_jkl~123', 'Authorization: Bearer [redacted]'],
  ])('%s', (_label, input, expected) => {
    expect(redact(input)).toBe(expected);
  });

  it.each([
    ['plain text'],
    ['eyJshort.x.y'],
    ['Bearer short'],
    ['sig= nothing'],
    ['the header eyJhbGciOiJSUzI1NiJ9 alone'],
  ])('leaves "%s" alone', (input) => {
    expect(redact(input)).toBe(input);
  });

  it('redacts exactly what the previous patterns did (differential, 20 000 random lines)', () => {
    const pieces = [
      'eyJ',
      'eyJhbGci',
      'a',
      'B9',
      'xyz12',
      '-',
      '_',
      '.',
      '.',
      ' ',
      '  ',
      '=',
      '"',
      ';',
      '&',
      'sig',
      'password',
      'Bearer',
      'Bearer ',
      'abcdefgh',
      'AccountKey',
      '\\',
      '/',
      '+',
    ];
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    let compared = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const parts: string[] = [];
      for (let k = next() % 40; k > 0; k -= 1) parts.push(pieces[next() % pieces.length]!);
      const text = parts.join('');
      // The one deliberate difference: "Bearer" followed by more than 16 whitespace characters.
      if (/Bearer\s{17}/.test(text)) continue;
      expect(redact(text), JSON.stringify(text)).toBe(oldRedact(text));
      compared += 1;
    }
    expect(compared).toBeGreaterThan(19_000);
  });

  it('the logger redacts every line it writes', () => {
    const lines: string[] = [];
    createLogger((_level, line) => lines.push(line)).warn('auth.rejected', { reason: `bad token ${JWT}` });
    expect(lines).toEqual([
      JSON.stringify({ level: 'warn', event: 'auth.rejected', reason: 'bad token [redacted-jwt]' }),
    ]);
  });
});
