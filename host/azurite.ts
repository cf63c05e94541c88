/**
 * Starts the real Azurite (the npm package) as a child process and reports its ports.
 * Used by `npm start` (persistent, in a git-ignored folder) and by the tests (in memory, free ports).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

// Azurite's well-known development account; the key is public and documented by Microsoft.
export const DEV_ACCOUNT_NAME = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Folder for persistent data; omitted means in-memory. */
  readonly location?: string;
  /** Fixed ports; 0 (default) lets the OS pick free ones. */
  readonly blobPort?: number;
  readonly queuePort?: number;
  readonly tablePort?: number;
  /** Milliseconds to wait for all three services; default 30000. */
  readonly startTimeoutMs?: number;
}

export interface AzuriteInstance {
  readonly blobPort: number;
  readonly queuePort: number;
  readonly tablePort: number;
  /** A connection string for the three services (http, development account). */
  readonly connectionString: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export function developmentConnectionString(
  ports: { blobPort: number; queuePort: number; tablePort: number },
  host = '127.0.0.1',
): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${DEV_ACCOUNT_NAME}`,
    `AccountKey=${DEV_ACCOUNT_KEY}`,
    `BlobEndpoint=http://${host}:${ports.blobPort}/${DEV_ACCOUNT_NAME}`,
    `QueueEndpoint=http://${host}:${ports.queuePort}/${DEV_ACCOUNT_NAME}`,
    `TableEndpoint=http://${host}:${ports.tablePort}/${DEV_ACCOUNT_NAME}`,
  ].join(';');
}

function azuriteEntry(): string {
  return require.resolve('azurite/dist/src/azurite.js');
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteInstance> {
  const args = [
    azuriteEntry(),
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
    '--disableTelemetry',
    '--blobHost',
    '127.0.0.1',
    '--queueHost',
    '127.0.0.1',
    '--tableHost',
    '127.0.0.1',
    '--blobPort',
    String(options.blobPort ?? 0),
    '--queuePort',
    String(options.queuePort ?? 0),
    '--tablePort',
    String(options.tablePort ?? 0),
  ];
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', path.resolve(options.location));
  } else {
    args.push('--inMemoryPersistence');
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports: Partial<Record<'Blob' | 'Queue' | 'Table', number>> = {};
  let output = '';

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Azurite did not start within ${options.startTimeoutMs ?? 30_000} ms:\n${output.slice(-2000)}`));
    }, options.startTimeoutMs ?? 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      for (const match of output.matchAll(
        /Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/g,
      )) {
        ports[match[1] as 'Blob' | 'Queue' | 'Table'] = Number(match[2]);
      }
      if (ports.Blob && ports.Queue && ports.Table) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining so a chatty child never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited before it was ready (code ${code}, signal ${signal}):\n${output.slice(-2000)}`));
    });
  });

  const resolved = { blobPort: ports.Blob!, queuePort: ports.Queue!, tablePort: ports.Table! };
  return {
    ...resolved,
    connectionString: developmentConnectionString(resolved),
    process: child,
    stop: () => stopChild(child),
  };
}

export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
