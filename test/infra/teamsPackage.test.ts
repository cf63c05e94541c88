import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Ajv from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  COLOR_ICON_SIZE,
  OUTLINE_ICON_SIZE,
  buildManifest,
  crc32,
  createZip,
  deriveAppId,
  findBotId,
  packageTeamsApp,
  pngSize,
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

/** Reads a ZIP back through its central directory, checking each entry's CRC-32. */
function readZip(zip: Buffer): Map<string, Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd, 'end of central directory').toBeGreaterThanOrEqual(0);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    expect(zip.readUInt32LE(at)).toBe(0x02014b50);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);

    expect(zip.readUInt32LE(localOffset)).toBe(0x04034b50);
    expect(zip.toString('utf8', localOffset + 30, localOffset + 30 + zip.readUInt16LE(localOffset + 26))).toBe(name);
    const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const body = zip.subarray(dataStart, dataStart + compressedSize);
    const data = method === 8 ? zlib.inflateRawSync(body) : Buffer.from(body);
    expect([0, 8]).toContain(method);
    expect(data.length, name).toBe(size);
    expect(crc32(data), name).toBe(crc);
    files.set(name, data);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}

/** RGBA pixels of a PNG written by createPng (8-bit RGBA, filter type 0 on every row). */
function rgbaPixels(png: Buffer): Uint8Array[] {
  const { width, height } = pngSize(png);
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    if (png.toString('ascii', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const pixels: Uint8Array[] = [];
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width * 4 + 1)], 'filter type').toBe(0);
    for (let x = 0; x < width; x++)
      pixels.push(raw.subarray(y * (width * 4 + 1) + 1 + x * 4, y * (width * 4 + 1) + 5 + x * 4));
  }
  return pixels;
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
    fs.copyFileSync(path.join(REPO_ROOT, 'appPackage/manifest.json'), path.join(root, 'appPackage/manifest.json'));
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

    expect(pngSize(files.get('color.png')!)).toEqual({ width: COLOR_ICON_SIZE, height: COLOR_ICON_SIZE });
    expect(pngSize(files.get('outline.png')!)).toEqual({ width: OUTLINE_ICON_SIZE, height: OUTLINE_ICON_SIZE });
  });

  it('draws the outline icon white on transparent, and the color icon opaque', () => {
    const files = readZip(fs.readFileSync(packageTeamsApp({ root, botId: BOT_ID }).zipPath));
    const outline = rgbaPixels(files.get('outline.png')!);
    expect(outline.every(([r, g, b]) => r === 255 && g === 255 && b === 255)).toBe(true);
    expect(outline.some((p) => p[3] === 0)).toBe(true);
    expect(outline.some((p) => p[3] === 255)).toBe(true);
    expect(rgbaPixels(files.get('color.png')!).every((p) => p[3] === 255)).toBe(true);
  });

  // An independent reader (Info-ZIP's unzip), not the zip code under test: a machine without it
  // reports this test as skipped, never as passed.
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

  it('uses custom icons from appPackage/ and checks their size', () => {
    const { zipPath } = packageTeamsApp({ root, botId: BOT_ID });
    const files = readZip(fs.readFileSync(zipPath));
    fs.writeFileSync(path.join(root, 'appPackage/color.png'), files.get('outline.png')!); // 32x32, wrong size
    expect(() => packageTeamsApp({ root, botId: BOT_ID })).toThrow(/color\.png must be 192x192 \(is 32x32\)/);
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

describe('zip and crc', () => {
  it('computes CRC-32 (ISO-HDLC check value)', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('stores entries that do not shrink and deflates those that do', () => {
    const random = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 197 + 13) % 251));
    const text = Buffer.from('a'.repeat(1000));
    const zip = createZip([
      { name: 'random.bin', data: random },
      { name: 'dir/text.txt', data: text },
      { name: 'empty', data: Buffer.alloc(0) },
    ]);
    const files = readZip(zip);
    expect(files.get('random.bin')).toEqual(random);
    expect(files.get('dir/text.txt')).toEqual(text);
    expect(files.get('empty')).toEqual(Buffer.alloc(0));
    expect(zip.length).toBeLessThan(random.length + text.length);
  });
});
