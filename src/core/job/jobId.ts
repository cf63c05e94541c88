/**
 * Job ids: each becomes a Table Storage key, so it must fit one once escaped (tableKeys.ts), with
 * room for what teams-courier adds to it.
 */
import type { Problem } from '../../errors';
import { isObject, type Json } from '../json';
import { toTableKey } from '../tableKeys';
import { checkString } from './fields';

export const MAX_JOB_ID_LENGTH = 128;
/**
 * A job id becomes a Table Storage key (1 KiB, escaped by tableKeys.ts, where one character can take
 * six). A caller's id must leave room for a caller prefix and a broadcast child's `~<n>`.
 */
export const MAX_JOB_ID_KEY_LENGTH = 400;
/** Internal ids (caller prefix, child suffix) still fit a key. */
export const MAX_INTERNAL_ID_KEY_LENGTH = 480;

/** True when `id` fits a Table Storage key of at most `max` characters once escaped. */
export function fitsKey(id: string, max: number): boolean {
  if (id === '') return false;
  try {
    return toTableKey(id).length <= max;
  } catch {
    return false;
  }
}

/** A job id field: a string that fits a table key with room for a caller prefix and a child suffix. */
export function checkJobId(
  body: Json,
  key: string,
  problems: Problem[],
  opts: { readonly required?: boolean } = {},
): string | undefined {
  const id = checkString(body, key, key, problems, { max: MAX_JOB_ID_LENGTH, required: opts.required });
  if (id !== undefined && !fitsKey(id, MAX_JOB_ID_KEY_LENGTH)) {
    problems.push({
      path: key,
      message: `is too long once escaped for Table Storage (at most ${MAX_JOB_ID_KEY_LENGTH} characters, where "/\\#?%" and control or unpaired surrogate characters count as 3 to 6)`,
    });
    return undefined;
  }
  return id;
}

/** The job id, if the body has a usable one, for recording a job that failed validation. */
export function peekJobId(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const id = body.id;
  return typeof id === 'string' &&
    id.trim() !== '' &&
    id.length <= MAX_JOB_ID_LENGTH &&
    fitsKey(id, MAX_JOB_ID_KEY_LENGTH)
    ? id
    : undefined;
}
