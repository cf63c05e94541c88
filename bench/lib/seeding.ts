/**
 * The bench's conversations: personal-chat message activities from bench users, and conversation
 * references stored through the app's own ConversationStore, as if Teams had sent those messages.
 */
import { personalMessage } from '../../host/emulator/activities';
import { parseActivity, toCapturePlan, type CapturePlan } from '../../src/core/activity';
import { createConversationStore, type ConversationStore } from '../../src/store/conversationStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { runPool } from './common';
import {
  BENCH_APP_ID,
  BENCH_BOT_NAME,
  BENCH_USER_TENANT,
  benchAadObjectId,
  benchConversationId,
  benchUserId,
} from './identities';

export interface BenchChat {
  /** Keeps sections and runs apart: `benchConversationId(prefix, i)`. */
  readonly prefix: string;
  readonly index: number;
  /** The serviceUrl the activity carries (and a stored reference points at). */
  readonly serviceUrl: string;
  /** Varies the users' Entra object ids between sets of chats (`benchAadObjectId(i, salt)`). */
  readonly salt: number;
  /** Default BENCH_USER_TENANT. */
  readonly tenantId?: string;
  /** The user is named `<userLabel> <index>`; default `Bench User`. */
  readonly userLabel?: string;
}

/** A message from bench user `index` in their personal chat with the bench bot. */
export function benchMessage(chat: BenchChat, text: string): Record<string, unknown> {
  return personalMessage({
    appId: BENCH_APP_ID,
    tenantId: chat.tenantId ?? BENCH_USER_TENANT,
    serviceUrl: chat.serviceUrl,
    botName: BENCH_BOT_NAME,
    conversationId: benchConversationId(chat.prefix, chat.index),
    user: {
      id: benchUserId(chat.prefix, chat.index),
      name: `${chat.userLabel ?? 'Bench User'} ${chat.index}`,
      aadObjectId: benchAadObjectId(chat.index, chat.salt),
    },
    text,
  }) as unknown as Record<string, unknown>;
}

/** The app's ConversationStore on a storage account. */
export function conversationStore(connectionString: string): ConversationStore {
  const storage = { kind: 'connectionString' as const, connectionString };
  return createConversationStore({
    conversations: createTableClient(storage, TABLES.conversations),
    userChats: createTableClient(storage, TABLES.userChats),
  });
}

/**
 * Stores `count` personal-chat references (chats 0 .. count-1 of `prefix`) as if Teams had sent a
 * message from each, 16 at a time, within 120 s. Returns their conversation ids.
 */
export async function seedPersonalChats(
  store: ConversationStore,
  count: number,
  chat: Omit<BenchChat, 'index'>,
): Promise<string[]> {
  let failures = 0;
  const { timedOut } = await runPool(count, 16, Date.now() + 120_000, async (index) => {
    const plan = toCapturePlan(parseActivity(benchMessage({ ...chat, index }, 'hello')));
    if (plan.kind !== 'capture') throw new Error(`not capturable: ${plan.reason}`);
    try {
      await store.capture(plan as Extract<CapturePlan, { kind: 'capture' }>, new Date());
    } catch {
      failures += 1;
    }
  });
  if (timedOut || failures > 0)
    throw new Error(`seeding ${chat.prefix}: ${failures} failures${timedOut ? ', timed out' : ''}`);
  return Array.from({ length: count }, (_, i) => benchConversationId(chat.prefix, i));
}
