/**
 * The small parsers every setting goes through. Each takes the setting's name and a `problems` list:
 * a bad value adds a problem naming the setting and yields a fallback, so loadConfig can report
 * every problem at once.
 */
import type { Problem } from '../errors';

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads a trimmed setting; empty counts as unset (the portal and azd write empty strings). */
export function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function parseHttpsUrl(value: string, name: string, problems: Problem[], allowHttp = false): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push({ path: name, message: 'is not a valid URL' });
    return undefined;
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    problems.push({ path: name, message: `must be an https URL (got ${url.protocol})` });
    return undefined;
  }
  return url.toString();
}

export function parseInteger(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
  problems: Problem[],
): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push({ path: name, message: `must be a whole number from ${min} to ${max} (got "${raw}")` });
    return fallback;
  }
  return value;
}

/** Normalises an origin list entry: `https://host[:port]`, a trailing slash allowed, no path. */
export function parseTrustedOrigins(raw: string | undefined, problems: Problem[]): string[] {
  if (raw === undefined) return [];
  const origins: string[] = [];
  for (const entry of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      problems.push({ path: 'BOT_TRUSTED_SERVICE_URLS', message: `"${entry}" is not a valid URL` });
      continue;
    }
    if (url.protocol !== 'https:') {
      problems.push({ path: 'BOT_TRUSTED_SERVICE_URLS', message: `"${entry}" must use https` });
      continue;
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
      problems.push({
        path: 'BOT_TRUSTED_SERVICE_URLS',
        message: `"${entry}" must be an origin (scheme, host and port only)`,
      });
      continue;
    }
    origins.push(url.origin);
  }
  return origins;
}
