/**
 * Shared pieces of the local host's tests: the fixture app, its records and Azurite queues. Waits
 * use the one polling helper, `waitFor` (host/emulator/waitFor.ts).
 */
import path from 'node:path';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { waitFor } from '../../host/emulator/waitFor';
import { startHost, type RunningHost, type StartHostOptions } from '../../host/host';

export const FIXTURE_APP = path.join(__dirname, 'fixture-app');

export interface FixtureRecord {
  kind: string;
  at: number;
  [key: string]: unknown;
}

/** What the fixture functions recorded (they run in this process). */
export function records(kind?: string): FixtureRecord[] {
  const all = ((globalThis as Record<symbol, unknown>)[Symbol.for('host-fixture-records')] ?? []) as FixtureRecord[];
  return kind === undefined ? all : all.filter((r) => r.kind === kind);
}

/** Records whose `item.marker` equals `marker`. */
export function recordsFor(kind: string, marker: string): FixtureRecord[] {
  return records(kind).filter((r) => (r.item as { marker?: string } | undefined)?.marker === marker);
}

/** Waits until at least `count` records of `kind` carry `marker`, and returns them. */
export function waitForRecords(kind: string, marker: string, count = 1, timeoutMs = 10_000): Promise<FixtureRecord[]> {
  return waitFor(`${count} "${kind}" record(s) for ${marker}`, timeoutMs, () => {
    const found = recordsFor(kind, marker);
    return found.length >= count ? found : undefined;
  });
}

export interface FixtureHost {
  readonly host: RunningHost;
  readonly lines: string[];
}

export async function startFixtureHost(
  connectionString: string,
  env: Record<string, string | undefined> = {},
  options: Partial<StartHostOptions> = {},
): Promise<FixtureHost> {
  const lines: string[] = [];
  const host = await startHost({
    rootDir: FIXTURE_APP,
    host: '127.0.0.1',
    port: 0,
    log: (line) => lines.push(line),
    logLevel: 'debug',
    drainTimeoutMs: 10_000,
    ...options,
    env: { AzureWebJobsStorage: connectionString, WORK_QUEUE: 'work-items', ...env },
  });
  return { host, lines };
}

export function queueClient(connectionString: string, name: string): QueueClient {
  return QueueServiceClient.fromConnectionString(connectionString).getQueueClient(name);
}

export const toBase64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** All messages of a queue, including invisible ones (Azurite counts them). */
export async function messageCount(queue: QueueClient): Promise<number> {
  if (!(await queue.exists())) return 0;
  return (await queue.getProperties()).approximateMessagesCount ?? 0;
}

export async function peekTexts(queue: QueueClient): Promise<string[]> {
  if (!(await queue.exists())) return [];
  const peeked = await queue.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => m.messageText);
}
