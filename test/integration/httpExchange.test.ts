/**
 * src/httpExchange.ts against a loopback HTTP server: what the Connector and Storage clients rely on
 * (status, headers, the body as text and capped, undici's own errors, abort).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undiciFailure } from '../../src/connector/answerReader';
import { exchange } from '../../src/httpExchange';

const received: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
const routes: Record<string, (res: ServerResponse) => void> = {
  '/json': (res) => {
    res.writeHead(201, { 'content-type': 'application/json', etag: 'W/"1"' });
    res.end(JSON.stringify({ id: 'a1', text: 'ünïcode' }));
  },
  // 3 chunks of 1,000 bytes, the middle one split inside a two-byte character.
  '/long': (res) => {
    res.writeHead(200);
    res.write('a'.repeat(1000));
    res.write(Buffer.concat([Buffer.from('b'.repeat(999)), Buffer.from('é').subarray(0, 1)]));
    res.end(Buffer.concat([Buffer.from('é').subarray(1), Buffer.from('c'.repeat(999))]));
  },
  '/silent': () => {
    // Never answers: the headers timeout ends it.
  },
};

let server: ReturnType<typeof createServer>;
let origin: string;
const agent = new Agent({ keepAliveTimeout: 1_000 });

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      (routes[(req.url ?? '').split('?')[0]!] ?? ((res) => res.writeHead(404).end()))(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await agent.close();
});

describe('exchange: one request through the dispatcher', () => {
  it('sends the method, target, headers and body as given, and returns status, headers and text', async () => {
    const answer = await exchange(agent, origin, '/json?x=%2F1', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'v' },
      body: '{"a":1}',
      idempotent: false,
    });
    expect(answer.status).toBe(201);
    expect(answer.headers.etag).toBe('W/"1"');
    expect(JSON.parse(answer.text)).toEqual({ id: 'a1', text: 'ünïcode' });
    expect(received.at(-1)).toMatchObject({
      method: 'POST',
      url: '/json?x=%2F1',
      body: '{"a":1}',
      headers: expect.objectContaining({ 'content-type': 'application/json', 'x-custom': 'v' }),
    });
  });

  it('keeps at most maxBytes of the answer and still reads it to the end; whole without a cap', async () => {
    const capped = await exchange(agent, origin, '/long', { method: 'GET', headers: {}, maxBytes: 1500 });
    expect(capped.status).toBe(200);
    expect(capped.text).toBe(`${'a'.repeat(1000)}${'b'.repeat(500)}`);
    const whole = await exchange(agent, origin, '/long', { method: 'GET', headers: {} });
    expect(whole.text).toBe(`${'a'.repeat(1000)}${'b'.repeat(999)}é${'c'.repeat(999)}`);
    // The connection was reused: the capped answer was drained, not abandoned.
    const again = await exchange(agent, origin, '/json', { method: 'GET', headers: {} });
    expect(again.status).toBe(201);
  });

  it("passes on undici's own errors, which the Connector client classifies (a headers timeout)", async () => {
    const error = await exchange(agent, origin, '/silent', { method: 'GET', headers: {}, headersTimeout: 200 }).catch(
      (err: unknown) => err,
    );
    expect(undiciFailure(error)).toEqual({ kind: 'timeout', message: 'no response headers before the timeout' });
  });

  it('an abort ends the request with an AbortError, before or while it runs', async () => {
    const before = new AbortController();
    before.abort();
    await expect(
      exchange(agent, origin, '/json', { method: 'GET', headers: {}, signal: before.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const during = new AbortController();
    const running = exchange(agent, origin, '/silent', { method: 'GET', headers: {}, signal: during.signal });
    setTimeout(() => during.abort(), 50);
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
  });
});
