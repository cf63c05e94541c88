/**
 * Shared by the registrations: a bad configuration is reported once per invocation as a structured
 * error naming every bad setting (it is also reported at start-up by the appStart hook), and the
 * request gets a generic 500.
 */
import { app } from '@azure/functions';
import { ConfigError } from './errors';
import type { Logger } from './log';
import { createLogger } from './log';
import { getConfig } from './runtime';

export async function withConfig<T extends { status?: number }>(
  log: Logger,
  run: () => Promise<T>,
): Promise<T | { status: number; jsonBody: unknown }> {
  try {
    getConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error('config.invalid', { problems: err.problems });
      return { status: 500, jsonBody: { error: 'Internal error' } };
    }
    throw err;
  }
  return run();
}

// Fail loudly at start-up: the host logs this before any request arrives.
app.hook.appStart(() => {
  try {
    getConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger((_level, line) => console.error(line)).error('config.invalid', {
      problems: err.problems,
      message: err.message,
    });
    throw err;
  }
});
