/** The suite's storage: Azurite that can go down and come back with its data, and a proxy that fails chosen requests. */
import http from 'node:http';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { developmentConnectionString, startAzurite, type AzuriteInstance } from '../../../host/azurite';
import { sleep } from './helpers';

/** Azurite with its data in a folder, on fixed ports, so a stop and a start keep both. */
export class ChaosStorage {
  readonly location: string;
  #ports: { blobPort: number; queuePort: number; tablePort: number } | undefined;
  #azurite: AzuriteInstance | undefined;
  outages = 0;
  downMs = 0;

  constructor(location: string) {
    this.location = location;
  }

  get ports(): { blobPort: number; queuePort: number; tablePort: number } {
    if (this.#ports === undefined) throw new Error('Azurite was never started');
    return this.#ports;
  }

  get up(): boolean {
    return this.#azurite !== undefined;
  }

  get connectionString(): string {
    return developmentConnectionString(this.ports);
  }

  /** The connection string with the table endpoint on another port (a proxy in front of Azurite). */
  connectionStringWithTablePort(tablePort: number): string {
    return developmentConnectionString({ ...this.ports, tablePort });
  }

  async start(): Promise<void> {
    if (this.#azurite !== undefined) return;
    // First start: free ports picked by the OS; later starts: the same ones.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        this.#azurite = await startAzurite({ location: this.location, ...(this.#ports ?? {}), startTimeoutMs: 30_000 });
        this.#ports ??= {
          blobPort: this.#azurite.blobPort,
          queuePort: this.#azurite.queuePort,
          tablePort: this.#azurite.tablePort,
        };
        return;
      } catch (err) {
        lastError = err;
        await sleep(500);
      }
    }
    throw new Error(`Azurite did not start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  /** Stops Azurite (SIGTERM: it saves its data), keeps the folder and the ports. */
  async stop(): Promise<void> {
    const azurite = this.#azurite;
    this.#azurite = undefined;
    await azurite?.stop();
  }

  /** Stops Azurite for `ms`, then starts it again on the same ports with the same data. */
  async outage(ms: number): Promise<{ stoppedAt: number; startedAt: number }> {
    const stoppedAt = Date.now();
    await this.stop();
    await sleep(ms);
    await this.start();
    const startedAt = Date.now();
    this.outages += 1;
    this.downMs += startedAt - stoppedAt;
    return { stoppedAt, startedAt };
  }

  table(name: string): TableClient {
    return TableClient.fromConnectionString(this.connectionString, name, {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 1 },
    });
  }

  queue(name: string): QueueClient {
    return new QueueClient(this.connectionString, name, { retryOptions: { maxTries: 2 } });
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

/**
 * An HTTP proxy in front of Azurite's table endpoint, for storage faults finer than "all down":
 * `failWhen` decides per request whether the connection is reset instead of forwarded.
 */
export class StorageProxy {
  readonly port: number;
  failWhen: ((method: string, url: string) => boolean) | undefined;
  forwarded = 0;
  failed = 0;
  readonly #server: http.Server;
  readonly #agent: http.Agent;

  private constructor(server: http.Server, agent: http.Agent, port: number) {
    this.#server = server;
    this.#agent = agent;
    this.port = port;
  }

  static async start(targetPort: () => number): Promise<StorageProxy> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const holder: { proxy?: StorageProxy } = {};
    const server = http.createServer((req, res) => {
      const proxy = holder.proxy;
      if (proxy?.failWhen?.(req.method ?? 'GET', req.url ?? '/')) {
        proxy.failed += 1;
        req.socket.destroy();
        return;
      }
      if (proxy) proxy.forwarded += 1;
      const upstream = http.request(
        { host: '127.0.0.1', port: targetPort(), method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    holder.proxy = new StorageProxy(server, agent, (server.address() as { port: number }).port);
    return holder.proxy;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
