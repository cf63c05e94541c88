/**
 * Local stand-in for https://login.botframework.com (bot-connector.md §1.1): the OpenID metadata
 * document and the keys document the app validates inbound tokens against.
 *
 * Counters let tests assert the §1.4 cache rules (no network call per request once warm; re-download
 * on an unknown kid), key rotation changes the document at runtime, and an outage switch makes the
 * endpoints fail so the app's "keep using cached keys / fail closed" behaviour can be checked.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type TlsMaterial, sendJson, splitUrl, startStubServer } from './localServer';
import { ChannelTokenIssuer, type GenerateSigningKeyOptions, type SigningKey } from './tokens';

export const OPENID_METADATA_PATH = '/v1/.well-known/openidconfiguration';
export const OPENID_KEYS_PATH = '/v1/.well-known/keys';

/** `false`: serving normally; `'status'`: 503 on both documents; `'drop'`: connection destroyed. */
export type OutageMode = false | 'status' | 'drop';

export interface OpenIdRequestRecord {
  readonly time: number;
  readonly method: string;
  readonly path: string;
  readonly kind: 'metadata' | 'keys' | 'control' | 'other';
  readonly status: number | null;
}

export interface OpenIdCounters {
  metadata: number;
  keys: number;
  other: number;
}

export interface OpenIdServerOptions {
  /** Defaults to a new issuer with one `msteams`-endorsed key. */
  readonly issuer?: ChannelTokenIssuer;
  /** `id_token_signing_alg_values_supported`; default `['RS256']` (§1.1 example). */
  readonly signingAlgs?: readonly string[];
  readonly tls?: TlsMaterial;
  readonly log?: (line: string) => void;
}

export interface OpenIdServer {
  readonly origin: string;
  readonly port: number;
  /** Value for BOT_OPENID_METADATA_URL. */
  readonly metadataUrl: string;
  readonly jwksUrl: string;
  readonly issuer: ChannelTokenIssuer;
  /** Live counts of requests per document (including ones failed by an outage). */
  readonly counters: Readonly<OpenIdCounters>;
  readonly requests: readonly OpenIdRequestRecord[];
  resetCounters(): void;
  setOutage(mode: OutageMode): void;
  readonly outage: OutageMode;
  addKey(options?: GenerateSigningKeyOptions & { makeCurrent?: boolean }): Promise<SigningKey>;
  removeKey(kid: string): boolean;
  rotate(): Promise<SigningKey>;
  /** Routes every request whose path starts with `prefix` (e.g. `/_emulator/`) to `handler`. */
  mount(prefix: string, handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void): void;
  close(): Promise<void>;
}

export async function startOpenIdServer(options: OpenIdServerOptions = {}): Promise<OpenIdServer> {
  const issuer = options.issuer ?? (await ChannelTokenIssuer.create());
  const counters: OpenIdCounters = { metadata: 0, keys: 0, other: 0 };
  const requests: OpenIdRequestRecord[] = [];
  const mounts: { prefix: string; handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void }[] = [];
  let outage: OutageMode = false;
  let origin = '';

  const metadata = (): Record<string, unknown> => ({
    // Shape of https://login.botframework.com/v1/.well-known/openidconfiguration.
    issuer: issuer.issuer,
    authorization_endpoint: 'https://invalid.botframework.com',
    jwks_uri: `${origin}${OPENID_KEYS_PATH}`,
    id_token_signing_alg_values_supported: [...(options.signingAlgs ?? ['RS256'])],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
  });

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname } = splitUrl(req.url);
    const method = req.method ?? 'GET';
    const mount = mounts.find((m) => pathname.startsWith(m.prefix));
    if (mount) {
      res.once('finish', () =>
        requests.push({ time: Date.now(), method, path: pathname, kind: 'control', status: res.statusCode }),
      );
      await mount.handler(req, res);
      return;
    }
    const kind = pathname === OPENID_METADATA_PATH ? 'metadata' : pathname === OPENID_KEYS_PATH ? 'keys' : 'other';
    counters[kind] += 1;
    const record = (status: number | null): void => {
      requests.push({ time: Date.now(), method, path: pathname, kind, status });
    };
    if (kind !== 'other' && outage === 'drop') {
      record(null);
      req.socket.destroy();
      return;
    }
    if (kind !== 'other' && outage === 'status') {
      record(503);
      sendJson(res, 503, { error: { code: 'ServiceUnavailable', message: 'Emulated outage' } });
      return;
    }
    if (method !== 'GET') {
      record(405);
      sendJson(res, 405, { error: { code: 'MethodNotAllowed', message: `${method} not allowed` } });
      return;
    }
    if (kind === 'metadata') {
      record(200);
      sendJson(res, 200, metadata());
    } else if (kind === 'keys') {
      record(200);
      sendJson(res, 200, issuer.jwks());
    } else {
      record(404);
      sendJson(res, 404, { error: { code: 'NotFound', message: `No route for ${pathname}` } });
    }
  };

  const server = await startStubServer('openid', handler, options);
  origin = server.origin;

  return {
    origin,
    port: server.port,
    metadataUrl: `${origin}${OPENID_METADATA_PATH}`,
    jwksUrl: `${origin}${OPENID_KEYS_PATH}`,
    issuer,
    counters,
    requests,
    resetCounters() {
      counters.metadata = 0;
      counters.keys = 0;
      counters.other = 0;
      requests.length = 0;
    },
    setOutage(mode) {
      outage = mode;
    },
    get outage() {
      return outage;
    },
    addKey: (opts) => issuer.addKey(opts),
    removeKey: (kid) => issuer.removeKey(kid),
    rotate: () => issuer.rotate(),
    mount(prefix, mountHandler) {
      mounts.push({ prefix, handler: mountHandler });
    },
    close: () => server.close(),
  };
}
