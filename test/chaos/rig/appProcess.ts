import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { HOST_MAIN_JS } from '../../../bench/lib/build';
import { REPO_ROOT } from '../../../bench/lib/common';
import { ensureLocalCertificate } from '../../../host/emulator';
import { StopWaiting, sleep, waitFor } from './helpers';
import type { LogCapture } from './logCapture';

export interface AppExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: number;
}

/** `node dist/host/main.js` in its own process group, with environment overrides; stdout and stderr go to the log capture. */
export class AppProcess {
  readonly port: number;
  readonly url: string;
  #env: Record<string, string>;
  #child: ChildProcess | undefined;
  #exit: Promise<AppExit> | undefined;
  readonly exits: AppExit[] = [];
  starts = 0;
  readonly #log: LogCapture;

  constructor(options: { port: number; env: Record<string, string>; log: LogCapture }) {
    this.port = options.port;
    this.url = `http://127.0.0.1:${options.port}`;
    this.#env = options.env;
    this.#log = options.log;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get alive(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Changes settings for the next start. */
  setEnv(patch: Record<string, string>): void {
    this.#env = { ...this.#env, ...patch };
  }

  async start(): Promise<void> {
    if (this.alive) throw new Error('the app is already running');
    let lastError: unknown;
    // A build running in parallel (the e2e test runs `npm start`, which builds) can catch a file half
    // written: a start that fails that way is retried.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await this.#startOnce();
        return;
      } catch (err) {
        lastError = err;
        await this.kill();
        await sleep(1_000);
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  async #startOnce(): Promise<void> {
    this.starts += 1;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.#env,
      PORT: String(this.port),
      NODE_EXTRA_CA_CERTS: ensureLocalCertificate().certPath,
    };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [HOST_MAIN_JS], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.#log.write(`app${child.pid}.out`, chunk));
    child.stderr?.on('data', (chunk: string) => this.#log.write(`app${child.pid}.err`, chunk));
    this.#exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        const exit = { code, signal, at: Date.now() };
        this.exits.push(exit);
        resolve(exit);
      }),
    );
    const agent = new Agent({ keepAliveTimeout: 1_000 });
    try {
      await waitFor(
        'the app to serve (GET /admin/host/status: Running)',
        60_000,
        async () => {
          if (!this.alive) throw new StopWaiting(`the app exited during start-up:\n${this.#log.tail(30)}`);
          const response = await request(`${this.url}/admin/host/status`, {
            dispatcher: agent,
            headersTimeout: 2_000,
            bodyTimeout: 2_000,
          });
          const body = (await response.body.json()) as { state?: string };
          return body.state === 'Running' ? true : undefined;
        },
        100,
      );
    } catch (err) {
      if (!this.alive) throw new Error(`the app exited during start-up:\n${this.#log.tail(30)}`, { cause: err });
      throw err;
    } finally {
      await agent.close();
    }
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGKILL to the process group; resolves once the process has exited. */
  async kill(): Promise<AppExit | undefined> {
    if (!this.alive) return this.exits.at(-1);
    this.#signal('SIGKILL');
    return Promise.race([this.#exit!, sleep(10_000).then(() => undefined)]);
  }

  /** SIGTERM (drains), then SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.#signal('SIGTERM');
    const exited = await Promise.race([this.#exit!, sleep(graceMs).then(() => undefined)]);
    if (exited === undefined) await this.kill();
  }

  /** Resident set size of the app process, in MiB (Linux /proc). */
  rssMb(): number | undefined {
    const pid = this.pid;
    if (pid === undefined || !this.alive) return undefined;
    try {
      const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** `GET /admin/host/status` answers Running. */
  async running(): Promise<boolean> {
    try {
      const response = await request(`${this.url}/admin/host/status`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const body = (await response.body.json()) as { state?: string };
      return body.state === 'Running';
    } catch {
      return false;
    }
  }
}
