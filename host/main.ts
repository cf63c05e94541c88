/**
 * `npm start`: runs the function app in the current directory on the local Functions host, like
 * `func start` (which cannot be installed here).
 *
 * Environment: PORT (default 7071), HOST (default 127.0.0.1; a non-loopback address also needs
 * HOST_ALLOW_REMOTE=true), HOST_LOG_LEVEL (debug|info|warning|error),
 * HOST_QUEUE_MESSAGE_LEASE_SECONDS (lease of a dequeued message; default 600),
 * plus the app settings (local.settings.json `Values`; the environment wins). With
 * AzureWebJobsStorage=UseDevelopmentStorage=true and nothing on 127.0.0.1:10000-10002, Azurite is
 * started with its data in ./.azurite. With no MicrosoftAppId, the local Bot Connector emulator
 * (host/emulator) is started and its settings are used.
 *
 * SIGINT / SIGTERM: stop taking work, drain, run appTerminate hooks, stop what was started, exit 0.
 * A second signal exits at once with 1. When the host stops itself (a storage error the queue
 * extension would not handle: "An unhandled exception has occurred. Host is shutting down."), the
 * process exits with 1; Azure would start the host again.
 */
import { copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describeError } from './functionsCore';
import { oneLine } from './log';
import { startHost, type RunningHost } from './host';

export { startHost } from './host';
export type { HostFunctionInfo, RunningHost, StartHostOptions } from './host';

function fatal(event: string, error: unknown): void {
  console.error(`[host] ${new Date().toISOString()} error ${event} ${oneLine(describeError(error))}`);
}

/**
 * A fresh clone has no local.settings.json (it is git-ignored: it holds secrets). Like the Functions
 * templates, start from the committed example, so `npm start` works with nothing set by hand.
 */
export function ensureLocalSettings(rootDir: string, log: (line: string) => void): void {
  const settings = path.join(rootDir, 'local.settings.json');
  const example = path.join(rootDir, 'local.settings.example.json');
  if (existsSync(settings) || !existsSync(example)) return;
  copyFileSync(example, settings);
  log(
    `[host] ${new Date().toISOString()} info host.settings created local.settings.json from local.settings.example.json`,
  );
}

export async function main(): Promise<void> {
  let host: RunningHost;
  try {
    ensureLocalSettings(process.cwd(), (line) => console.log(line));
    host = await startHost({ rootDir: process.cwd(), embeddedAzurite: true, emulator: 'auto' });
  } catch (error) {
    fatal('host.start.failed', error);
    process.exit(1);
  }

  let stopping = false;
  const stop = (reason: string, exitCode: number): void => {
    if (stopping) {
      console.log(`[host] ${new Date().toISOString()} warning host.forcedExit reason=${reason}`);
      process.exit(1);
    }
    stopping = true;
    console.log(`[host] ${new Date().toISOString()} info host.signal reason=${reason}`);
    host.close().then(
      () => process.exit(exitCode),
      (error: unknown) => {
        fatal('host.stop.failed', error);
        process.exit(1);
      },
    );
  };
  void host.stopped.then((stopped) => {
    if (stopped.reason !== 'unhandledException' || stopping) return;
    stopping = true;
    fatal('host.stopped', stopped.error);
    process.exit(1);
  });
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  // As in the worker, an exception nobody caught ends the process (Azure would restart the worker).
  process.on('uncaughtException', (error) => {
    fatal('host.uncaughtException', error);
    stop('uncaughtException', 1);
  });
  process.on('unhandledRejection', (reason) => {
    fatal('host.unhandledRejection', reason);
    stop('unhandledRejection', 1);
  });
}

if (require.main === module) void main();
