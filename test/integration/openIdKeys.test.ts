/**
 * Fetching the OpenID metadata and JWKS (src/auth/openIdKeys.ts) against a local HTTP server that
 * misbehaves on purpose: an endless body must be cut off at the size cap (the server sees the
 * connection go away), an oversized Content-Length is refused without reading, and a redirect is
 * refused rather than followed (the target is never asked). Then the same cases through the key
 * cache, which reports them as "metadata unavailable".
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
  '/declared-huge': (_req, res) => {
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
};

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
  });

  it('refuses a redirect instead of following it', async () => {
    await expect(fetchJsonDocument(`${origin}/redirect`)).rejects.toThrow(/redirect \(302\).*not followed/);
    expect(hits).toEqual(['/redirect']);
  });

  it('reports a non-2xx answer', async () => {
    await expect(fetchJsonDocument(`${origin}/status`)).rejects.toThrow('answered 503');
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
