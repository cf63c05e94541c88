import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { unzipSync } from 'fflate';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  COLOR_ICON_SIZE,
  OUTLINE_ICON_SIZE,
  buildManifest,
  createZip,
  deriveAppId,
  findBotId,
  packageTeamsApp,
  toDomain,
} from '../../scripts/packageTeams';
import { REPO_ROOT } from './arm';

const BOT_ID = '00000000-0000-4000-8000-0000000000b0'; // test/fixtures: the bot's app id
const TEMPLATE = fs.readFileSync(path.join(REPO_ROOT, 'appPackage/manifest.json'), 'utf8');

/** The official Teams manifest JSON schema for `manifestVersion`, as shipped in @microsoft/app-manifest. */
function validateAgainstSchema(manifest: Record<string, unknown>): string[] {
  const version = manifest.manifestVersion as string;
  const schemaPath = require.resolve(
    `@microsoft/app-manifest/build/json-schemas/teams/v${version}/MicrosoftTeams.schema.json`,
  );
  const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  // The same validator settings Microsoft's own AppManifestUtils.validateAgainstSchema uses.
  const ajv = new Ajv({ allErrors: true, strictTypes: false });
  addFormats(ajv, ['uri', 'email', 'regex']);
  const validate = ajv.compile(schema);
  return validate(manifest)
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** The entries of a ZIP, in archive order, read with fflate's unzipSync. */
function readZip(zip: Uint8Array): Map<string, Buffer> {
  return new Map(Object.entries(unzipSync(zip)).map(([name, data]) => [name, Buffer.from(data)]));
}

/** Fields of a PNG's IHDR chunk, read from the bytes here rather than with the script's pngSize. */
function pngHeader(png: Uint8Array): { width: number; height: number; bitDepth?: number; colourType?: number } {
  const buf = Buffer.from(png);
  expect(buf.subarray(0, 8), 'PNG signature').toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(buf.toString('ascii', 12, 16), 'first chunk').toBe('IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), bitDepth: buf[24], colourType: buf[25] };
}

describe('manifest', () => {
  it('is valid against the official Teams manifest schema', () => {
    const manifest = buildManifest(TEMPLATE, {
      botId: BOT_ID,
      version: '1.2.3',
      domains: ['https://func-abc.azurewebsites.net/api/messages'],
    });
    expect(Number((manifest.manifestVersion as string).split('.')[1])).toBeGreaterThanOrEqual(19);
    expect(validateAgainstSchema(manifest)).toEqual([]);
  });

  it('the schema check catches a broken manifest', () => {
    const manifest = buildManifest(TEMPLATE, { botId: BOT_ID, version: '1.2.3' });
    expect(
      validateAgainstSchema({ ...manifest, accentColor: 'purple', bots: [{ botId: 'nope', scopes: ['everywhere'] }] })
        .length,
    ).toBeGreaterThan(0);
  });

  it('fills in the bot id, a stable app id, the version and validDomains; bots in personal, team and groupChat', () => {
    const manifest = buildManifest(TEMPLATE, {
      botId: BOT_ID.toUpperCase(),
      version: '0.4.0',
      domains: ['func-abc.azurewebsites.net', 'https://func-abc.azurewebsites.net/api/messages'],
    });
    expect(manifest.id).toBe(deriveAppId(BOT_ID));
    expect(manifest.version).toBe('0.4.0');
    expect(manifest.validDomains).toEqual(['func-abc.azurewebsites.net']);
    expect(manifest.bots).toEqual([
      expect.objectContaining({ botId: BOT_ID, scopes: ['personal', 'team', 'groupChat'] }),
    ]);
    expect(manifest.developer).toEqual(
      expect.objectContaining({ name: expect.any(String), websiteUrl: expect.stringMatching(/^https:/) }),
    );
    expect(JSON.stringify(manifest)).not.toContain('${{');
  });

  it('derives the app id deterministically (UUID v5), distinct from the bot id, unless one is given', () => {
    const id = deriveAppId(BOT_ID);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deriveAppId(BOT_ID.toUpperCase())).toBe(id);
    expect(id).not.toBe(BOT_ID);
    expect(deriveAppId('11111111-2222-4333-8444-555555555555')).not.toBe(id);
    const given = '22222222-3333-4444-8555-666666666666';
    expect(buildManifest(TEMPLATE, { botId: BOT_ID, appId: given, version: '1.0.0' }).id).toBe(given);
  });

  it('rejects a bad bot id, version, domain or placeholder with a clear message', () => {
    expect(() => buildManifest(TEMPLATE, { botId: 'my-bot', version: '1.0.0' })).toThrow(/bot id must be a GUID/);
    expect(() => buildManifest(TEMPLATE, { botId: BOT_ID, version: '1.0' })).toThrow(/version must be x\.y\.z/);
    expect(() => buildManifest(TEMPLATE, { botId: BOT_ID, version: '1.0.0', domains: ['not a domain'] })).toThrow(
      /not a domain/,
    );
    expect(() => buildManifest('{"id":"${{NOPE}}"}', { botId: BOT_ID, version: '1.0.0' })).toThrow(
      /unknown placeholder \$\{\{NOPE\}\}/,
    );
    expect(toDomain('HTTPS://Example.COM:8443/x')).toBe('example.com:8443');
  });
});

describe('package', () => {
  let root: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'teams-package-'));
    fs.mkdirSync(path.join(root, 'appPackage'));
    for (const file of ['manifest.json', 'color.png', 'outline.png']) {
      fs.copyFileSync(path.join(REPO_ROOT, 'appPackage', file), path.join(root, 'appPackage', file));
    }
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'x', version: '3.2.1' }));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('writes appPackage/build/<name>.zip with manifest.json, color.png (192x192) and outline.png (32x32)', () => {
    const { zipPath, manifest } = packageTeamsApp({ root, botId: BOT_ID, domains: ['func-abc.azurewebsites.net'] });
    expect(path.relative(root, zipPath)).toBe(path.join('appPackage', 'build', 'teams-courier.zip'));
    const files = readZip(fs.readFileSync(zipPath));
    expect([...files.keys()]).toEqual(['manifest.json', 'color.png', 'outline.png']);

    const packaged = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    expect(packaged).toEqual(manifest);
    expect(packaged.version).toBe('3.2.1');
    expect(validateAgainstSchema(packaged)).toEqual([]);

    for (const icon of ['color.png', 'outline.png']) {
      expect(files.get(icon), icon).toEqual(fs.readFileSync(path.join(REPO_ROOT, 'appPackage', icon)));
    }
    expect(pngHeader(files.get('color.png')!)).toMatchObject({ width: COLOR_ICON_SIZE, height: COLOR_ICON_SIZE });
    expect(pngHeader(files.get('outline.png')!)).toMatchObject({
      width: OUTLINE_ICON_SIZE,
      height: OUTLINE_ICON_SIZE,
    });
  });

  it('ships the committed icons: color 192x192, outline 32x32 with an alpha channel (white on transparent)', () => {
    const color = pngHeader(fs.readFileSync(path.join(REPO_ROOT, 'appPackage/color.png')));
    const outline = pngHeader(fs.readFileSync(path.join(REPO_ROOT, 'appPackage/outline.png')));
    expect(color).toMatchObject({ width: 192, height: 192 });
    expect(outline).toEqual({ width: 32, height: 32, bitDepth: 8, colourType: 6 }); // 6: RGBA
  });

  // A second, independent reader (Info-ZIP's unzip) that also checks every CRC-32, which fflate's
  // unzipSync does not: a machine without it reports this test as skipped.
  it.skipIf(spawnSync('unzip', ['-v']).error !== undefined)(
    'opens with unzip: every entry passes its CRC check, in the order Teams expects',
    () => {
      const { zipPath } = packageTeamsApp({ root, botId: BOT_ID });
      const test = spawnSync('unzip', ['-t', zipPath], { encoding: 'utf8' });
      expect(test.status, test.stdout + test.stderr).toBe(0);
      expect(test.stdout).toMatch(/No errors detected/);
      const list = spawnSync('unzip', ['-Z1', zipPath], { encoding: 'utf8' });
      expect(list.stdout.trim().split('\n')).toEqual(['manifest.json', 'color.png', 'outline.png']);
      const manifest = spawnSync('unzip', ['-p', zipPath, 'manifest.json'], { encoding: 'utf8' });
      expect(JSON.parse(manifest.stdout)).toMatchObject({ bots: [expect.objectContaining({ botId: BOT_ID })] });
    },
  );

  it('is byte-for-byte reproducible', () => {
    const first = fs.readFileSync(packageTeamsApp({ root, botId: BOT_ID }).zipPath);
    const second = fs.readFileSync(packageTeamsApp({ root, botId: BOT_ID }).zipPath);
    expect(second.equals(first)).toBe(true);
  });

  it('checks the icons: present, and the size the manifest requires', () => {
    fs.copyFileSync(path.join(root, 'appPackage/outline.png'), path.join(root, 'appPackage/color.png')); // 32x32
    expect(() => packageTeamsApp({ root, botId: BOT_ID })).toThrow(/color\.png must be 192x192 \(is 32x32\)/);
    fs.writeFileSync(path.join(root, 'appPackage/color.png'), 'not a png');
    expect(() => packageTeamsApp({ root, botId: BOT_ID })).toThrow(/not a PNG file/);
    fs.rmSync(path.join(root, 'appPackage/color.png'));
    expect(() => packageTeamsApp({ root, botId: BOT_ID })).toThrow(/color\.png is missing/);
  });

  it('finds the bot id in MicrosoftAppId, then local.settings.json; empty counts as unset', () => {
    expect(findBotId(root, {})).toBeUndefined();
    fs.writeFileSync(path.join(root, 'local.settings.json'), JSON.stringify({ Values: { MicrosoftAppId: BOT_ID } }));
    expect(findBotId(root, {})).toBe(BOT_ID);
    expect(findBotId(root, { MicrosoftAppId: '  ' })).toBe(BOT_ID);
    expect(findBotId(root, { MicrosoftAppId: '11111111-2222-4333-8444-555555555555' })).toBe(
      '11111111-2222-4333-8444-555555555555',
    );
    fs.writeFileSync(path.join(root, 'local.settings.json'), '{ not json');
    expect(() => findBotId(root, {})).toThrow(/local\.settings\.json is not valid JSON/);
  });
});

describe('zip', () => {
  it('round-trips entries, nested names and empty files included, and rejects duplicate names', () => {
    const random = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 197 + 13) % 251));
    const text = Buffer.from('a'.repeat(1000));
    const zip = createZip([
      { name: 'random.bin', data: random },
      { name: 'dir/text.txt', data: text },
      { name: 'empty', data: Buffer.alloc(0) },
    ]);
    const files = readZip(zip);
    expect([...files.keys()]).toEqual(['random.bin', 'dir/text.txt', 'empty']);
    expect(files.get('random.bin')).toEqual(random);
    expect(files.get('dir/text.txt')).toEqual(text);
    expect(files.get('empty')).toEqual(Buffer.alloc(0));
    expect(zip.length).toBeLessThan(random.length + text.length);
    expect(() =>
      createZip([
        { name: 'a', data: text },
        { name: 'a', data: random },
      ]),
    ).toThrow(/duplicate/);
  });
});
