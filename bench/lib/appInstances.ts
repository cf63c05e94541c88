/**
 * One app instance of the scale-out rig: `node dist/host/main.js` (what `npm start` runs) in its own
 * process. Its log lines are tallied by sender outcome, not kept (but a tail for failure messages).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { HOST_MAIN_JS } from './build';
import { REPO_ROOT, killOnExit, sleep } from './common';

/** One `node dist/host/main.js` process. Its log lines are tallied by event, not kept (but a tail). */
export class AppInstance {
  readonly index: number;
  readonly process: ChildProcess;
  url = '';
  /** Sender outcomes from the app's log: `job.sent`, `job.deferred:rate limit`, `job.retrying:Throttled`, ... */
  tally: Record<string, number> = {};
  /** Unexpected warning and error lines (first few). */
  readonly problems: string[] = [];
  #tail: string[] = [];
  #exited: Promise<void>;

  private constructor(index: number, child: ChildProcess) {
    this.index = index;
    this.process = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  tail(lines = 30): string {
    return this.#tail.slice(-lines).join('\n');
  }

  static async start(index: number, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<AppInstance> {
    const child = spawn(process.execPath, [HOST_MAIN_JS], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    const instance = new AppInstance(index, child);
    const started = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`instance ${index} did not start within ${timeoutMs} ms:\n${instance.tail()}`)),
        timeoutMs,
      );
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`instance ${index} exited during start-up (code ${code}, signal ${signal}):\n${instance.tail()}`),
        );
      });
      instance.onLine = (line) => {
        const match = /host\.started url="?(http:\/\/[^\s"]+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      };
    });
    for (const stream of [child.stdout!, child.stderr!])
      createInterface({ input: stream }).on('line', (line) => instance.#line(line));
    try {
      instance.url = await started;
    } catch (err) {
      await instance.stop(1_000);
      throw err;
    }
    instance.onLine = undefined;
    return instance;
  }

  onLine: ((line: string) => void) | undefined;

  #line(line: string): void {
    this.#tail.push(line);
    if (this.#tail.length > 60) this.#tail.shift();
    this.onLine?.(line);
    const event = /"event":"(job\.[A-Za-z]+)"/.exec(line)?.[1];
    if (event !== undefined) {
      let key = event;
      if (event === 'job.retrying' || event === 'job.failed') key += `:${/"code":"([^"]*)"/.exec(line)?.[1] ?? '?'}`;
      else if (event === 'job.deferred') key += `:${/"why":"([^"]*)"/.exec(line)?.[1] ?? '?'}`;
      this.tally[key] = (this.tally[key] ?? 0) + 1;
    }
    // Sender outcomes (retried, deferred, failed) are tallied above; the local host's note on function keys is noise.
    const problem =
      / error /.test(line) ||
      (/ warning /.test(line) && !/"event":"job\.(retrying|deferred|failed)"|http\.keysNotEnforced/.test(line));
    if (problem && this.problems.length < 10) this.problems.push(line.slice(0, 300));
  }

  resetTally(): void {
    this.tally = {};
  }

  /** SIGTERM (the host drains), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGTERM');
    const exited = await Promise.race([this.#exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!exited) {
      this.process.kill('SIGKILL');
      await Promise.race([this.#exited, sleep(5_000)]);
    }
  }
}
