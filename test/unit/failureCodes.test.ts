import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_COURIER_FAILURE_CODES, TEAMS_FAILURE_CODES } from '../../src/core/failureCodes';

const doc = readFileSync(path.resolve(__dirname, '../../docs/delivery.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Failure reasons'), doc.indexOf('## Once, and the one window'));
/** Every backticked code in the first column of the table. */
const documented = new Set(
  section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Za-z0-9]+)`/g)].map((m) => m[1]!)),
);

describe('the failure vocabulary', () => {
  it.each([...ALL_COURIER_FAILURE_CODES])('docs/delivery.md explains %s', (code) => {
    expect(documented.has(code)).toBe(true);
  });

  it.each([...TEAMS_FAILURE_CODES])("docs/delivery.md explains Teams' %s", (code) => {
    expect(documented.has(code)).toBe(true);
  });

  it('documents no code the sender cannot produce', () => {
    const known = new Set<string>([...ALL_COURIER_FAILURE_CODES, ...TEAMS_FAILURE_CODES]);
    expect([...documented].filter((code) => !known.has(code) && !/^HTTP\d+$/.test(code))).toEqual([]);
  });
});
