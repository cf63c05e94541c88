/**
 * The one polling wait of the tests, the chaos suite and the benchmark: no fixed sleeps, every wait
 * bounded in time and in count.
 */

/** Thrown by a `waitFor` check to end the wait at once (say, the process it waits for has exited). */
export class StopWaiting extends Error {
  override readonly name = 'StopWaiting';
}

/** What a check returns while the condition does not hold yet. */
export type NotYet = undefined | false;

const MAX_POLLS = 100_000;

/**
 * Polls `check` until it returns a value other than `undefined` or `false`, and resolves with that
 * value. An error thrown by `check` counts as "not yet" (storage restarting, a server not listening
 * yet) and is named in the timeout message; a `StopWaiting` error ends the wait at once.
 *
 * @param what named in the timeout error: "timed out after 5000 ms waiting for <what>"
 * @param timeoutMs how long to keep polling, in ms
 * @param intervalMs pause between polls, in ms; default: 20 ms, doubling up to 250 ms
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | NotYet | Promise<T | NotYet>,
  intervalMs?: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let pause = intervalMs ?? 20;
  let lastError: unknown;
  for (let poll = 0; poll < MAX_POLLS; poll += 1) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, pause));
    if (intervalMs === undefined) pause = Math.min(pause * 2, 250);
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message.split('\n')[0]})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}
