import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config';

const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');

describe('README', () => {
  it.each(SETTINGS.map((s) => s.name))('documents the setting %s', (name) => {
    // `AzureWebJobsStorage__queueServiceUri` may be documented in the grouped row as `__queueServiceUri`.
    const short = name.includes('__') ? `__${name.split('__')[1]}` : name;
    expect(readme.includes(`\`${name}\``) || readme.includes(`\`${short}\``)).toBe(true);
  });

  it('gives the two commands and the test command CI runs', () => {
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
    expect(readFileSync(path.resolve(__dirname, '../../.ci/run'), 'utf8')).toMatch(/^npm test\b/m);
  });

  describe('the project layout names what is there', () => {
    const root = path.resolve(__dirname, '../..');
    const block = readme.slice(readme.indexOf('## Project layout'));
    const layout = block.slice(block.indexOf('```'), block.indexOf('```', block.indexOf('```') + 3));
    const entries = (dir: string, dirs: boolean) =>
      readdirSync(path.join(root, dir), { withFileTypes: true })
        .filter((e) => e.isDirectory() === dirs)
        .map((e) => e.name);

    it.each(entries('src', true))('src/%s/', (name) => {
      expect(layout).toContain(`src/${name}/`);
    });
    it.each(entries('src/functions', false))('src/functions/%s', (name) => {
      expect(layout).toContain(name);
    });
    it.each(entries('docs', false).map((f) => f.replace(/\.md$/, '')))('docs/%s.md', (name) => {
      expect(layout).toMatch(new RegExp(`docs/.*\\b${name}\\b`));
    });
  });
});
