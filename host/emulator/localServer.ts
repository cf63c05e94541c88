/**
 * Shared plumbing for the emulator's HTTPS stubs: the test-only localhost certificate, a loopback
 * HTTPS server that can be closed without waiting for keep-alive clients, and small JSON helpers.
 *
 * The stubs speak HTTPS (not HTTP) because the app refuses to send its bearer token to anything but
 * https origins (bot-connector.md §3, "Host allowlist ... `https` only"), and because MSAL validates
 * that the authority is https.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** Absolute path of the certificate (what NODE_EXTRA_CA_CERTS must point at). */
  readonly certPath: string;
}

/**
 * Where the certificate lives relative to this module: next to the sources (vitest, ts), or two
 * levels up from dist/host/emulator (tsc does not copy non-TS files into dist/).
 */
function certificateDirCandidates(): string[] {
  return [
    path.resolve(__dirname, 'certs'),
    path.resolve(__dirname, '..', '..', '..', 'host', 'emulator', 'certs'),
    path.resolve(process.cwd(), 'host', 'emulator', 'certs'),
  ];
}

let cachedTls: TlsMaterial | undefined;

/** Loads host/emulator/certs/localhost.{crt,key} (valid for localhost, 127.0.0.1 and ::1). */
export function loadTestCertificate(): TlsMaterial {
  if (cachedTls) return cachedTls;
  for (const dir of certificateDirCandidates()) {
    const certPath = path.join(dir, 'localhost.crt');
    const keyPath = path.join(dir, 'localhost.key');
    if (existsSync(certPath) && existsSync(keyPath)) {
      cachedTls = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath };
      return cachedTls;
    }
  }
  throw new Error(`Emulator certificate not found; looked in ${certificateDirCandidates().join(', ')}`);
}

/**
 * Makes this process trust the emulator certificate for outgoing TLS (node:https, undici, fetch,
 * @azure/identity). NODE_EXTRA_CA_CERTS does the same but is only read when a process starts; the
 * local host starts the emulator in-process, so it calls this instead. Returns false when the running
 * Node lacks `tls.setDefaultCACertificates` (added in 22.19 / 24.5).
 */
export function trustEmulatorCertificate(): boolean {
  return trustCertificate(loadTestCertificate().cert);
}

/** Adds one PEM certificate to this process's default CA list (idempotent). */
export function trustCertificate(cert: string): boolean {
  const tlsApi = tls as typeof tls & {
    getCACertificates?: (type?: 'default') => string[];
    setDefaultCACertificates?: (certs: readonly string[]) => void;
  };
  if (typeof tlsApi.setDefaultCACertificates !== 'function' || typeof tlsApi.getCACertificates !== 'function') return false;
  const current = tlsApi.getCACertificates('default');
  const normalise = (pem: string): string => pem.replace(/\s+/g, '');
  if (!current.some((pem) => normalise(pem) === normalise(cert))) {
    tlsApi.setDefaultCACertificates([...current, cert]);
  }
  return true;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface LocalServer {
  readonly server: https.Server;
  readonly port: number;
  /** `https://127.0.0.1:<port>` (no trailing slash). */
  readonly origin: string;
  close(): Promise<void>;
}

export interface StartServerOptions {
  readonly tls?: TlsMaterial;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Called with a line when a handler throws; the client gets a 500. */
  readonly log?: (line: string) => void;
  readonly name?: string;
  /**
   * Also make this process trust the certificate (default true), so clients in the same process
   * (the app under test, @azure/identity, undici) can call the stub. NODE_EXTRA_CA_CERTS alone is not
   * enough: vitest.config.ts only sets it when unset, and some machines already point it at the system bundle.
   */
  readonly trustInProcess?: boolean;
}

/** Starts an HTTPS server on 127.0.0.1 only (loopback: nothing here may be reachable from outside). */
export async function startHttpsServer(handler: RequestHandler, options: StartServerOptions = {}): Promise<LocalServer> {
  const material = options.tls ?? loadTestCertificate();
  if (options.trustInProcess ?? true) {
    if (options.tls) trustCertificate(options.tls.cert);
    else trustEmulatorCertificate();
  }
  const sockets = new Set<Socket>();
  const server = https.createServer({ cert: material.cert, key: material.key }, (req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        options.log?.(`[emulator] ${options.name ?? 'server'} handler error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: { code: 'EmulatorError', message: 'Internal error in the emulator' } });
        else res.destroy();
      });
  });
  // Tracked so close() never hangs on a TLS socket that has not yet produced an HTTP request.
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Ignore TLS errors from clients that hang up mid-handshake (e.g. a port probe).
  server.on('tlsClientError', () => undefined);
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    origin: `https://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

export class BodyTooLargeError extends Error {}

/** Reads the whole request body; rejects with BodyTooLargeError above `limitBytes`. */
export async function readBody(req: IncomingMessage, limitBytes = 4 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limitBytes) throw new BodyTooLargeError(`body over ${limitBytes} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** Lower-cased single-valued header (first value if repeated). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Splits `/path?query` into a pathname (still percent-encoded) and its search params. */
export function splitUrl(rawUrl: string | undefined): { pathname: string; query: URLSearchParams } {
  // Split by hand: `new URL()` would resolve `..` and treat a leading `//` as a host.
  const raw = rawUrl ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { pathname: raw, query: new URLSearchParams() } : { pathname: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}
