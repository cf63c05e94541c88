/**
 * Shared plumbing for the emulator's HTTPS stubs: their localhost certificate (made per machine by
 * ./certificate), a loopback HTTPS server that can be closed without waiting for keep-alive clients,
 * and small JSON helpers.
 *
 * The stubs speak HTTPS (not HTTP) because the app refuses to send its bearer token to anything but
 * https origins (bot-connector.md §3, "Host allowlist ... `https` only"), and because MSAL validates
 * that the authority is https.
 *
 * Trust goes to the clients that call the stubs, not to whole processes: a `ca` option
 * (`new Agent({ connect: { ca } })`, as the emulator CLI does), or NODE_EXTRA_CA_CERTS for a child
 * process that runs the app's own clients (they take no `ca` option). Starting a stub changes nothing
 * in its process. The one exception is the local host in emulator mode, which runs the app in-process
 * (trustCertificateInProcess, undone on close).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { ensureLocalCertificate } from './certificate';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** Absolute path of the certificate (what NODE_EXTRA_CA_CERTS or a client's `ca` option points at). */
  readonly certPath: string;
}

/** The emulator's localhost certificate and key (valid for localhost, 127.0.0.1 and ::1 only), made on first use. */
export function loadTestCertificate(): TlsMaterial {
  const { cert, key, certPath } = ensureLocalCertificate();
  return { cert, key, certPath };
}

type TlsWithDefaults = typeof tls & {
  getCACertificates?: (type?: 'default') => string[];
  setDefaultCACertificates?: (certs: readonly string[]) => void;
};

const normalisePem = (pem: string): string => pem.replace(/\s+/g, '');

/**
 * Makes this whole process trust the emulator certificate for outgoing TLS (node:https, undici,
 * fetch, @azure/identity). Only for a process whose clients cannot be given a `ca` option (app code
 * run in-process); returns false when the running Node lacks `tls.setDefaultCACertificates`
 * (added in 22.19 / 24.5).
 */
export function trustEmulatorCertificate(): boolean {
  return trustCertificate(loadTestCertificate().cert);
}

/** Adds one PEM certificate to this process's default CA list for good (idempotent); false when Node cannot. */
export function trustCertificate(cert: string): boolean {
  const tlsApi = tls as TlsWithDefaults;
  if (typeof tlsApi.setDefaultCACertificates !== 'function' || typeof tlsApi.getCACertificates !== 'function')
    return false;
  const current = tlsApi.getCACertificates('default');
  if (!current.some((pem) => normalisePem(pem) === normalisePem(cert))) {
    tlsApi.setDefaultCACertificates([...current, cert]);
  }
  return true;
}

const inProcessTrust = new Map<string, { holders: number; added: boolean }>();

/**
 * Like trustCertificate, until the returned function is called: then the certificate leaves this
 * process's default CA list again, once every holder released it, unless it was trusted before (for
 * example through NODE_EXTRA_CA_CERTS). `undefined` when Node lacks `tls.setDefaultCACertificates`.
 */
export function trustCertificateInProcess(cert: string): (() => void) | undefined {
  const tlsApi = tls as TlsWithDefaults;
  if (typeof tlsApi.setDefaultCACertificates !== 'function' || typeof tlsApi.getCACertificates !== 'function')
    return undefined;
  const id = normalisePem(cert);
  let entry = inProcessTrust.get(id);
  if (!entry) {
    const current = tlsApi.getCACertificates('default');
    const added = !current.some((pem) => normalisePem(pem) === id);
    if (added) tlsApi.setDefaultCACertificates([...current, cert]);
    entry = { holders: 0, added };
    inProcessTrust.set(id, entry);
  }
  entry.holders += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    entry.holders -= 1;
    if (entry.holders > 0) return;
    inProcessTrust.delete(id);
    if (entry.added)
      tlsApi.setDefaultCACertificates!(tlsApi.getCACertificates!('default').filter((pem) => normalisePem(pem) !== id));
  };
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
   * Also make this whole process trust the certificate for good (default false). Clients should
   * rather be given the certificate (see the module comment); this is for code that cannot.
   */
  readonly trustInProcess?: boolean;
}

/** Starts an HTTPS server on 127.0.0.1 only (loopback: nothing here may be reachable from outside). */
export async function startHttpsServer(
  handler: RequestHandler,
  options: StartServerOptions = {},
): Promise<LocalServer> {
  const material = options.tls ?? loadTestCertificate();
  if (options.trustInProcess ?? false) trustCertificate(material.cert);
  const sockets = new Set<Socket>();
  const server = https.createServer({ cert: material.cert, key: material.key }, (req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        options.log?.(
          `[emulator] ${options.name ?? 'server'} handler error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
        if (!res.headersSent && !res.destroyed)
          sendJson(res, 500, { error: { code: 'EmulatorError', message: 'Internal error in the emulator' } });
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

/** What a stub's own options say about its server. */
export interface StubServerOptions {
  readonly tls?: TlsMaterial;
  readonly log?: (line: string) => void;
}

/** Starts a stub's server (startHttpsServer): `name` in its log lines, the stub's certificate and log. */
export function startStubServer(
  name: string,
  handler: RequestHandler,
  options: StubServerOptions,
): Promise<LocalServer> {
  return startHttpsServer(handler, { name, tls: options.tls, log: options.log });
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

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
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
  return q < 0
    ? { pathname: raw, query: new URLSearchParams() }
    : { pathname: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}
