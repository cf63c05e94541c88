/**
 * Reading the poison queue (`<OUTBOUND_QUEUE>-poison`) for `teams-courier poison` and
 * POST /api/notify/{id}/retry. Nothing else reads it, so it is read by receiving: a peek sees only
 * the first 32 messages. A received message is hidden for `hideSeconds`, which also keeps two
 * replays from taking the same message; what is not replayed is made visible again at once
 * (`release`), and what is replayed is deleted (`remove`).
 */
import type { QueueClient } from '@azure/storage-queue';
import { guardStorage, statusOf } from './tableClients';

export interface PoisonMessage {
  readonly messageId: string;
  readonly popReceipt: string;
  readonly text: string;
  readonly insertedOn?: Date;
}

export interface ReceiveOptions {
  /** At most this many messages. */
  readonly max: number;
  /** How long each stays hidden from other readers (seconds, at least 1). */
  readonly hideSeconds: number;
  /** Stop early once this returns true for a message (it is included). */
  readonly until?: (message: PoisonMessage) => boolean;
}

export interface PoisonQueue {
  /** Receives up to `max` messages (32 per request). An absent queue has none. */
  receive(options: ReceiveOptions): Promise<PoisonMessage[]>;
  /** Makes received messages visible again. */
  release(messages: readonly PoisonMessage[]): Promise<void>;
  /** Deletes a received message. */
  remove(message: PoisonMessage): Promise<void>;
  /** The approximate number of messages (one request; 0 when the queue does not exist). */
  approximateCount(): Promise<number>;
}

const BATCH = 32;
const PARALLEL = 16;

async function forEachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next]!;
        next += 1;
        await fn(item);
      }
    }),
  );
}

/** Message gone (deleted or received again by someone else): nothing left to do with it. */
const gone = (err: unknown): boolean => statusOf(err) === 404;

export function createPoisonQueue(client: QueueClient): PoisonQueue {
  return {
    async receive({ max, hideSeconds, until }) {
      const messages: PoisonMessage[] = [];
      const seen = new Set<string>();
      while (messages.length < max) {
        let items;
        try {
          ({ receivedMessageItems: items } = await guardStorage('receiveMessages', () =>
            client.receiveMessages({
              numberOfMessages: Math.min(BATCH, max - messages.length),
              visibilityTimeout: Math.max(1, Math.ceil(hideSeconds)),
            }),
          ));
        } catch (err) {
          if (gone(err)) return messages;
          throw err;
        }
        if (items.length === 0) break;
        let fresh = 0;
        for (const item of items) {
          // A message whose hiding ran out during a long scan comes round again: once is enough.
          if (seen.has(item.messageId)) continue;
          seen.add(item.messageId);
          fresh += 1;
          const message: PoisonMessage = {
            messageId: item.messageId,
            popReceipt: item.popReceipt,
            text: item.messageText,
            ...(item.insertedOn === undefined ? {} : { insertedOn: item.insertedOn }),
          };
          messages.push(message);
          if (until?.(message) === true) return messages;
        }
        if (fresh === 0) break;
      }
      return messages;
    },

    async release(messages) {
      await forEachLimited(messages, async (m) => {
        try {
          await guardStorage('updateMessage', () => client.updateMessage(m.messageId, m.popReceipt, undefined, 0));
        } catch (err) {
          if (!gone(err)) throw err;
        }
      });
    },

    async remove(message) {
      try {
        await guardStorage('deleteMessage', () => client.deleteMessage(message.messageId, message.popReceipt));
      } catch (err) {
        if (!gone(err)) throw err;
      }
    },

    approximateCount: () => approximateMessageCount(client),
  };
}

/** A queue's approximate message count, invisible ones included (one request; 0 when it does not exist). */
export async function approximateMessageCount(client: QueueClient): Promise<number> {
  try {
    const properties = await guardStorage('getProperties', () => client.getProperties());
    return properties.approximateMessagesCount ?? 0;
  } catch (err) {
    if (gone(err)) return 0;
    throw err;
  }
}
