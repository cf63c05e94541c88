import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseMessagesList, QueueRestError } from '../../src/store/queueRest';
import { sharedKeyLiteQueue } from '../../src/store/storageRest';

const DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';

/** One `<QueueMessage>` as Get Messages answers it; `text` is put in as is (already XML-escaped). */
function queueMessage(fields: { id: string; text: string; popReceipt?: string; dequeueCount?: number }): string {
  return [
    '<QueueMessage>',
    `<MessageId>${fields.id}</MessageId>`,
    '<InsertionTime>Mon, 07 Dec 2026 11:00:00 GMT</InsertionTime>',
    '<ExpirationTime>Mon, 14 Dec 2026 11:00:00 GMT</ExpirationTime>',
    `<PopReceipt>${fields.popReceipt ?? 'AgAAAAMAAAAAAAAA'}</PopReceipt>`,
    '<TimeNextVisible>Mon, 07 Dec 2026 11:00:30 GMT</TimeNextVisible>',
    `<DequeueCount>${fields.dequeueCount ?? 1}</DequeueCount>`,
    `<MessageText>${fields.text}</MessageText>`,
    '</QueueMessage>',
  ].join('');
}

function list(...messages: string[]): string {
  return `${DECLARATION}<QueueMessagesList>${messages.join('')}</QueueMessagesList>`;
}

/** The text of the only message in a list holding one message with `escaped` as its MessageText. */
function textOf(escaped: string): string {
  const messages = parseMessagesList(list(queueMessage({ id: 'm', text: escaped })));
  expect(messages).toHaveLength(1);
  return messages[0]!.messageText;
}

describe('parseMessagesList: the body of Get Messages', () => {
  it('an empty queue: the self-closing and the empty element both give no message', () => {
    expect(parseMessagesList(`${DECLARATION}<QueueMessagesList />`)).toEqual([]);
    expect(parseMessagesList(`${DECLARATION}<QueueMessagesList></QueueMessagesList>`)).toEqual([]);
    expect(parseMessagesList(`${DECLARATION}<QueueMessagesList>\n</QueueMessagesList>`)).toEqual([]);
  });

  it('one message: every field, the dates parsed and the dequeue count a number', () => {
    const messages = parseMessagesList(
      list(
        queueMessage({ id: '7a1f0c2e-9d4b-4c55-8f3e-2b6a1d0e9c11', text: 'hello', popReceipt: 'pr1', dequeueCount: 3 }),
      ),
    );
    expect(messages).toEqual([
      {
        messageId: '7a1f0c2e-9d4b-4c55-8f3e-2b6a1d0e9c11',
        popReceipt: 'pr1',
        messageText: 'hello',
        dequeueCount: 3,
        insertedOn: new Date('2026-12-07T11:00:00.000Z'),
        expiresOn: new Date('2026-12-14T11:00:00.000Z'),
        nextVisibleOn: new Date('2026-12-07T11:00:30.000Z'),
      },
    ]);
    const [message] = messages;
    expect(typeof message!.dequeueCount).toBe('number');
    expect(message!.insertedOn).toBeInstanceOf(Date);
    expect(message!.insertedOn.getTime()).toBe(Date.UTC(2026, 11, 7, 11, 0, 0));
    expect(message!.expiresOn.getTime()).toBe(Date.UTC(2026, 11, 14, 11, 0, 0));
    expect(message!.nextVisibleOn.getTime()).toBe(Date.UTC(2026, 11, 7, 11, 0, 30));
  });

  it('several messages, in the order sent, also with whitespace between the elements', () => {
    const three = [
      queueMessage({ id: 'a', text: 'first', popReceipt: 'p-a', dequeueCount: 1 }),
      queueMessage({ id: 'b', text: 'second', popReceipt: 'p-b', dequeueCount: 2 }),
      queueMessage({ id: 'c', text: 'third', popReceipt: 'p-c', dequeueCount: 12 }),
    ];
    const expected = [
      { messageId: 'a', popReceipt: 'p-a', messageText: 'first', dequeueCount: 1 },
      { messageId: 'b', popReceipt: 'p-b', messageText: 'second', dequeueCount: 2 },
      { messageId: 'c', popReceipt: 'p-c', messageText: 'third', dequeueCount: 12 },
    ];
    expect(parseMessagesList(list(...three))).toMatchObject(expected);
    const pretty = `${DECLARATION}\n<QueueMessagesList>\n  ${three.join('\n  ')}\n</QueueMessagesList>\n`;
    const parsed = parseMessagesList(pretty);
    expect(parsed).toHaveLength(3);
    expect(parsed).toMatchObject(expected);
  });

  it('keeps the message text exactly as sent: spaces, decoded entities, JSON, non-ASCII, digits, empty', () => {
    expect(textOf('  padded  ')).toBe('  padded  ');
    expect(textOf('\n indented\n')).toBe('\n indented\n');
    expect(textOf('&lt;&amp;&quot;')).toBe('<&"');
    expect(textOf('&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;')).toBe(
      `<a href="x">Tom & Jerry's</a>`,
    );
    // Entities are decoded once: an escaped entity stays an entity in the text.
    expect(textOf('&amp;lt;')).toBe('&lt;');
    const json = '{"jobId":"j-1","text":"hi","n":[1,2.5],"ok":true,"none":null}';
    expect(textOf(json)).toBe(json);
    expect(JSON.parse(textOf(json))).toEqual({ jobId: 'j-1', text: 'hi', n: [1, 2.5], ok: true, none: null });
    expect(textOf('héllo wörld 中文 🙂')).toBe('héllo wörld 中文 🙂');
    // Never taken for a number or a boolean: the text is a string as sent.
    expect(textOf('007')).toBe('007');
    expect(textOf('true')).toBe('true');
    expect(textOf('')).toBe('');
    expect(textOf('   ')).toBe('   ');
  });

  it('a body without QueueMessagesList is an error, not an empty batch', () => {
    const bodies = [
      `${DECLARATION}<Error><Code>InternalError</Code><Message>oops</Message></Error>`,
      '',
      'not xml at all',
      `${DECLARATION}<QueueMessages><QueueMessage /></QueueMessages>`,
    ];
    for (const body of bodies) {
      let error: unknown;
      try {
        parseMessagesList(body);
      } catch (err) {
        error = err;
      }
      expect(error, body).toBeInstanceOf(QueueRestError);
      expect((error as QueueRestError).message).toBe('Queue Storage answered no QueueMessagesList');
    }
  });
});

describe('sharedKeyLiteQueue: Shared Key Lite for the queue service', () => {
  const key = Buffer.from('a queue account key, not a real one');
  const hmac = (toSign: string): string => createHmac('sha256', key).update(toSign, 'utf8').digest('base64');
  const date = 'Mon, 07 Dec 2026 11:00:00 GMT';

  it('signs the documented string: verb, empty Content-MD5, content type, empty Date, x-ms- headers, resource', () => {
    const header = sharedKeyLiteQueue(
      'acct',
      key,
      'GET',
      { 'x-ms-version': '2021-12-02', 'x-ms-date': date },
      '/jobs/messages',
    );
    const toSign = 'GET\n\n\n\nx-ms-date:Mon, 07 Dec 2026 11:00:00 GMT\nx-ms-version:2021-12-02\n/acct/jobs/messages';
    expect(header).toBe(`SharedKeyLite acct:${hmac(toSign)}`);

    // With a content type and a path-style (Azurite) resource: the account appears twice.
    const put = sharedKeyLiteQueue(
      'devstoreaccount1',
      key,
      'PUT',
      { 'content-type': 'application/xml', 'x-ms-version': '2021-12-02', 'x-ms-date': date },
      '/devstoreaccount1/jobs/messages/abc',
    );
    const putToSign =
      'PUT\n\napplication/xml\n\nx-ms-date:Mon, 07 Dec 2026 11:00:00 GMT\nx-ms-version:2021-12-02\n' +
      '/devstoreaccount1/devstoreaccount1/jobs/messages/abc';
    expect(put).toBe(`SharedKeyLite devstoreaccount1:${hmac(putToSign)}`);
  });

  it('sorts the x-ms- headers, whatever order they come in', () => {
    const headers = {
      'x-ms-version': '2021-12-02',
      'x-ms-date': date,
      'x-ms-client-request-id': 'r-1',
      'x-ms-meta-b': '2',
      'x-ms-meta-a': '1',
    };
    const toSign =
      'DELETE\n\n\n\n' +
      'x-ms-client-request-id:r-1\nx-ms-date:Mon, 07 Dec 2026 11:00:00 GMT\nx-ms-meta-a:1\nx-ms-meta-b:2\nx-ms-version:2021-12-02\n' +
      '/acct/jobs/messages/id';
    const expected = `SharedKeyLite acct:${hmac(toSign)}`;
    expect(sharedKeyLiteQueue('acct', key, 'DELETE', headers, '/jobs/messages/id')).toBe(expected);
    const reversed = Object.fromEntries(Object.entries(headers).reverse());
    expect(sharedKeyLiteQueue('acct', key, 'DELETE', reversed, '/jobs/messages/id')).toBe(expected);
  });

  it('ignores headers that are not x-ms- (but for the content type)', () => {
    const base = { 'x-ms-version': '2021-12-02', 'x-ms-date': date };
    const plain = sharedKeyLiteQueue('acct', key, 'GET', base, '/jobs/messages');
    const withOthers = sharedKeyLiteQueue(
      'acct',
      key,
      'GET',
      { accept: 'application/xml', 'user-agent': 'courier', authorization: 'old', 'content-length': '0', ...base },
      '/jobs/messages',
    );
    expect(withOthers).toBe(plain);
    // Each signed part changes the signature: the verb, the resource, an x-ms- header, the key.
    expect(sharedKeyLiteQueue('acct', key, 'DELETE', base, '/jobs/messages')).not.toBe(plain);
    expect(sharedKeyLiteQueue('acct', key, 'GET', base, '/jobs2/messages')).not.toBe(plain);
    expect(
      sharedKeyLiteQueue('acct', key, 'GET', { ...base, 'x-ms-version': '2020-10-02' }, '/jobs/messages'),
    ).not.toBe(plain);
    expect(sharedKeyLiteQueue('acct', Buffer.from('another key'), 'GET', base, '/jobs/messages')).not.toBe(plain);
  });
});
