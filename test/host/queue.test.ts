import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import { waitFor } from '../../host/emulator/waitFor';
import {
  messageCount,
  peekTexts,
  queueClient,
  records,
  recordsFor,
  startFixtureHost,
  toBase64,
  waitForRecords,
  type FixtureHost,
} from './helpers';

let azurite: AzuriteInstance;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

const work = (name = 'work-items') => queueClient(azurite.connectionString, name);
const marker = (): string => randomUUID();

describe('base64 encoding (the default)', () => {
  let fixture: FixtureHost;

  beforeAll(async () => {
    fixture = await startFixtureHost(azurite.connectionString);
  });

  afterAll(async () => {
    await fixture?.host.close();
  });

  test('a message runs the function with the payload and trigger metadata, then is deleted', async () => {
    const m = marker();
    const queue = work();
    await queue.createIfNotExists();
    const sent = await queue.sendMessage(toBase64(JSON.stringify({ marker: m, kind: 'job' })));
    await waitForRecords('recorder.done', m);
    const [rec] = recordsFor('recorder', m);
    expect(rec!.item).toEqual({ marker: m, kind: 'job' });
    const meta = rec!.triggerMetadata as Record<string, unknown>;
    expect(meta).toMatchObject({ dequeueCount: 1, id: sent.messageId, popReceipt: expect.any(String) });
    // QueueTrigger is the text; the library JSON-parses it.
    expect(meta.queueTrigger).toEqual({ marker: m, kind: 'job' });
    expect(meta.insertionTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
    expect(meta.expirationTime).toEqual(expect.any(String));
    expect(meta.nextVisibleTime).toEqual(expect.any(String));
    // Top-level payload properties are merged into the metadata (azure-functions-nodejs-library#459).
    expect(meta.marker).toBe(m);
    expect(meta.sys).toMatchObject({ methodName: 'recorder' });
    await waitFor('the message to be deleted', 10_000, async () => (await messageCount(queue)) === 0);
    const line = fixture.lines.find((l) => l.includes('queue.invocation') && l.includes(sent.messageId));
    expect(line).toMatch(/status=succeeded durationMs=\d+ invocationId=/);
  });

  test('payload properties win over metadata of the same name', async () => {
    const m = marker();
    await work().sendMessage(toBase64(JSON.stringify({ marker: m, id: 'from-payload', DequeueCount: 99 })));
    const [rec] = await waitForRecords('recorder', m);
    expect(rec!.triggerMetadata).toMatchObject({ id: 'from-payload', dequeueCount: 99 });
  });

  test("payload properties are merged by the host's rules: nulls and arrays skipped, the rest as strings", async () => {
    const m = marker();
    const sent = await work().sendMessage(
      toBase64(
        JSON.stringify({ marker: m, id: null, tags: ['a'], urgent: true, count: 3, when: '2025-06-01T10:00:00Z' }),
      ),
    );
    const [rec] = await waitForRecords('recorder', m);
    const meta = rec!.triggerMetadata as Record<string, unknown>;
    // A null id keeps the queue message id (stable across redeliveries), as in Azure.
    expect(meta.id).toBe(sent.messageId);
    expect(meta).not.toHaveProperty('tags');
    // "True" is no JSON, so it stays a string; "3" becomes a number again in @azure/functions.
    expect(meta).toMatchObject({ urgent: 'True', count: 3, when: '06/01/2025 10:00:00' });
    // The function's own input is the message itself, untouched.
    expect(rec!.item).toEqual({
      marker: m,
      id: null,
      tags: ['a'],
      urgent: true,
      count: 3,
      when: '2025-06-01T10:00:00Z',
    });
  });

  test('failures retry with a growing dequeueCount, then the message goes to <queue>-poison unchanged', async () => {
    const m = marker();
    const text = toBase64(JSON.stringify({ marker: m }));
    const failing = work('failing-items');
    await failing.createIfNotExists();
    await failing.sendMessage(text);
    const poison = work('failing-items-poison');
    await waitFor('the poison message', 10_000, async () => (await peekTexts(poison)).includes(text));
    expect(recordsFor('alwaysFails', m).map((r) => r.dequeueCount)).toEqual([1, 2, 3]);
    await waitFor('the original to be deleted', 10_000, async () => (await messageCount(failing)) === 0);
    expect(
      fixture.lines.some((l) => l.includes('queue.message.poisoned') && l.includes('poisonQueue=failing-items-poison')),
    ).toBe(true);
  });

  test('a message that is not base64 goes to poison at once, without running the function', async () => {
    const text = `plain text ${marker()}!`;
    await work().sendMessage(text);
    const poison = work('work-items-poison');
    await waitFor('the poison message', 10_000, async () => (await peekTexts(poison)).includes(text));
    expect(records('recorder').some((r) => r.item === text || String(r.item).includes(text))).toBe(false);
    expect(fixture.lines.some((l) => l.includes('queue.message.decodeFailed'))).toBe(true);
  });

  test('messages of one batch run concurrently', async () => {
    const batch = Array.from({ length: 6 }, () => marker());
    // host.json batchSize 8 (newBatchThreshold 4): up to 12 may run at once.
    await Promise.all(batch.map((m) => work().sendMessage(toBase64(JSON.stringify({ marker: m, sleepMs: 300 })))));
    await waitFor('all six', 10_000, () => batch.every((m) => recordsFor('recorder.done', m).length === 1));
    const spans = batch.map((m) => [recordsFor('recorder', m)[0]!.at, recordsFor('recorder.done', m)[0]!.at] as const);
    const maxOverlap = Math.max(...spans.map(([start]) => spans.filter(([s, e]) => s <= start && start < e).length));
    expect(maxOverlap).toBeGreaterThan(1);
    expect(maxOverlap).toBeLessThanOrEqual(8 + 4);
  });
});

describe('other host settings', () => {
  let fixture: FixtureHost | undefined;

  afterEach(async () => {
    await fixture?.host.close();
    fixture = undefined;
  });

  test('messageEncoding none passes the text through as is', async () => {
    fixture = await startFixtureHost(azurite.connectionString, {
      WORK_QUEUE: 'plain-items',
      AzureFunctionsJobHost__extensions__queues__messageEncoding: 'none',
    });
    const m = marker();
    await work('plain-items').createIfNotExists();
    await work('plain-items').sendMessage(JSON.stringify({ marker: m }));
    await work('plain-items').sendMessage(`just text ${m}`);
    await waitFor(
      'both messages',
      10_000,
      () => recordsFor('recorder', m).length === 1 && records('recorder').some((r) => r.item === `just text ${m}`),
    );
    await waitFor('both deleted', 10_000, async () => (await messageCount(work('plain-items'))) === 0);
  });

  test('batchSize and newBatchThreshold bound the running invocations', async () => {
    fixture = await startFixtureHost(azurite.connectionString, {
      WORK_QUEUE: 'batched-items',
      AzureFunctionsJobHost__extensions__queues__batchSize: '2',
      AzureFunctionsJobHost__extensions__queues__newBatchThreshold: '0',
    });
    const batch = Array.from({ length: 5 }, () => marker());
    await work('batched-items').createIfNotExists();
    for (const m of batch)
      await work('batched-items').sendMessage(toBase64(JSON.stringify({ marker: m, sleepMs: 150 })));
    await waitFor('all five', 10_000, () => batch.every((m) => recordsFor('recorder.done', m).length === 1));
    const spans = batch.map((m) => [recordsFor('recorder', m)[0]!.at, recordsFor('recorder.done', m)[0]!.at] as const);
    const maxOverlap = Math.max(...spans.map(([start]) => spans.filter(([s, e]) => s <= start && start < e).length));
    expect(maxOverlap).toBeLessThanOrEqual(2);
  });

  test('close() waits for a running invocation, which still completes its message', async () => {
    fixture = await startFixtureHost(azurite.connectionString, { WORK_QUEUE: 'drain-items' });
    const m = marker();
    await work('drain-items').createIfNotExists();
    await work('drain-items').sendMessage(toBase64(JSON.stringify({ marker: m, sleepMs: 800 })));
    await waitForRecords('recorder', m);
    const closing = fixture.host.close();
    expect(recordsFor('recorder.done', m)).toHaveLength(0);
    await closing;
    expect(recordsFor('recorder.done', m)).toHaveLength(1);
    expect(await messageCount(work('drain-items'))).toBe(0);
    expect(records('appTerminate').at(-1)).toMatchObject({ sawAppStart: true });
    expect(fixture.lines.at(-1)).toMatch(/host\.stopped$/);
  });

  test('a function that outlives the lease keeps its message (the lease is renewed)', async () => {
    fixture = await startFixtureHost(
      azurite.connectionString,
      { WORK_QUEUE: 'lease-items' },
      { queueMessageLeaseMs: 2_000 },
    );
    const m = marker();
    await work('lease-items').createIfNotExists();
    await work('lease-items').sendMessage(toBase64(JSON.stringify({ marker: m, sleepMs: 3_200 })));
    await waitForRecords('recorder.done', m, 1, 15_000);
    await waitFor('the message to be deleted', 10_000, async () => (await messageCount(work('lease-items'))) === 0);
    expect(recordsFor('recorder', m)).toHaveLength(1);
  });

  test('storage that does not answer is waited for (locally; Azure would restart the host), and the host keeps serving', async () => {
    const unreachable = azurite.connectionString.replace(
      /QueueEndpoint=http:\/\/127\.0\.0\.1:\d+/,
      'QueueEndpoint=http://127.0.0.1:9',
    );
    fixture = await startFixtureHost(unreachable, { WORK_QUEUE: 'outage-items' });
    const lines = fixture.lines;
    const warning = await waitFor('the outage warning', 15_000, () =>
      lines.find((l) => l.includes('queue.poll.failed')),
    );
    expect(warning).toContain('no answer from storage');
    expect((await fetch(`${fixture.host.url}/api/nested/ping`)).status).toBe(200);
    expect(lines.some((l) => l.includes('host.unhandledException'))).toBe(false);
    const started = Date.now();
    await fixture.host.close();
    expect(await fixture.host.stopped).toEqual({ reason: 'closed' });
    fixture = undefined;
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('a storage error the queue extension does not handle (403) stops the host, as the real exception handler does', async () => {
    const wrongKey = azurite.connectionString.replace(
      /AccountKey=[^;]+/,
      `AccountKey=${Buffer.from('not the key').toString('base64')}`,
    );
    fixture = await startFixtureHost(wrongKey, { WORK_QUEUE: 'denied-items' });
    const host = fixture.host;
    const stopped = await Promise.race([
      host.stopped,
      new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000)),
    ]);
    expect(stopped).toMatchObject({
      reason: 'unhandledException',
      error: expect.objectContaining({ statusCode: 403 }),
    });
    const line = fixture.lines.find((l) => l.includes('host.unhandledException'));
    expect(line).toMatch(
      /^\[host\] \S+ error host\.unhandledException function=recorder queue=denied-items error=.*403.* detail="An unhandled exception has occurred\. Host is shutting down\."$/,
    );
    expect(fixture.lines.at(-1)).toMatch(/host\.stopped$/);
    await expect(fetch(`${host.url}/admin/host/status`)).rejects.toThrow();
    fixture = undefined;
  });
});
