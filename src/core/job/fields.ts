/** Checks of a job's plain fields, each reporting its problem by path instead of throwing. */
import type { Problem } from '../../errors';
import type { Json } from '../json';

export interface CheckStringOptions {
  /** Most characters allowed (UTF-16 units). Default: no limit. */
  readonly max?: number;
  /** Report a missing value. Default: false (missing is fine). */
  readonly required?: boolean;
  /** The value becomes a Bot Connector URL segment, where "." and ".." would change the path. Default: false. */
  readonly urlSegment?: boolean;
}

/** A non-blank string field, or undefined (with a problem unless it was absent and optional). */
export function checkString(
  body: Json,
  key: string,
  path: string,
  problems: Problem[],
  opts: CheckStringOptions = {},
): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (opts.required) problems.push({ path, message: 'is required' });
    return undefined;
  }
  if (typeof value !== 'string') {
    problems.push({ path, message: `must be a string (got ${Array.isArray(value) ? 'array' : typeof value})` });
    return undefined;
  }
  if (value.trim() === '') {
    problems.push({ path, message: 'must not be empty' });
    return undefined;
  }
  if (opts.max !== undefined && value.length > opts.max) {
    problems.push({ path, message: `must be at most ${opts.max} characters (got ${value.length})` });
    return undefined;
  }
  if (opts.urlSegment && /^\.{1,2}$/.test(value)) {
    problems.push({ path, message: 'must not be "." or ".." (it would change the Bot Connector URL)' });
    return undefined;
  }
  return value;
}

export function parseNotBefore(body: Json, problems: Problem[]): Date | undefined {
  if (body.notBefore === undefined) return undefined;
  const raw = body.notBefore;
  // ISO 8601 with a date and a time zone; Date.parse alone would accept "5" or "Tuesday".
  if (
    typeof raw !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) ||
    Number.isNaN(Date.parse(raw))
  ) {
    problems.push({
      path: 'notBefore',
      message: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z',
    });
    return undefined;
  }
  return new Date(raw);
}
