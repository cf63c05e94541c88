/**
 * Runs the CLI in-process with captured output, against the Azurite of the test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, type CliIo } from '../../src/cli/main';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  readonly tty?: boolean;
  readonly pollIntervalMs?: number;
}

export async function run(argv: readonly string[], options: RunOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk), isTTY: options.tty ?? false, columns: 200 },
    env: options.env ?? {},
    cwd: options.cwd ?? emptyDir(),
    pollIntervalMs: options.pollIntervalMs ?? 50,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const dirs: string[] = [];

/** A new empty working directory (no local.settings.json); removed by removeTempDirs(). */
export function emptyDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'teams-courier-cli-'));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

let counter = 0;
/** A queue name of its own for one test, so tests never see each other's messages. */
export function uniqueQueue(prefix = 'cli'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.floor(Math.random() * 1e6)}`;
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
