/**
 * What the bench sections start, and stop again: Azurite, child processes, the stub world, servers.
 * Everything registered here is stopped (newest first, each bounded to 10 s) by `close()`, which the
 * orchestrator calls after every section, whatever happened in it.
 */
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import { killOnExit, startChild, withTimeout, type ChildHandle, type StartChildOptions } from './common';
import { startStubProcess, type StubConfig, type StubReady } from './stubWorld';

export class BenchRig {
  readonly #cleanups: (() => Promise<unknown>)[] = [];

  /** Registers something to stop. */
  defer(cleanup: () => Promise<unknown>): void {
    this.#cleanups.push(cleanup);
  }

  /** A fresh Azurite (in memory, free ports). */
  async azurite(): Promise<AzuriteInstance> {
    const instance = await startAzurite();
    killOnExit(instance.process);
    this.defer(() => instance.stop());
    return instance;
  }

  child(options: StartChildOptions): ChildHandle {
    const handle = startChild(options);
    this.defer(() => handle.stop());
    return handle;
  }

  /** The stub world in its own process (bench/stubProcess.ts), once it is ready. */
  async stubs(config: StubConfig): Promise<{ handle: ChildHandle; ready: StubReady }> {
    const { handle, ready } = startStubProcess(config);
    this.defer(() => handle.stop());
    return { handle, ready: await ready };
  }

  /** Stops everything registered so far. */
  async close(): Promise<void> {
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await withTimeout(cleanup(), 10_000, 'cleanup');
      } catch {
        // best effort
      }
    }
  }
}
