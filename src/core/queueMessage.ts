/**
 * Queue message sizes, shared by everything that admits a job (the HTTP API, the CLI, the sender).
 * Pure: the storage SDK stays out of the modules that only need to measure.
 */

/** Queue messages may stay invisible for at most 7 days. */
export const MAX_VISIBILITY_SECONDS = 7 * 24 * 60 * 60;
/** A queue message holds at most 64 KiB; the text travels XML-escaped, so escapes count too. */
export const MAX_QUEUE_MESSAGE_BYTES = 64 * 1024;
/** Room left for the job itself in a message the sender writes (envelope and margin). */
export const MAX_ENVELOPED_JOB_BYTES = MAX_QUEUE_MESSAGE_BYTES - 1024;

/** The size a message text takes in a queue message. */
export function queueMessageBytes(text: string): number {
  let escapes = 0;
  for (const ch of text) if (ch === '<' || ch === '>' || ch === '&' || ch === '"' || ch === "'") escapes += 5;
  return Buffer.byteLength(text, 'utf8') + escapes;
}
