/**
 * Builds the Teams app package: `appPackage/build/<name>.zip` with `manifest.json` and the two
 * committed icons, `appPackage/color.png` (192x192) and `appPackage/outline.png` (32x32, white on
 * transparent). The ZIP is written with fflate (a devDependency: only this script and
 * stagePackage.ts use it, never the deployed app).
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
 * - Icons: the files the manifest's `icons` names, in appPackage/; their sizes are checked.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { zipSync } from 'fflate';
import { readLocalSettingsFile } from '../src/cli/localSettings';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/;
/** Namespace of the derived Teams app ids (UUID v5); changing it changes every derived id. */
const APP_ID_NAMESPACE = 'a3c1f0de-5b7e-4c52-9a0e-6d2f1c8b7e41';

// --- Icons and ZIP --------------------------------------------------------------------------------

export const COLOR_ICON_SIZE = 192;
export const OUTLINE_ICON_SIZE = 32;

/** Width and height from a PNG's IHDR; throws if `data` is not a PNG. */
export function pngSize(data: Uint8Array): { width: number; height: number } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 24 || buf.readUInt32BE(0) !== 0x89504e47 || buf.toString('ascii', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG file');
  }
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

export interface ZipEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

/**
 * ZIP entries carry a DOS date, which starts in 1980. A fixed one (local time, as ZIP stores it)
 * makes the same inputs give the same bytes.
 */
const ZIP_MTIME = new Date(1980, 0, 1);

/** A ZIP archive of `entries`, deflated (fflate; no ZIP64, so at most 65,535 entries and 4 GiB). */
export function createZip(entries: readonly ZipEntry[]): Buffer {
  // fromEntries defines own properties, so even a name like `__proto__` stays a file name.
  const files = Object.fromEntries(entries.map((entry) => [entry.name, entry.data]));
  if (Object.keys(files).length !== entries.length) throw new Error('duplicate names in the ZIP entries');
  const zip = zipSync(files, { mtime: ZIP_MTIME });
  return Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
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

function readIcon(file: string, expected: number): Buffer {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing (a ${expected}x${expected} PNG)`);
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
  const manifestJson = `${JSON.stringify(manifest, null, 2)}\n`;
  const zip = createZip([
    { name: 'manifest.json', data: Buffer.from(manifestJson, 'utf8') },
    { name: icons.color, data: readIcon(path.join(appPackage, icons.color), COLOR_ICON_SIZE) },
    { name: icons.outline, data: readIcon(path.join(appPackage, icons.outline), OUTLINE_ICON_SIZE) },
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
  return readLocalSettingsFile(root).values.MicrosoftAppId?.trim() || undefined;
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
