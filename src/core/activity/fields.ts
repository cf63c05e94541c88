/**
 * The fields of an activity that are stored, read from `unknown`. Ids and URLs that are stored and
 * looked up are refused (400) when malformed; names and locales are repaired or dropped.
 */
import { BadRequestError } from '../../errors';
import { isObject } from '../json';
import { toTableKey } from '../tableKeys';
import type { ChannelAccount } from './types';

/**
 * Limits on what is stored from an activity. Table Storage refuses a string property over 64 KiB
 * (32 K UTF-16 units) and any key or URL with a lone surrogate, and such a refusal must not become
 * a 5xx: the Bot Connector would retry it for ever. Teams' own values are far shorter.
 */
export const MAX_ID_LENGTH = 1024;
/** Display names are shown, never looked up: a longer one is cut, not refused. */
export const MAX_NAME_LENGTH = 256;
/** A locale is a BCP 47 tag; anything longer is not one and is ignored. */
export const MAX_LOCALE_LENGTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

export function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** An id or URL that is stored and looked up: refused (400) when it is not well-formed or too long. */
export function idString(value: unknown, field: string): string | undefined {
  const text = optionalString(value);
  if (text === undefined) return undefined;
  if (LONE_SURROGATE.test(text)) throw new BadRequestError(`"${field}" is not well-formed Unicode.`);
  if (text.length > MAX_ID_LENGTH) throw new BadRequestError(`"${field}" is too long.`);
  return text;
}

/** A display name: lone surrogates replaced, cut to MAX_NAME_LENGTH (never inside a surrogate pair). */
export function nameString(value: unknown): string | undefined {
  const text = optionalString(value);
  if (text === undefined) return undefined;
  let name = text.replace(LONE_SURROGATES, '\uFFFD');
  if (name.length > MAX_NAME_LENGTH) {
    name = name.slice(0, MAX_NAME_LENGTH);
    if (/[\uD800-\uDBFF]$/.test(name)) name = name.slice(0, -1);
  }
  return name;
}

export function localeString(value: unknown): string | undefined {
  const text = optionalString(value);
  return text !== undefined && text.length <= MAX_LOCALE_LENGTH && /^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$/.test(text)
    ? text
    : undefined;
}

export function toAccount(value: unknown, field: string): ChannelAccount | undefined {
  if (!isObject(value)) return undefined;
  const id = idString(value.id, `${field}.id`);
  if (id === undefined) return undefined;
  const name = nameString(value.name);
  const aadObjectId = idString(value.aadObjectId, `${field}.aadObjectId`);
  if (aadObjectId !== undefined) assertKeyable(aadObjectId, `${field}.aadObjectId`);
  return { id, ...(name === undefined ? {} : { name }), ...(aadObjectId === undefined ? {} : { aadObjectId }) };
}

export function toAccounts(value: unknown, field: string): ChannelAccount[] {
  if (!Array.isArray(value)) return [];
  return value
    .map((entry, i) => toAccount(entry, `${field}[${i}]`))
    .filter((a): a is ChannelAccount => a !== undefined);
}

export function toIdName(value: unknown, field: string): { id: string; name?: string } | undefined {
  if (!isObject(value)) return undefined;
  const id = idString(value.id, `${field}.id`);
  if (id === undefined) return undefined;
  const name = nameString(value.name);
  return { id, ...(name === undefined ? {} : { name }) };
}

/** Ids become Table Storage keys; one too long to be a key is bad input, not a server error. */
export function assertKeyable(value: string, field: string): void {
  try {
    toTableKey(value);
  } catch {
    throw new BadRequestError(`"${field}" is too long.`);
  }
}
