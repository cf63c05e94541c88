/**
 * Storage transactions, counted: an HTTP proxy per storage service in front of Azurite that the app
 * instances use as their storage account. It forwards every request unchanged and counts it by
 * service and operation (`table deliveries update (Replace, If-Match)`, `queue outbound-messages
 * receive (empty)` ...), so "storage transactions per message" is what the instances really sent.
 */
import http from 'node:http';
import { developmentConnectionString } from '../../host/azurite';

export type StorageService = 'table' | 'queue' | 'blob';

export interface OperationCount {
  /** HTTP requests. */
  requests: number;
  /** Responses by HTTP status ("error" = no response: the connection failed). */
  statuses: Record<string, number>;
  /** Table `$batch` only: operations inside the batches. */
  batchedOperations?: number;
}

export interface StorageCounts {
  /** Every HTTP request the instances sent to storage since the last reset. */
  readonly total: number;
  readonly byService: Record<StorageService, number>;
  /** Key: `<service> <table or queue> <operation>`, e.g. `table deliveries update (Replace, If-Match)`, `queue outbound-messages receive (empty)`. */
  readonly byOperation: Record<string, OperationCount>;
}

const QUEUE_MESSAGE_TAG = '<QueueMessage>';
const MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024;

/** Names one storage request. `account`-relative path, e.g. `/devstoreaccount1/deliveries(PartitionKey='a',RowKey='job')`. */
export function classifyStorageRequest(
  service: StorageService,
  method: string,
  url: string,
  headers: http.IncomingHttpHeaders,
): string {
  const [rawPath = '/', query = ''] = url.split('?', 2);
  const parts = rawPath.split('/').filter((p) => p !== '');
  const params = new URLSearchParams(query);
  const m = method.toUpperCase();
  if (service === 'blob') return `blob ${parts[1] ?? '(account)'} ${m}`;
  if (service === 'queue') {
    const queue = decodeURIComponent(parts[1] ?? '(account)');
    if (parts.length <= 1) return `queue (account) ${params.get('comp') ?? m}`;
    if (parts.length === 2) {
      const comp = params.get('comp');
      if (comp === 'metadata')
        return `queue ${queue} ${m === 'GET' || m === 'HEAD' ? 'get properties' : 'set metadata'}`;
      if (m === 'PUT') return `queue ${queue} create`;
      if (m === 'DELETE') return `queue ${queue} delete queue`;
      return `queue ${queue} ${m}${comp ? ` comp=${comp}` : ''}`;
    }
    if (parts[2] === 'messages' && parts.length === 3) {
      if (m === 'GET') return `queue ${queue} ${params.get('peekonly') === 'true' ? 'peek' : 'receive'}`;
      if (m === 'POST') return `queue ${queue} send`;
      if (m === 'DELETE') return `queue ${queue} clear`;
    }
    if (parts[2] === 'messages' && parts.length === 4) {
      if (m === 'DELETE') return `queue ${queue} delete message`;
      if (m === 'PUT') return `queue ${queue} update message (visibility)`;
    }
    return `queue ${queue} ${m} ${parts.slice(2).join('/')}`;
  }
  // Table service.
  const resource = decodeURIComponent(parts[1] ?? '');
  if (resource === '$batch') return 'table (batch)';
  if (resource === 'Tables' || resource.startsWith('Tables('))
    return `table Tables ${m === 'POST' ? 'create table' : m === 'DELETE' ? 'delete table' : 'list tables'}`;
  const paren = resource.indexOf('(');
  const table = paren < 0 ? resource : resource.slice(0, paren);
  const keys = paren < 0 ? '' : resource.slice(paren + 1, resource.lastIndexOf(')'));
  const hasKeys = keys.includes('PartitionKey');
  const ifMatch = headers['if-match'] !== undefined;
  switch (m) {
    case 'GET':
      return `table ${table} ${hasKeys ? 'get' : 'query'}`;
    case 'POST':
      return `table ${table} insert`;
    case 'PUT':
      return `table ${table} ${ifMatch ? 'update (Replace, If-Match)' : 'upsert (Replace)'}`;
    case 'PATCH':
    case 'MERGE':
      return `table ${table} ${ifMatch ? 'update (Merge, If-Match)' : 'upsert (Merge)'}`;
    case 'DELETE':
      return `table ${table} delete`;
    default:
      return `table ${table} ${m}`;
  }
}

/** The operations inside a table `$batch` body (one request line each) and the table of the first. */
export function parseBatchBody(body: string): { operations: number; table: string } {
  let operations = 0;
  let table = '?';
  for (const match of body.matchAll(/^(GET|POST|PUT|PATCH|MERGE|DELETE) (\S+) HTTP\/1\.1\r?$/gm)) {
    operations += 1;
    if (operations === 1) {
      const pathPart = match[2]!.replace(/^https?:\/\/[^/]+/, '');
      const resource = decodeURIComponent(pathPart.split('/').filter((p) => p !== '')[1] ?? '?');
      table = resource.split('(')[0]!;
    }
  }
  return { operations, table };
}

/**
 * An HTTP proxy per storage service in front of Azurite. Requests and responses are forwarded byte
 * for byte (Shared Key signatures do not cover the Host header, so they stay valid); each request is
 * counted once its response has ended, by `classifyStorageRequest`. A queue receive whose answer
 * holds no message counts as `receive (empty)`.
 */
export class StorageCounter {
  #counts: { total: number; byService: Record<StorageService, number>; byOperation: Record<string, OperationCount> } =
    StorageCounter.#empty();
  readonly #servers: http.Server[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly ports: Record<StorageService, number> = { table: 0, queue: 0, blob: 0 };

  static #empty(): {
    total: number;
    byService: Record<StorageService, number>;
    byOperation: Record<string, OperationCount>;
  } {
    return { total: 0, byService: { table: 0, queue: 0, blob: 0 }, byOperation: {} };
  }

  static async start(target: { tablePort: number; queuePort: number; blobPort: number }): Promise<StorageCounter> {
    const counter = new StorageCounter();
    const targets: Record<StorageService, number> = {
      table: target.tablePort,
      queue: target.queuePort,
      blob: target.blobPort,
    };
    for (const service of ['table', 'queue', 'blob'] as const) {
      const server = http.createServer((req, res) => counter.#forward(service, targets[service], req, res));
      server.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      counter.#servers.push(server);
      counter.ports[service] = (server.address() as { port: number }).port;
    }
    return counter;
  }

  /** A connection string for Azurite's development account with every endpoint on this proxy. */
  get connectionString(): string {
    return developmentConnectionString({
      blobPort: this.ports.blob,
      queuePort: this.ports.queue,
      tablePort: this.ports.table,
    });
  }

  snapshot(): StorageCounts {
    return JSON.parse(JSON.stringify(this.#counts)) as StorageCounts;
  }

  reset(): void {
    this.#counts = StorageCounter.#empty();
  }

  #count(service: StorageService, operation: string, status: string, batchedOperations?: number): void {
    const counts = this.#counts;
    counts.total += 1;
    counts.byService[service] += 1;
    const entry = (counts.byOperation[operation] ??= { requests: 0, statuses: {} });
    entry.requests += 1;
    entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
    if (batchedOperations !== undefined) entry.batchedOperations = (entry.batchedOperations ?? 0) + batchedOperations;
  }

  #forward(service: StorageService, targetPort: number, req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    let operation = classifyStorageRequest(service, method, url, req.headers);
    const isBatch = operation === 'table (batch)';
    const isReceive = operation.endsWith(' receive');
    let batched: number | undefined;
    let counted = false;
    const count = (status: string): void => {
      if (counted) return;
      counted = true;
      this.#count(service, operation, status, batched);
    };
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method, path: url, headers: req.headers, agent: this.#agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        let sawMessage = false;
        let carry = '';
        answer.on('data', (chunk: Buffer) => {
          if (isReceive && !sawMessage) {
            const text = carry + chunk.toString('latin1');
            sawMessage = text.includes(QUEUE_MESSAGE_TAG);
            carry = text.slice(-QUEUE_MESSAGE_TAG.length);
          }
          res.write(chunk);
        });
        answer.on('end', () => {
          if (isReceive && !sawMessage) operation += ' (empty)';
          count(String(answer.statusCode ?? 'none'));
          res.end();
        });
        answer.on('error', () => {
          count('error');
          res.destroy();
        });
      },
    );
    upstream.on('error', () => {
      count('error');
      res.destroy();
    });
    if (!isBatch) {
      req.pipe(upstream);
      return;
    }
    // A batch is counted as one request; its operations (and their table) are read from the body.
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BATCH_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const parsed = parseBatchBody(body.toString('utf8'));
      batched = parsed.operations;
      operation = `table ${parsed.table} batch`;
      upstream.end(body);
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
    this.#agent.destroy();
  }
}

/** The storage operations of a run, most frequent first, per delivered message. */
export function storageBreakdown(counts: StorageCounts, messages: number, top = 12): string {
  return Object.entries(counts.byOperation)
    .sort(([, a], [, b]) => b.requests - a.requests)
    .slice(0, top)
    .map(([op, c]) => {
      const odd = Object.entries(c.statuses).filter(([s]) => !/^2\d\d$/.test(s));
      const extra = [
        c.batchedOperations === undefined ? '' : ` (${c.batchedOperations} ops inside)`,
        odd.length > 0 ? ` [${odd.map(([s, n]) => `${s}: ${n}`).join(', ')}]` : '',
      ].join('');
      return `${op} ${(c.requests / messages).toFixed(2)}${extra}`;
    })
    .join('; ');
}
