/**
 * Child process: the function app on the local Functions host (host/host.ts `startHost`), in its
 * own process as in production. Log lines are formatted as usual but not written anywhere: they are
 * counted, and the inbound outcome of each activity (created / updated / unchanged) is tallied from
 * the app's `messages.captured` records.
 *
 * BENCH_CONFIG: { "env": { ...app settings; null removes a setting } }
 * Commands: `stats` (CPU of this process, log tallies), `close`.
 */
import { startHost } from '../host/host';
import { childConfig, emit, installLoopbackGuard, onCommands } from './lib/common';
import { REPO_ROOT } from './lib/common';

interface HostConfig {
  readonly env: Record<string, string | null>;
}

async function main(): Promise<void> {
  installLoopbackGuard();
  const config = childConfig<HostConfig>();
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(config.env)) env[key] = value === null ? undefined : value;

  const tally = { lines: 0, created: 0, updated: 0, unchanged: 0, warnings: 0, errors: 0, requests: 0 };
  const recentProblems: string[] = [];
  const sink = (line: string): void => {
    tally.lines += 1;
    if (line.includes('messages.captured')) {
      if (line.includes('"outcome":"created"')) tally.created += 1;
      else if (line.includes('"outcome":"updated"')) tally.updated += 1;
      else if (line.includes('"outcome":"unchanged"')) tally.unchanged += 1;
    }
    if (line.includes(' warning ')) tally.warnings += 1;
    if (line.includes(' error ')) {
      tally.errors += 1;
      if (recentProblems.length < 5) recentProblems.push(line.slice(0, 600));
    }
  };

  const host = await startHost({
    rootDir: REPO_ROOT,
    port: 0,
    env,
    emulator: false,
    embeddedAzurite: false,
    log: sink,
  });
  if (host.functionErrors.length > 0)
    throw new Error(`functions failed indexing: ${JSON.stringify(host.functionErrors)}`);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= host.close().catch(() => undefined);
    return closing;
  };

  onCommands(
    async (command) => {
      switch (command.cmd) {
        case 'stats': {
          const cpu = process.cpuUsage();
          return {
            cpuMs: (cpu.user + cpu.system) / 1000,
            tally: { ...tally },
            recentProblems,
            rssMb: process.memoryUsage().rss / 1048576,
          };
        }
        case 'close':
          await close();
          setImmediate(() => process.exit(0));
          return { ok: true };
        default:
          throw new Error(`unknown command ${String(command.cmd)}`);
      }
    },
    () => {
      void close().then(() => process.exit(0));
    },
  );

  emit({ ready: true, pid: process.pid, url: host.url, functions: host.functions.map((f) => f.name) });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
