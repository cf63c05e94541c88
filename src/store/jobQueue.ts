/**
 * The sender's own writes to the job queues: putting a job back for later (Retry-After, backoff,
 * rate-limit deferral) and dead-lettering a failed job with its reason.
 *
 * Messages are written as plain JSON text: host.json sets `messageEncoding: none` so that both plain
 * (Logic Apps, @azure/storage-queue) and base64 (output bindings) producers work; the trigger code
 * decodes either.
 */
import { QueueClient } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import type { StorageConfig } from '../config';
import { ENVELOPE_KEY } from '../core/job';
import { MAX_QUEUE_MESSAGE_BYTES, MAX_VISIBILITY_SECONDS, queueMessageBytes } from '../core/queueMessage';
import { guardStorage } from './tableClients';

/** What the sender writes next to a failed job in the poison queue (src/core/poison.ts reads it). */
export interface PoisonRecord {
  readonly jobId: string;
  readonly code: string;
  readonly reason: string;
  readonly attempts: number;
  readonly failedAt: string;
  /** The authenticated caller whose job it is (docs/flows.md, trust model); absent: full trust. */
  readonly caller?: string;
  /** The broadcast or batch the job belongs to. */
  readonly parentId?: string;
  /**
   * POISON_FORMAT (2): the record says who the caller and the parent are, so a replay can restore
   * them. Absent: written before replay existed, when neither was kept.
   */
  readonly format?: number;
}

export interface JobQueue {
  /** Puts `text` on the job queue, invisible for `delayMs`. */
  requeue(text: string, delayMs: number): Promise<void>;
  /** Dead-letters the job with its reason. `original` is the job body (or the raw text that would not parse). */
  poison(original: unknown, record: PoisonRecord): Promise<void>;
}

export function createQueueClient(
  storage: StorageConfig,
  queueName: string,
  credential?: () => TokenCredential,
): QueueClient {
  if (storage.kind === 'connectionString') {
    const cs = storage.connectionString.trim();
    // The storage SDK does not understand the development shorthand; Azurite's defaults are public.
    if (/^UseDevelopmentStorage=true/i.test(cs)) {
      return new QueueClient(
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1',
        queueName,
      );
    }
    return new QueueClient(cs, queueName);
  }
  if (credential === undefined) throw new Error('identity-based storage needs a credential');
  return new QueueClient(`${storage.queueServiceUri.replace(/\/$/, '')}/${queueName}`, credential());
}

export function createJobQueue(clients: { jobs: QueueClient; poison: QueueClient }): JobQueue {
  const ensured = new Set<QueueClient>();
  async function ensure(client: QueueClient): Promise<void> {
    if (ensured.has(client)) return;
    await guardStorage('createQueue', () => client.createIfNotExists());
    ensured.add(client);
  }
  return {
    async requeue(text, delayMs) {
      await ensure(clients.jobs);
      const visibilityTimeout = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(delayMs / 1000)));
      await guardStorage('sendMessage', () => clients.jobs.sendMessage(text, { visibilityTimeout }));
    },
    async poison(original, record) {
      await ensure(clients.poison);
      // Same envelope shape as a re-enqueued job, so an operator can read the reason next to the job.
      let text = JSON.stringify({ [ENVELOPE_KEY]: record, job: original });
      if (queueMessageBytes(text) > MAX_QUEUE_MESSAGE_BYTES) {
        // The reason must land even when the job itself does not fit: keep its beginning.
        const raw = typeof original === 'string' ? original : JSON.stringify(original);
        const head = raw.slice(0, 8 * 1024);
        text = JSON.stringify({
          [ENVELOPE_KEY]: record,
          job: { truncated: true, bytes: Buffer.byteLength(raw, 'utf8'), head },
        });
      }
      await guardStorage('sendMessage', () => clients.poison.sendMessage(text));
    },
  };
}
