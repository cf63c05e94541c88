/**
 * Plumbing shared by the benchmark's processes: a loopback-only guard, percentiles, text tables,
 * CPU time of other processes, a bounded worker pool, and a line protocol between the orchestrator
 * (run.ts) and its child processes (JSON lines prefixed with `@@bench ` on stdout, commands as JSON
 * lines on stdin).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ensureLocalCertificate } from '../../host/emulator/certificate';

/** The repository root: the nearest folder above this module with a package.json (works from bench/lib and dist/bench/lib). */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = from, i = 0; i < 32; dir = path.dirname(dir), i += 1) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`no package.json above ${from}`);
}

export const REPO_ROOT = findRepoRoot();
/** Compiled bench scripts. */
export const BENCH_DIST = path.join(REPO_ROOT, 'dist', 'bench');
export const BASELINE_DIR = path.join(REPO_ROOT, 'bench', 'baseline');
/** The HTTPS stubs' loopback-only certificate (`.local-certs/`, made on first use), for NODE_EXTRA_CA_CERTS. */
export function emulatorCertPath(): string {
  return ensureLocalCertificate().certPath;
}

/** Environment for children that talk to the HTTPS stubs: trust their certificate, and only that; no preloads. */
export function stubClientEnv(): Record<string, string | undefined> {
  return { NODE_EXTRA_CA_CERTS: emulatorCertPath(), NODE_OPTIONS: undefined };
}

/** One line (or block) of the report, on stdout. */
export function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function verdict(met: boolean): string {
  return met ? 'MET' : 'MISSED';
}

// ---- Loopback only --------------------------------------------------------------------------

function isLoopbackHost(host: unknown): boolean {
  if (host === undefined || host === null || host === '') return true; // net defaults to localhost
  if (typeof host !== 'string') return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Makes every outgoing TCP/TLS connection of this process fail unless it goes to the loopback
 * interface (the benchmark must never reach a real Microsoft endpoint, even by misconfiguration).
 */
export function installLoopbackGuard(): void {
  const proto = net.Socket.prototype as unknown as { connect: (...args: unknown[]) => unknown; __benchGuard?: boolean };
  if (proto.__benchGuard) return;
  const original = proto.connect;
  proto.connect = function guardedConnect(this: net.Socket, ...args: unknown[]): unknown {
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    let host: unknown;
    let isPath = false;
    if (typeof first === 'object' && first !== null) {
      const options = first as { host?: unknown; path?: unknown };
      isPath = typeof options.path === 'string';
      host = options.host;
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else if (typeof first === 'string') {
      isPath = true;
    }
    if (!isPath && !isLoopbackHost(host)) {
      throw new Error(
        `bench loopback guard: refusing to connect to ${String(host)} (only 127.0.0.0/8 and ::1 are allowed)`,
      );
    }
    return original.apply(this, args);
  };
  proto.__benchGuard = true;
}

// ---- Numbers --------------------------------------------------------------------------------

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]!,
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
  };
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function fmt(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toFixed(digits);
}

export function fmtInt(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return Math.round(value).toLocaleString('en-US');
}

// ---- Tables ---------------------------------------------------------------------------------

export type Cell = string | number;

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function renderTable(
  title: string,
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  notes: readonly string[] = [],
): string {
  const cells = rows.map((row) => row.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: readonly string[]): string =>
    `| ${values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const out = [`### ${title}`, '', line(headers), rule, ...cells.map((r) => line(headers.map((_, i) => r[i] ?? '')))];
  if (notes.length > 0) out.push('', ...notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

// ---- CPU time of another process (Linux /proc) ----------------------------------------------

const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU milliseconds of a process so far, from /proc (10 ms resolution); undefined elsewhere. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after the closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** This process's CPU (user + system) in ms since `since` (a process.cpuUsage() value). */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

// ---- Bounded work -----------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` at once. Stops starting new tasks
 * once `deadline` (epoch ms) has passed; returns how many were started.
 */
export async function runPool(
  count: number,
  concurrency: number,
  deadline: number,
  task: (index: number) => Promise<void>,
): Promise<{ started: number; timedOut: boolean }> {
  let next = 0;
  let timedOut = false;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= count) return;
      if (Date.now() > deadline) {
        timedOut = true;
        return;
      }
      const index = next;
      next += 1;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { started: next, timedOut };
}

// ---- Child process protocol ---------------------------------------------------------------------

const MARK = '@@bench ';

export type Message = Record<string, unknown>;

/** In a child: sends one message to the orchestrator. */
export function emit(message: Message): void {
  process.stdout.write(`${MARK}${JSON.stringify(message)}\n`);
}

/** In a child: answers commands read from stdin (one JSON object a line). Exits when stdin closes. */
export function onCommands(
  handler: (command: Message) => Promise<Message | undefined>,
  onStdinClosed: () => void,
): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let command: Message;
    try {
      command = JSON.parse(line) as Message;
    } catch {
      emit({ id: null, error: `bad command line: ${line.slice(0, 200)}` });
      return;
    }
    handler(command).then(
      (reply) => emit({ id: command.id ?? null, ...(reply ?? {}) }),
      (err: unknown) =>
        emit({ id: command.id ?? null, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  lines.on('close', onStdinClosed);
}

/** Reads a JSON configuration a child got in BENCH_CONFIG. */
export function childConfig<T>(): T {
  const raw = process.env.BENCH_CONFIG;
  if (raw === undefined) throw new Error('BENCH_CONFIG is not set (this script is started by dist/bench/run.js)');
  return JSON.parse(raw) as T;
}

export interface ChildHandle {
  readonly label: string;
  readonly process: ChildProcess;
  readonly pid: number | undefined;
  /** The first message the child emits (its "ready" or one-shot result). */
  readonly first: Promise<Message>;
  /** Sends a command and waits for the reply with the same id. */
  request(command: Message, timeoutMs?: number): Promise<Message>;
  /** Closes stdin, waits `graceMs`, then SIGKILLs. */
  stop(graceMs?: number): Promise<void>;
  /** Everything the child wrote that was not a protocol line (tail). */
  output(): string;
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills `child` (SIGKILL) if it is still running when this process exits. */
export function killOnExit(child: ChildProcess): void {
  installExitHook();
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave a child behind, whatever way the orchestrator ends.
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

export interface StartChildOptions {
  readonly label: string;
  readonly command?: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly config?: unknown;
  /** How long to wait for the first message. */
  readonly firstTimeoutMs: number;
}

export function startChild(options: StartChildOptions): ChildHandle {
  installExitHook();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env }))
    if (value !== undefined) env[key] = value;
  if (options.config !== undefined) env.BENCH_CONFIG = JSON.stringify(options.config);
  // BENCH_CPU_PROF=<dir>: every Node child writes a V8 CPU profile there (open in Chrome DevTools).
  const profile =
    options.command === undefined && process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`]
      : [];
  const child = spawn(options.command ?? process.execPath, [...profile, ...options.args], {
    cwd: options.cwd ?? REPO_ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  let tail = '';
  const keep = (text: string): void => {
    tail = (tail + text).slice(-8_000);
  };
  const waiters = new Map<unknown, (m: Message) => void>();
  let firstResolve: (m: Message) => void = () => undefined;
  let firstReject: (e: Error) => void = () => undefined;
  let gotFirst = false;
  const first = new Promise<Message>((resolve, reject) => {
    firstResolve = resolve;
    firstReject = reject;
  });
  const firstTimer = setTimeout(() => {
    if (!gotFirst) firstReject(new Error(`${options.label}: no message within ${options.firstTimeoutMs} ms\n${tail}`));
  }, options.firstTimeoutMs);

  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (!line.startsWith(MARK)) {
      keep(`${line}\n`);
      return;
    }
    let message: Message;
    try {
      message = JSON.parse(line.slice(MARK.length)) as Message;
    } catch {
      keep(`${line}\n`);
      return;
    }
    if (!gotFirst) {
      gotFirst = true;
      clearTimeout(firstTimer);
      firstResolve(message);
      return;
    }
    const waiter = waiters.get(message.id);
    if (waiter) {
      waiters.delete(message.id);
      waiter(message);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => keep(chunk.toString('utf8')));
  child.once('exit', (code, signal) => {
    liveChildren.delete(child);
    clearTimeout(firstTimer);
    if (!gotFirst)
      firstReject(new Error(`${options.label} exited (code ${code}, signal ${signal}) before reporting:\n${tail}`));
    for (const [, waiter] of waiters)
      waiter({ error: `${options.label} exited (code ${code}, signal ${signal})\n${tail}` });
    waiters.clear();
  });
  child.stdin!.on('error', () => undefined);

  let nextId = 1;
  return {
    label: options.label,
    process: child,
    pid: child.pid,
    first,
    output: () => tail,
    request(command, timeoutMs = 30_000) {
      const id = nextId;
      nextId += 1;
      const reply = new Promise<Message>((resolve) => waiters.set(id, resolve));
      child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
      return withTimeout(reply, timeoutMs, `${options.label} ${String(command.cmd)}`).then((m) => {
        if (typeof m.error === 'string') throw new Error(`${options.label}: ${m.error}`);
        return m;
      });
    },
    stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin!.end();
      });
    },
  };
}
