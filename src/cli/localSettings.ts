/**
 * Reads `local.settings.json`, the one reader for both of its users: the CLI (./settings.ts) and
 * the local host (host/settings.ts). It lives in src/ because the CLI ships without host/, and
 * src/ never imports host/. A missing file is normal: the settings then come from the environment.
 *
 * As in Core Tools: `Values` are the app settings (a non-string value becomes a string, null drops
 * the setting), `Host` holds the local host's own options, and an encrypted file
 * (`IsEncrypted: true`) is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Why the file could not be used; each reader adds its own advice for `encrypted`. */
export class LocalSettingsError extends Error {
  override readonly name = 'LocalSettingsError';
  readonly code: 'invalid' | 'encrypted';

  constructor(code: 'invalid' | 'encrypted', message: string) {
    super(message);
    this.code = code;
  }
}

export interface LocalSettings {
  readonly values: Record<string, string>;
  /** The `Host` section, unchecked (the local host reads `LocalHttpPort` from it). */
  readonly host?: unknown;
  /** The file that was read; undefined when there is none. */
  readonly path?: string;
}

/** `local.settings.json` in `dir`, or no values when there is no such file. */
export function readLocalSettingsFile(dir: string): LocalSettings {
  const file = path.join(dir, 'local.settings.json');
  if (!existsSync(file)) return { values: {} };
  let parsed: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw new LocalSettingsError('invalid', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(parsed)) throw new LocalSettingsError('invalid', `${file} must contain a JSON object`);
  if (parsed.IsEncrypted === true)
    throw new LocalSettingsError('encrypted', `${file} is encrypted (IsEncrypted: true)`);
  const values: Record<string, string> = {};
  if (parsed.Values !== undefined) {
    if (!isRecord(parsed.Values)) throw new LocalSettingsError('invalid', `${file}: "Values" must be an object`);
    for (const [key, value] of Object.entries(parsed.Values)) {
      if (value !== null && value !== undefined) values[key] = typeof value === 'string' ? value : String(value);
    }
  }
  return { values, ...(parsed.Host === undefined ? {} : { host: parsed.Host }), path: file };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
