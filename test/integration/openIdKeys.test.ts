/**
 * Fetching the OpenID metadata and JWKS (src/auth/openIdKeys.ts) against a local HTTP server that
 * misbehaves on purpose: an endless body must be cut off at the size cap (the server sees the
 * connection go away), an oversized Content-Length is refused without reading, and a redirect is
 * refused rather than followed (the target is never asked), and a server that stops answering is
 * given up on after the timeout. Then the same cases through the key cache, which reports them as
 * "metadata unavailable".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenIdKeyCache, fetchJsonDocument } from '../../src/auth/openIdKeys';

const CAP = 64 * 1024;
let server: Server;
let origin = '';
const hits: string[] = [];
/** Bytes the endless route managed to write before the client went away, and whether it did. */
const endless = { written: 0, closed: Promise.resolve() };

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const routes: Record<string, Route> = {
  '/ok': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ hello: 'world' }));
  },
  '/negotiated': (req, res) => {
    // Serves JSON only to a client that asks for it (as some identity providers do), else 406.
    if (!/\bapplication\/json\b/.test(req.headers.accept ?? '')) {
      res.writeHead(406, { 'content-type': 'text/plain' });
      res.end('ask for application/json');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ negotiated: true }));
  },
  '/endless': (req, res) => {
    // Writes 16 KiB chunks until the client stops reading; never ends the body by itself.
    endless.written = 0;
    endless.closed = new Promise((resolve) => res.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const pump = (): void => {
      while (!res.destroyed && endless.written < 64 * 1024 * 1024) {
        endless.written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    req.socket.setNoDelay(true);
    pump();
  },
  '/declared-huge': (req, res) => {
    unfinished.closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(CAP + 1) });
    res.write('{');
    // Never sends the rest: a client that trusted the length would wait for it.
  },
  '/redirect': (_req, res) => {
    res.writeHead(302, { location: `${origin}/ok` });
    res.end();
  },
  '/redirect-metadata': (_req, res) => {
    res.writeHead(307, { location: `${origin}/metadata` });
    res.end();
  },
  '/metadata': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jwks_uri: 'https://127.0.0.1:1/keys' }));
  },
  '/status': (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"down"}');
  },
  '/status/300': (_req, res) => {
    // 300 Multiple Choices is a redirect too, even with a JSON body and no Location.
    res.writeHead(300, { 'content-type': 'application/json' });
    res.end('{"choices":[]}');
  },
  '/status/399': (_req, res) => {
    res.writeHead(399, { location: `${origin}/ok` });
    res.end();
  },
  '/status/400': (_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end('{"error":"bad request"}');
  },
  '/exact-declared': (_req, res) => {
    const body = jsonOfLength(CAP);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  },
  '/exact-chunked': (_req, res) => {
    // No Content-Length: the body arrives in chunks whose total is exactly the cap.
    const body = jsonOfLength(CAP);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(body.subarray(0, 1000));
    res.end(body.subarray(1000));
  },
  '/over-by-one-chunked': (_req, res) => {
    const body = jsonOfLength(CAP + 1);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(body.subarray(0, 1000));
    res.end(body.subarray(1000));
  },
  '/silent': (req) => {
    // Never answers; notes when the client gives up.
    unfinished.closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
  },
  '/stalled-body': (req, res) => {
    // Headers and the start of the body, then nothing.
    unfinished.closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"keys":[');
  },
};

/** A JSON document of exactly `length` bytes. */
function jsonOfLength(length: number): Buffer {
  const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(length - '{"pad":""}'.length) }));
  expect(body.length).toBe(length);
  return body;
}
/** When the client dropped the connection to a route that never finishes its answer. */
const unfinished = { closed: Promise.resolve() };

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(path);
    const route = routes[path];
    if (route === undefined) {
      res.writeHead(404);
      res.end();
    } else route(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  hits.length = 0;
});

describe('fetchJsonDocument', () => {
  it('reads a small JSON document', async () => {
    expect(await fetchJsonDocument(`${origin}/ok`)).toEqual({ hello: 'world' });
  });

  it('asks for JSON (Accept: application/json), so a server that negotiates answers with JSON', async () => {
    expect(await fetchJsonDocument(`${origin}/negotiated`)).toEqual({ negotiated: true });
  });

  it('stops reading an endless body at the cap and drops the connection', async () => {
    await expect(fetchJsonDocument(`${origin}/endless`, { maxBytes: CAP })).rejects.toThrow(`more than ${CAP} bytes`);
    // The server notices the connection is gone long before it could write 64 MiB.
    await endless.closed;
    expect(endless.written).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses a declared Content-Length over the cap without waiting for the body', async () => {
    await expect(fetchJsonDocument(`${origin}/declared-huge`, { maxBytes: CAP, timeoutMs: 60_000 })).rejects.toThrow(
      `declared ${CAP + 1} bytes`,
    );
    // ...and lets the connection go rather than keep it open for the body it will not read.
    await unfinished.closed;
  });

  it('refuses a redirect instead of following it', async () => {
    await expect(fetchJsonDocument(`${origin}/redirect`)).rejects.toThrow(/redirect \(302\).*not followed/);
    expect(hits).toEqual(['/redirect']);
  });

  it('reports a non-2xx answer', async () => {
    await expect(fetchJsonDocument(`${origin}/status`)).rejects.toThrow('answered 503');
  });

  it('counts every 3xx as a redirect, 300 and 399 included, and a 400 as a plain failure', async () => {
    await expect(fetchJsonDocument(`${origin}/status/300`)).rejects.toThrow(
      `GET ${origin}/status/300 answered a redirect (300)`,
    );
    await expect(fetchJsonDocument(`${origin}/status/399`)).rejects.toThrow(
      `GET ${origin}/status/399 answered a redirect (399)`,
    );
    const err = await fetchJsonDocument(`${origin}/status/400`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`GET ${origin}/status/400 answered 400`);
    expect(hits).toEqual(['/status/300', '/status/399', '/status/400']);
  });

  it('accepts a document of exactly the cap, declared or chunked, and refuses one byte more', async () => {
    const padded = { pad: 'x'.repeat(CAP - '{"pad":""}'.length) };
    expect(await fetchJsonDocument(`${origin}/exact-declared`, { maxBytes: CAP })).toEqual(padded);
    expect(await fetchJsonDocument(`${origin}/exact-chunked`, { maxBytes: CAP })).toEqual(padded);
    await expect(fetchJsonDocument(`${origin}/over-by-one-chunked`, { maxBytes: CAP })).rejects.toThrow(
      `returned more than ${CAP} bytes`,
    );
    await expect(fetchJsonDocument(`${origin}/exact-declared`, { maxBytes: CAP - 1 })).rejects.toThrow(
      `declared ${CAP} bytes, more than ${CAP - 1}`,
    );
  });

  it(
    'gives up on a server that never answers after the timeout, and drops the connection',
    { timeout: 10_000 },
    async () => {
      const started = Date.now();
      await expect(fetchJsonDocument(`${origin}/silent`, { timeoutMs: 300 })).rejects.toMatchObject({
        name: 'TimeoutError',
      });
      expect(Date.now() - started).toBeLessThan(5_000);
      await unfinished.closed;
    },
  );

  it('times the body too: a body that stalls is given up on after the timeout', { timeout: 10_000 }, async () => {
    const started = Date.now();
    await expect(fetchJsonDocument(`${origin}/stalled-body`, { timeoutMs: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    await unfinished.closed;
  });
});

describe('createOpenIdKeyCache with the real fetch', () => {
  it('treats a redirected metadata document as unavailable (no key, 503 upstream)', async () => {
    const keys = createOpenIdKeyCache({ metadataUrl: `${origin}/redirect-metadata`, fetchJson: fetchJsonDocument });
    await expect(keys.getKey('any')).rejects.toMatchObject({ code: 'AUTH_METADATA_UNAVAILABLE' });
    expect(hits).toEqual(['/redirect-metadata']);
  });

  it('treats an oversized metadata document as unavailable', async () => {
    const keys = createOpenIdKeyCache({
      metadataUrl: `${origin}/endless`,
      fetchJson: (url) => fetchJsonDocument(url, { maxBytes: CAP }),
    });
    await expect(keys.getKey('any')).rejects.toMatchObject({ code: 'AUTH_METADATA_UNAVAILABLE' });
  });
});
