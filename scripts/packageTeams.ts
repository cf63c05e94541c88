/**
 * Builds the Teams app package: `appPackage/build/<name>.zip` with `manifest.json`, `color.png`
 * (192x192) and `outline.png` (32x32, white on transparent). No dependencies: the PNGs and the ZIP
 * are written here with node:zlib.
 *
 *   npm run package:teams -- [--bot-id <guid>] [--app-id <guid>] [--domain <host or URL>]...
 *                            [--version <x.y.z>] [--out <file.zip>]
 *
 * - Bot id: `--bot-id`, else the `MicrosoftAppId` environment variable, else `Values.MicrosoftAppId`
 *   in local.settings.json. After `azd up`: `--bot-id "$(azd env get-value BOT_APP_ID)"`.
 * - Teams app id: `--app-id`, else derived from the bot id (UUID v5), so rebuilding the package for
 *   the same bot updates the installed app instead of adding a second one.
 * - `validDomains`: every `--domain` (a host, or a URL whose host is taken).
 * - Version: `--version`, else package.json's. Teams only accepts an update with a higher version.
 * - Icons: `appPackage/color.png` / `appPackage/outline.png` if present, else generated.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/;
/** Namespace of the derived Teams app ids (UUID v5); changing it changes every derived id. */
const APP_ID_NAMESPACE = 'a3c1f0de-5b7e-4c52-9a0e-6d2f1c8b7e41';

export const COLOR_ICON_SIZE = 192;
export const OUTLINE_ICON_SIZE = 32;

// --- CRC-32 (ISO-HDLC, as ZIP and PNG use it) ---------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// --- PNG ------------------------------------------------------------------------------------------

/** RGBA, 0-255 each. */
export type Rgba = readonly [number, number, number, number];

function pngChunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** An 8-bit RGBA PNG; `pixel(x, y)` gives each pixel's colour. */
export function createPng(width: number, height: number, pixel: (x: number, y: number) => Rgba): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: RGBA
  // compression 0, filter 0, interlace 0 (already zero)
  const stride = width * 4 + 1;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0; // filter type None
    for (let x = 0; x < width; x++) {
      const [r, g, b, a] = pixel(x, y);
      raw.set([r, g, b, a], y * stride + 1 + x * 4);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Width and height from a PNG's IHDR; throws if `data` is not a PNG. */
export function pngSize(data: Uint8Array): { width: number; height: number } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 24 || buf.readUInt32BE(0) !== 0x89504e47 || buf.toString('ascii', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG file');
  }
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

// The icon: an envelope. Shapes are in unit coordinates (0..1) and sampled 4x4 per pixel for
// smooth edges.

function distanceToSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function coverage(size: number, x: number, y: number, inside: (u: number, v: number) => boolean): number {
  const n = 4;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) if (inside((x + (i + 0.5) / n) / size, (y + (j + 0.5) / n) / size)) hits++;
  }
  return hits / (n * n);
}

const ENVELOPE = { left: 0.22, right: 0.78, top: 0.3, bottom: 0.7 };
const FLAP_TIP = { x: 0.5, y: 0.54 };

function inFlap(u: number, v: number, halfWidth: number): boolean {
  const { left, right, top } = ENVELOPE;
  return (
    distanceToSegment(u, v, left, top, FLAP_TIP.x, FLAP_TIP.y) <= halfWidth ||
    distanceToSegment(u, v, FLAP_TIP.x, FLAP_TIP.y, right, top) <= halfWidth
  );
}

function hexToRgb(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`accentColor must look like #RRGGBB (got "${hex}")`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/** 192x192 full-colour icon: a white envelope on the accent colour. */
export function colorIcon(accentColor: string): Buffer {
  const accent = hexToRgb(accentColor);
  const size = COLOR_ICON_SIZE;
  const { left, right, top, bottom } = ENVELOPE;
  return createPng(size, size, (x, y) => {
    const body = coverage(
      size,
      x,
      y,
      (u, v) => u >= left && u <= right && v >= top && v <= bottom && !inFlap(u, v, 0.025),
    );
    const mix = (c: number) => Math.round(c + (255 - c) * body);
    return [mix(accent[0]), mix(accent[1]), mix(accent[2]), 255];
  });
}

/** 32x32 outline icon: a white envelope outline on transparent (Teams requires white + transparent). */
export function outlineIcon(): Buffer {
  const size = OUTLINE_ICON_SIZE;
  // Pixel-aligned 2 px strokes, so the edges stay crisp at 32x32.
  const outer = { left: 5, right: 27, top: 8, bottom: 24 };
  const inner = { left: 7, right: 25, top: 10, bottom: 22 };
  const tip = { x: 16, y: 17.5 };
  const inEnvelopeOutline = (u: number, v: number) => {
    const [px, py] = [u * size, v * size];
    const inOuter = px >= outer.left && px <= outer.right && py >= outer.top && py <= outer.bottom;
    const inInner = px > inner.left && px < inner.right && py > inner.top && py < inner.bottom;
    const inFlapStroke =
      inOuter &&
      (distanceToSegment(px, py, inner.left, inner.top - 1, tip.x, tip.y) <= 1 ||
        distanceToSegment(px, py, tip.x, tip.y, inner.right, inner.top - 1) <= 1);
    return (inOuter && !inInner) || inFlapStroke;
  };
  return createPng(size, size, (x, y) => [255, 255, 255, Math.round(255 * coverage(size, x, y, inEnvelopeOutline))]);
}

// --- ZIP (PKWARE APPNOTE 6.3: local headers, central directory, end record; no ZIP64) ------------

export interface ZipEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

/** Fixed timestamp (1980-01-01 00:00, the DOS epoch) so that the same inputs give the same bytes. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/** A ZIP archive; each entry deflated, or stored when deflating does not make it smaller. */
export function createZip(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const data = Buffer.from(entry.data);
    const deflated = zlib.deflateRawSync(data, { level: 9 });
    const method = deflated.length < data.length ? 8 : 0;
    const body = method === 8 ? deflated : data;
    const crc = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); // local file header signature
    local.writeUInt16LE(20, 4); // version needed to extract (2.0: deflate)
    local.writeUInt16LE(0x0800, 6); // flags: names are UTF-8
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28); // extra field length
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); // central directory header signature
    central.writeUInt16LE(20, 4); // version made by (2.0, MS-DOS attributes)
    central.writeUInt16LE(20, 6); // version needed to extract
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk number, internal and external attributes: 0
    central.writeUInt32LE(offset, 42); // offset of the local header
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }
  const centralDirectory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); // end of central directory signature
  end.writeUInt16LE(entries.length, 8); // entries on this disk
  end.writeUInt16LE(entries.length, 10); // entries in total
  end.writeUInt32LE(centralDirectory.length, 12);
  end.writeUInt32LE(offset, 16); // offset of the central directory
  return Buffer.concat([...locals, centralDirectory, end]);
}

// --- Manifest -------------------------------------------------------------------------------------

/** A UUID v5 (RFC 9562 §5.5) of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The Teams app id used when none is given: stable per bot id. */
export function deriveAppId(botId: string): string {
  return uuidV5(botId.toLowerCase(), APP_ID_NAMESPACE);
}

/** A host name for `validDomains`, from a host or a URL. */
export function toDomain(value: string): string {
  const trimmed = value.trim();
  const host = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? new URL(trimmed).host : trimmed.replace(/\/.*$/, '');
  if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?$/i.test(host)) throw new Error(`not a domain: "${value}"`);
  return host.toLowerCase();
}

export interface ManifestOptions {
  readonly botId: string;
  /** Default: derived from the bot id. */
  readonly appId?: string;
  readonly version: string;
  readonly domains?: readonly string[];
}

/** Fills the template (appPackage/manifest.json) and returns the manifest object. */
export function buildManifest(templateText: string, options: ManifestOptions): Record<string, unknown> {
  if (!GUID.test(options.botId)) throw new Error(`the bot id must be a GUID (got "${options.botId}")`);
  const appId = options.appId ?? deriveAppId(options.botId);
  if (!GUID.test(appId)) throw new Error(`the Teams app id must be a GUID (got "${appId}")`);
  if (!SEMVER.test(options.version)) throw new Error(`the version must be x.y.z (got "${options.version}")`);

  const values: Record<string, string> = {
    BOT_ID: options.botId.toLowerCase(),
    TEAMS_APP_ID: appId.toLowerCase(),
    APP_VERSION: options.version,
  };
  const filled = templateText.replace(/\$\{\{\s*([A-Z0-9_]+)\s*\}\}/g, (match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`the manifest template uses an unknown placeholder ${match}`);
    return value;
  });
  const manifest = JSON.parse(filled) as Record<string, unknown>;

  const domains = new Set(Array.isArray(manifest.validDomains) ? (manifest.validDomains as string[]) : []);
  for (const domain of options.domains ?? []) domains.add(toDomain(domain));
  manifest.validDomains = [...domains];
  return manifest;
}

// --- Package --------------------------------------------------------------------------------------

export interface PackageOptions {
  /** Repository root (appPackage/, package.json, local.settings.json). Default: the current directory. */
  readonly root?: string;
  readonly botId: string;
  readonly appId?: string;
  /** Default: package.json's version. */
  readonly version?: string;
  readonly domains?: readonly string[];
  /** Default: appPackage/build/<short name>.zip. */
  readonly out?: string;
}

export interface PackageResult {
  readonly zipPath: string;
  readonly manifest: Record<string, unknown>;
}

function readIcon(file: string, expected: number, generate: () => Buffer): Buffer {
  if (!fs.existsSync(file)) return generate();
  const data = fs.readFileSync(file);
  const { width, height } = pngSize(data);
  if (width !== expected || height !== expected) {
    throw new Error(`${file} must be ${expected}x${expected} (is ${width}x${height})`);
  }
  return data;
}

/** Writes the package and, next to it, the filled manifest.json for inspection. */
export function packageTeamsApp(options: PackageOptions): PackageResult {
  const root = path.resolve(options.root ?? process.cwd());
  const appPackage = path.join(root, 'appPackage');
  const version =
    options.version ??
    (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const manifest = buildManifest(fs.readFileSync(path.join(appPackage, 'manifest.json'), 'utf8'), {
    botId: options.botId,
    version,
    ...(options.appId === undefined ? {} : { appId: options.appId }),
    ...(options.domains === undefined ? {} : { domains: options.domains }),
  });
  const icons = manifest.icons as { color: string; outline: string };
  const accentColor = manifest.accentColor as string;
  const manifestJson = `${JSON.stringify(manifest, null, 2)}\n`;
  const zip = createZip([
    { name: 'manifest.json', data: Buffer.from(manifestJson, 'utf8') },
    {
      name: icons.color,
      data: readIcon(path.join(appPackage, icons.color), COLOR_ICON_SIZE, () => colorIcon(accentColor)),
    },
    { name: icons.outline, data: readIcon(path.join(appPackage, icons.outline), OUTLINE_ICON_SIZE, outlineIcon) },
  ]);

  const shortName = (manifest.name as { short: string }).short;
  const slug =
    shortName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'teams-app';
  const zipPath = path.resolve(root, options.out ?? path.join('appPackage', 'build', `${slug}.zip`));
  fs.mkdirSync(path.dirname(zipPath), { recursive: true });
  fs.writeFileSync(zipPath, zip);
  fs.writeFileSync(path.join(path.dirname(zipPath), 'manifest.json'), manifestJson);
  return { zipPath, manifest };
}

/** The bot id from the environment, else local.settings.json (empty values count as unset). */
export function findBotId(root: string, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.MicrosoftAppId?.trim();
  if (fromEnv) return fromEnv;
  const settingsFile = path.join(root, 'local.settings.json');
  if (!fs.existsSync(settingsFile)) return undefined;
  let settings: { Values?: Record<string, string> };
  try {
    settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8')) as typeof settings;
  } catch (err) {
    throw new Error(`${settingsFile} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return settings.Values?.MicrosoftAppId?.trim() || undefined;
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      'bot-id': { type: 'string' },
      'app-id': { type: 'string' },
      domain: { type: 'string', multiple: true },
      version: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  const root = process.cwd();
  const botId = values['bot-id']?.trim() || findBotId(root, process.env);
  if (botId === undefined) {
    throw new Error('no bot id: pass --bot-id <guid>, or set MicrosoftAppId (environment or local.settings.json)');
  }
  const result = packageTeamsApp({
    root,
    botId,
    ...(values['app-id'] === undefined ? {} : { appId: values['app-id'] }),
    ...(values.version === undefined ? {} : { version: values.version }),
    ...(values.domain === undefined ? {} : { domains: values.domain }),
    ...(values.out === undefined ? {} : { out: values.out }),
  });
  const bots = result.manifest.bots as { botId: string }[];
  console.log(`Teams app package: ${path.relative(root, result.zipPath)}`);
  console.log(
    `  app id ${String(result.manifest.id)}, bot id ${bots[0]?.botId}, version ${String(result.manifest.version)}`,
  );
  console.log('  Upload it in Teams (Apps > Manage your apps > Upload an app) or the Teams admin center.');
}

// Run only as a script (`node dist/scripts/packageTeams.js`), not when imported by tests.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === __filename) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`package:teams: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
