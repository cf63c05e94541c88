import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { QueueClients } from '../../host/queueClients';
import { createQueueRest, QueueRestError } from '../../src/store/queueRest';
import { storageAccountOf } from '../../src/store/storageAccount';
import { useAzurite } from '../helpers/storage';

const storage = useAzurite();
let queueCount = 0;

/** A fresh queue made with the SDK, and the direct client on it. */
async function freshQueue() {
  const name = `rest-${++queueCount}-${Date.now() % 100000}`;
  const s = storage();
  const sdk = s.queue(name);
  await sdk.create();
  const account = storageAccountOf(s.storage, 'queue')!;
  return { name, sdk, account, rest: createQueueRest(account, name) };
}

interface Seen {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingMessage['headers'];
}

/** A loopback HTTP server standing in for Queue Storage; `close` also ends kept-alive and held connections. */
/** The stub server's account key. */
const key = Buffer.from('stub account key');

/** A client of queue `jobs` at `endpoint` whose pauses and requests are noted instead of waited for. */
function watchedClient(endpoint: string) {
  const slept: number[] = [];
  const observed: string[] = [];
  const rest = createQueueRest({ name: 'acct', endpoint, key }, 'jobs', { sleep: async (ms) => void slept.push(ms) });
  rest.observe((method, status) => observed.push(`${method} ${status}`));
  return { rest, slept, observed };
}

async function stubServer(handler: (req: IncomingMessage, res: ServerResponse, index: number) => void) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    handler(req, res, seen.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    endpoint: `http://127.0.0.1:${port}/acct/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const EMPTY_LIST = '<?xml version="1.0" encoding="utf-8"?><QueueMessagesList />';

describe('the direct queue client against Azurite', () => {
  it('receives what the SDK put, with the same text and dequeue count, then nothing while they are hidden', async () => {
    const { sdk, rest } = await freshQueue();
    const texts = [
      `<job id="1">Tom & Jerry's "quote" </job>`,
      '  leading and trailing spaces  ',
      '{"jobId":"j-1","text":"héllo","emoji":"🙂"}',
      'héllo wörld 中文 🙂 ñ',
      '&amp; &lt; stays literal',
    ];
    const sent = new Map<string, string>();
    const before = Date.now();
    for (const text of texts) sent.set((await sdk.sendMessage(text)).messageId, text);

    const received = await rest.receive(32, 30);
    expect(received).toHaveLength(texts.length);
    for (const message of received) {
      expect(sent.get(message.messageId)).toBe(message.messageText);
      expect(message.dequeueCount).toBe(1);
      expect(message.popReceipt).not.toBe('');
      expect(message.insertedOn).toBeInstanceOf(Date);
      // Storage times are whole seconds; allow a little clock difference.
      expect(message.insertedOn.getTime()).toBeGreaterThanOrEqual(before - 2_000);
      expect(message.insertedOn.getTime()).toBeLessThanOrEqual(Date.now() + 2_000);
      // The default time to live: seven days.
      expect(message.expiresOn.getTime() - message.insertedOn.getTime()).toBe(7 * 24 * 3600 * 1000);
      expect(message.nextVisibleOn.getTime()).toBeGreaterThan(Date.now() + 20_000);
    }
    expect(new Set(received.map((m) => m.messageText))).toEqual(new Set(texts));
    // Hidden for 30 s: neither a second receive nor the SDK's peek sees them.
    expect(await rest.receive(32, 30)).toEqual([]);
    expect((await sdk.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
  });

  it('reads each text as the SDK reads it (same parser settings), received in batches of the count asked', async () => {
    const { sdk, rest } = await freshQueue();
    const texts = ['a', 'line one\r\nline two\ttab', ' <x/> ', '', 'é'];
    for (const text of texts) await sdk.sendMessage(text);
    const peeked = (await sdk.peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
    const first = await rest.receive(2, 30);
    const rest3 = await rest.receive(32, 30);
    expect(first).toHaveLength(2);
    expect(rest3).toHaveLength(3);
    const direct = new Map([...first, ...rest3].map((m) => [m.messageId, m.messageText]));
    expect(direct.size).toBe(texts.length);
    for (const item of peeked) expect(direct.get(item.messageId)).toBe(item.messageText);
  });

  it('update with visibility 0 makes it visible again with a new pop receipt, which the next delete needs', async () => {
    const { sdk, rest } = await freshQueue();
    const { messageId } = await sdk.sendMessage('retry me');
    const [message] = await rest.receive(1, 30);
    expect(message).toMatchObject({ messageId, messageText: 'retry me', dequeueCount: 1 });

    const { popReceipt } = await rest.update(messageId, message!.popReceipt, 0);
    expect(popReceipt).toEqual(expect.any(String));
    expect(popReceipt).not.toBe('');
    expect(popReceipt).not.toBe(message!.popReceipt);
    // Visible again (peek does not change the pop receipt).
    const peeked = (await sdk.peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
    expect(peeked.map((m) => m.messageId)).toEqual([messageId]);

    // The receipt from before the update no longer holds, for a delete or another update.
    const stale = await rest.delete(messageId, message!.popReceipt).catch((err: unknown) => err);
    expect(stale).toBeInstanceOf(QueueRestError);
    expect(stale).toMatchObject({
      name: 'QueueRestError',
      statusCode: 400,
      code: 'PopReceiptMismatch',
      message: 'Queue Storage answered 400 PopReceiptMismatch',
    });
    await expect(rest.update(messageId, message!.popReceipt, 0)).rejects.toMatchObject({
      statusCode: 400,
      code: 'PopReceiptMismatch',
    });

    await rest.delete(messageId, popReceipt);
    expect(await rest.receive(32, 30)).toEqual([]);
    expect((await sdk.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
    // Deleted: a second delete finds no message.
    const gone = await rest.delete(messageId, popReceipt).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(QueueRestError);
    expect(gone).toMatchObject({ statusCode: 404, code: 'MessageNotFound' });
  });

  it('a message made visible again is received again with dequeueCount 2; a visibility > 0 keeps it hidden', async () => {
    const { sdk, rest } = await freshQueue();
    const { messageId } = await sdk.sendMessage('twice');
    const [first] = await rest.receive(1, 30);
    const { popReceipt } = await rest.update(messageId, first!.popReceipt, 0);
    const [second] = await rest.receive(1, 30);
    expect(second).toMatchObject({ messageId, messageText: 'twice', dequeueCount: 2 });
    expect(second!.popReceipt).not.toBe(popReceipt);

    const hidden = await rest.update(messageId, second!.popReceipt, 60);
    expect(hidden.popReceipt).not.toBe(second!.popReceipt);
    expect(await rest.receive(1, 30)).toEqual([]);
    await rest.delete(messageId, hidden.popReceipt);
    expect((await sdk.peekMessages({ numberOfMessages: 1 })).peekedMessageItems).toEqual([]);
  });

  it('delete removes the message: a second receive gets nothing', async () => {
    const { sdk, rest } = await freshQueue();
    const { messageId } = await sdk.sendMessage('done');
    const [message] = await rest.receive(1, 1);
    expect(message?.messageId).toBe(messageId);
    await rest.delete(messageId, message!.popReceipt);
    // Even after its 1 s visibility timeout would have ended.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(await rest.receive(32, 30)).toEqual([]);
    expect((await sdk.getProperties()).approximateMessagesCount).toBe(0);
  });

  it('a wrong account key is refused (the signature is checked): 403, and a missing queue is 404', async () => {
    const { name, account } = await freshQueue();
    const wrong = createQueueRest({ ...account, key: Buffer.alloc(64, 1) }, name);
    const error = await wrong.receive(1, 30).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(QueueRestError);
    expect(error).toMatchObject({ statusCode: 403, code: 'AuthenticationFailed' });

    const missing = createQueueRest(account, 'no-such-queue');
    await expect(missing.receive(1, 30)).rejects.toMatchObject({ statusCode: 404, code: 'QueueNotFound' });
  });

  it('the host queue client (QueueClients.get) receives and deletes over the direct calls', async () => {
    const { name, sdk } = await freshQueue();
    const { connectionString } = storage().azurite;
    const queue = await new QueueClients().get({
      connection: { kind: 'connectionString', settingName: 'AzureWebJobsStorage', connectionString },
      queueName: name,
    });
    expect(queue.name).toBe(name);
    const { messageId } = await sdk.sendMessage('{"via":"host"} é');
    const result = await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 30 });
    // The direct client's answer: only the items (the SDK's also carries its response headers).
    expect(Object.keys(result)).toEqual(['receivedMessageItems']);
    expect(result.receivedMessageItems).toHaveLength(1);
    const [item] = result.receivedMessageItems;
    expect(item).toMatchObject({ messageId, messageText: '{"via":"host"} é', dequeueCount: 1 });

    const updated = await queue.updateMessage(messageId, item!.popReceipt, undefined, 30);
    expect(updated.popReceipt).toEqual(expect.any(String));
    await queue.deleteMessage(messageId, updated.popReceipt!);
    expect((await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 1 })).receivedMessageItems).toEqual(
      [],
    );
    expect((await sdk.getProperties()).approximateMessagesCount).toBe(0);
  });
});

describe('the direct queue client against a stub server', () => {
  it('signs each request (Shared Key Lite, queue format) and retries a 503: two requests, one 200 ms pause', async () => {
    const stub = await stubServer((_req, res, index) => {
      if (index === 0) {
        res.writeHead(503, { 'x-ms-error-code': 'ServerBusy' });
        res.end();
      } else {
        res.writeHead(204);
        res.end();
      }
    });
    try {
      const { rest, slept, observed } = watchedClient(stub.endpoint);
      await expect(rest.delete('msg-1', 'pop/receipt+=')).resolves.toBeUndefined();
      expect(stub.seen).toHaveLength(2);
      expect(slept).toEqual([200]);
      expect(observed).toEqual(['DELETE 503', 'DELETE 204']);
      for (const request of stub.seen) {
        expect(request.method).toBe('DELETE');
        expect(request.url).toBe('/acct/jobs/messages/msg-1?popreceipt=pop%2Freceipt%2B%3D');
        expect(request.headers['x-ms-version']).toBe('2021-12-02');
        // Checked here as the service checks it: from the headers the request carried.
        const toSign =
          `DELETE\n\n\n\nx-ms-date:${String(request.headers['x-ms-date'])}\nx-ms-version:2021-12-02\n` +
          '/acct/acct/jobs/messages/msg-1';
        const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('base64');
        expect(request.headers.authorization).toBe(`SharedKeyLite acct:${signature}`);
      }
    } finally {
      stub.close();
    }
  });

  it('retries 503 twice (200 then 400 ms), then says what storage answered; a 400 is not retried', async () => {
    const answers: [number, string | undefined, string][] = [];
    const stub = await stubServer((_req, res) => {
      const [status, code, body] = answers.shift() ?? [500, undefined, ''];
      res.writeHead(status, code === undefined ? {} : { 'x-ms-error-code': code });
      res.end(body);
    });
    try {
      const { rest, slept } = watchedClient(stub.endpoint);
      answers.push([503, 'ServerBusy', ''], [503, 'ServerBusy', ''], [503, 'ServerBusy', '']);
      const busy = await rest.receive(4, 30).catch((err: unknown) => err);
      expect(busy).toBeInstanceOf(QueueRestError);
      expect(busy).toMatchObject({
        statusCode: 503,
        code: 'ServerBusy',
        message: 'Queue Storage answered 503 ServerBusy',
      });
      expect(stub.seen).toHaveLength(3);
      expect(slept).toEqual([200, 400]);
      expect(stub.seen[0]).toMatchObject({
        method: 'GET',
        url: '/acct/jobs/messages?numofmessages=4&visibilitytimeout=30',
      });

      stub.seen.length = 0;
      slept.length = 0;
      answers.push([500, undefined, ''], [200, undefined, EMPTY_LIST]);
      expect(await rest.receive(1, 30)).toEqual([]);
      expect(stub.seen).toHaveLength(2);
      expect(slept).toEqual([200]);

      stub.seen.length = 0;
      slept.length = 0;
      answers.push([400, 'InvalidQueryParameterValue', '']);
      await expect(rest.receive(64, 30)).rejects.toMatchObject({ statusCode: 400, code: 'InvalidQueryParameterValue' });
      expect(stub.seen).toHaveLength(1);
      expect(slept).toEqual([]);
    } finally {
      stub.close();
    }
  });

  it('update: PUT with the pop receipt and visibility, the new receipt from x-ms-popreceipt; none is an error', async () => {
    const answers: Record<string, string>[] = [{ 'x-ms-popreceipt': 'new-receipt' }, {}];
    const stub = await stubServer((_req, res) => {
      res.writeHead(204, answers.shift() ?? {});
      res.end();
    });
    try {
      const rest = createQueueRest({ name: 'acct', endpoint: stub.endpoint, key }, 'jobs');
      expect(await rest.update('m-1', 'old', 0)).toEqual({ popReceipt: 'new-receipt' });
      expect(stub.seen[0]).toMatchObject({
        method: 'PUT',
        url: '/acct/jobs/messages/m-1?popreceipt=old&visibilitytimeout=0',
      });
      const error = await rest.update('m-1', 'new-receipt', 10).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(QueueRestError);
      expect(error).toMatchObject({ statusCode: 204 });
      expect(stub.seen).toHaveLength(2);
    } finally {
      stub.close();
    }
  });

  it('storage that never answers (the socket closed): REQUEST_SEND_ERROR, no status, after 3 tries', async () => {
    const stub = await stubServer((req) => req.socket.destroy());
    try {
      const { rest, slept, observed } = watchedClient(stub.endpoint);
      const error = await rest.receive(1, 30).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(QueueRestError);
      expect((error as QueueRestError).code).toBe('REQUEST_SEND_ERROR');
      expect((error as QueueRestError).statusCode).toBeUndefined();
      expect((error as QueueRestError).message).toMatch(/^Queue Storage did not answer: /);
      expect((error as QueueRestError).cause).toBeInstanceOf(Error);
      expect(stub.seen).toHaveLength(3);
      expect(slept).toEqual([200, 400]);
      expect(observed).toEqual(['GET error', 'GET error', 'GET error']);

      // The same for a delete and an update.
      await expect(rest.delete('m', 'p')).rejects.toMatchObject({ code: 'REQUEST_SEND_ERROR' });
      await expect(rest.update('m', 'p', 0)).rejects.toMatchObject({ code: 'REQUEST_SEND_ERROR' });
      expect(stub.seen).toHaveLength(9);
    } finally {
      stub.close();
    }
  });

  it('nothing listening: REQUEST_SEND_ERROR after 3 tries', async () => {
    // Port 9 (discard): nothing listens on loopback there.
    const { rest, slept } = watchedClient('http://127.0.0.1:9/acct/');
    const error = await rest.delete('m', 'p').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(QueueRestError);
    expect(error).toMatchObject({ code: 'REQUEST_SEND_ERROR' });
    expect((error as QueueRestError).statusCode).toBeUndefined();
    expect(slept).toEqual([200, 400]);
  });

  it('identity-based storage: a bearer token for storage.azure.com, fetched once for several calls, no shared key', async () => {
    const stub = await stubServer((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(EMPTY_LIST);
      } else {
        res.writeHead(204, req.method === 'PUT' ? { 'x-ms-popreceipt': 'r2' } : {});
        res.end();
      }
    });
    try {
      const scopes: string[] = [];
      const credential: TokenCredential = {
        getToken: async (scope): Promise<AccessToken> => {
          scopes.push(String(scope));
          return { token: 'storage-token', expiresOnTimestamp: Date.now() + 3_600_000 };
        },
      };
      const rest = createQueueRest({ name: 'acct', endpoint: stub.endpoint }, 'jobs', {
        credential: () => credential,
      });
      expect(await rest.receive(8, 30)).toEqual([]);
      expect(await rest.update('m-1', 'r1', 0)).toEqual({ popReceipt: 'r2' });
      await rest.delete('m-1', 'r2');
      expect(await rest.receive(8, 30)).toEqual([]);
      expect(scopes).toEqual(['https://storage.azure.com/.default']);
      expect(stub.seen.map((r) => r.method)).toEqual(['GET', 'PUT', 'DELETE', 'GET']);
      for (const request of stub.seen) {
        expect(request.headers.authorization).toBe('Bearer storage-token');
        expect(String(request.headers.authorization)).not.toMatch(/SharedKey/);
        expect(request.headers['x-ms-version']).toBe('2021-12-02');
      }
    } finally {
      stub.close();
    }
  });

  it('identity-based storage without a credential is refused before any request', async () => {
    const stub = await stubServer((_req, res) => {
      res.writeHead(200);
      res.end(EMPTY_LIST);
    });
    try {
      const rest = createQueueRest({ name: 'acct', endpoint: stub.endpoint }, 'jobs');
      await expect(rest.receive(1, 30)).rejects.toThrow('identity-based storage needs a credential');
      expect(stub.seen).toEqual([]);
    } finally {
      stub.close();
    }
  });

  it('receive with an aborted signal rejects without retrying', async () => {
    // Holds every request unanswered until closed.
    const stub = await stubServer(() => undefined);
    try {
      const { rest, slept, observed } = watchedClient(stub.endpoint);

      // Aborted while waiting for the answer.
      const controller = new AbortController();
      const pending = rest.receive(1, 30, controller.signal).catch((err: unknown) => err);
      for (let i = 0; i < 200 && stub.seen.length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
      expect(stub.seen).toHaveLength(1);
      controller.abort();
      const error = await pending;
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(QueueRestError);
      // The abort itself, as from fetch: the listener tells a shutdown from a storage failure by it.
      expect((error as Error).name).toBe('AbortError');
      expect(slept).toEqual([]);
      expect(observed).toEqual(['GET error']);
      // Give a wrongly scheduled retry the time to show up.
      await new Promise((r) => setTimeout(r, 100));
      expect(stub.seen).toHaveLength(1);

      // Aborted before the call: nothing is sent.
      const aborted = AbortSignal.abort();
      await expect(rest.receive(1, 30, aborted)).rejects.toMatchObject({ name: 'AbortError' });
      expect(slept).toEqual([]);
      await new Promise((r) => setTimeout(r, 100));
      expect(stub.seen).toHaveLength(1);
    } finally {
      stub.close();
    }
  });
});
