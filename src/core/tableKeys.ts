/**
 * Table Storage keys. PartitionKey and RowKey may not contain `/`, `\`, `#`, `?` or control
 * characters (U+0000-U+001F, U+007F-U+009F) and are limited to 1 KiB. Conversation ids contain
 * `:`, `;`, `@`, `=` and may contain anything Teams chooses, so every key goes through here.
 *
 * The encoding is percent-style and reversible: `%` itself is escaped first, so two different ids
 * can never map to the same key.
 */

// 1 KiB of UTF-16 is 512 code units.
export const MAX_KEY_LENGTH = 512;

// A lone surrogate (half of a UTF-16 pair) cannot be put in a URL (encodeURIComponent throws), so
// it is escaped as %uXXXX: a key built from any JavaScript string is a valid key.
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex
  /[%/\\#?\u0000-\u001f\u007f-\u009f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  return code > 0xff ? `%u${code.toString(16).toUpperCase()}` : `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
}

export function toTableKey(value: string): string {
  const key = value.replace(FORBIDDEN, escapeChar);
  if (key.length > MAX_KEY_LENGTH) {
    throw new RangeError(`key is ${key.length} characters after escaping; Table Storage allows ${MAX_KEY_LENGTH}`);
  }
  return key;
}

export function fromTableKey(key: string): string {
  return key.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_, wide: string | undefined, hex: string | undefined) =>
    String.fromCharCode(parseInt(wide ?? hex ?? '0', 16)),
  );
}
