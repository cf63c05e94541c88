/**
 * The channel's signing keys, fetched from the OpenID metadata document's `jwks_uri` and cached per
 * process. The raw JWKS is kept because the Bot Framework adds a non-standard `endorsements` array to
 * each key, which generic JWKS helpers (jose's createRemoteJWKSet) drop (bot-connector.md §1.3).
 *
 * Policy (bot-connector.md §1.4): refresh at least every 24 hours; on an unknown `kid`, refetch at
 * most once per `unknownKidRefetchMs`; concurrent callers share one fetch; when a refresh fails and
 * keys are cached, keep serving the cached keys. No network call per request once warm.
 */
import { AuthError, CourierError } from '../errors';

export interface BotJwk {
  readonly kty: string;
  readonly kid?: string;
  readonly n?: string;
  readonly e?: string;
  readonly alg?: string;
  readonly use?: string;
  readonly endorsements?: readonly string[];
  readonly [other: string]: unknown;
}

export type FetchJson = (url: string) => Promise<unknown>;

const METADATA_TIMEOUT_MS = 10_000;
const METADATA_MAX_BYTES = 1024 * 1024;

export interface FetchJsonOptions {
  /** Largest body accepted, in bytes; reading stops (and the connection is aborted) past it. Default 1 MiB. */
  readonly maxBytes?: number;
  /** Time for the whole exchange, headers and body, in milliseconds. Default 10 000. */
  readonly timeoutMs?: number;
}

/**
 * GET a small JSON document (OpenID metadata, JWKS) with a timeout and a size cap. Uses Node's
 * built-in fetch: the inbound path needs no HTTP client package, which keeps cold starts short.
 *
 * Security review: the body is streamed and counted, so a hostile or broken endpoint cannot make
 * us buffer more than `maxBytes` (a declared Content-Length over the cap is refused before reading).
 * Redirects are refused, not followed: the URLs come from fixed presets and the metadata's own
 * `jwks_uri`, and a redirect would let whoever answers there choose where the keys come from
 * (e.g. a plain-http or internal address). A redirect is an unavailable document, like a 5xx.
 */
export async function fetchJsonDocument(url: string, options: FetchJsonOptions = {}): Promise<unknown> {
  const maxBytes = options.maxBytes ?? METADATA_MAX_BYTES;
  const abort = new AbortController();
  const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(options.timeoutMs ?? METADATA_TIMEOUT_MS)]);
  const response = await fetch(url, { signal, redirect: 'manual', headers: { accept: 'application/json' } });
  const fail = async (message: string): Promise<never> => {
    // Stryker disable next-line CallExpression: equivalent, cancelling the body below aborts the fetch and closes the connection too
    abort.abort();
    await response.body?.cancel().catch(() => undefined);
    throw new Error(message);
  };
  if (response.status >= 300 && response.status < 400)
    return fail(`GET ${url} answered a redirect (${response.status}); redirects are not followed`);
  if (!response.ok) return fail(`GET ${url} answered ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes)
    return fail(`GET ${url} declared ${declared} bytes, more than ${maxBytes}`);

  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        // Stryker disable next-line CallExpression: equivalent, reader.cancel() below aborts the fetch and closes the connection too
        abort.abort();
        await reader.cancel().catch(() => undefined);
        throw new Error(`GET ${url} returned more than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, total))) as unknown;
}

export interface OpenIdKeyCacheOptions {
  readonly metadataUrl: string;
  readonly fetchJson: FetchJson;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /** Scheduled refresh interval; default 24 h. */
  readonly refreshIntervalMs?: number;
  /** Minimum time between refetches caused by unknown key ids; default 5 min. */
  readonly unknownKidRefetchMs?: number;
}

export interface OpenIdKeyCache {
  /** The key with this id, or `undefined` when the channel does not publish it. */
  getKey(kid: string): Promise<BotJwk | undefined>;
  /** Number of metadata+keys fetches so far (for tests and diagnostics). */
  readonly fetchCount: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function metadataError(message: string, cause?: unknown): CourierError {
  return new CourierError('AUTH_METADATA_UNAVAILABLE', message, { cause });
}

export function createOpenIdKeyCache(options: OpenIdKeyCacheOptions): OpenIdKeyCache {
  const now = options.now ?? Date.now;
  const refreshIntervalMs = options.refreshIntervalMs ?? 24 * 60 * 60 * 1000;
  const unknownKidRefetchMs = options.unknownKidRefetchMs ?? 5 * 60 * 1000;

  let keys: Map<string, BotJwk> | undefined;
  let fetchedAt = 0;
  let lastAttemptAt = 0;
  let inFlight: Promise<void> | undefined;
  let fetchCount = 0;

  async function download(): Promise<Map<string, BotJwk>> {
    fetchCount += 1;
    const metadata = await options.fetchJson(options.metadataUrl);
    if (!isRecord(metadata) || typeof metadata.jwks_uri !== 'string') {
      throw metadataError('OpenID metadata has no jwks_uri');
    }
    const jwksUri = new URL(metadata.jwks_uri);
    if (jwksUri.protocol !== 'https:') throw metadataError('OpenID metadata jwks_uri is not https');
    const jwks = await options.fetchJson(jwksUri.toString());
    if (!isRecord(jwks) || !Array.isArray(jwks.keys)) throw metadataError('JWKS document has no keys array');
    const result = new Map<string, BotJwk>();
    for (const key of jwks.keys) {
      if (isRecord(key) && typeof key.kid === 'string' && typeof key.kty === 'string')
        result.set(key.kid, key as BotJwk);
    }
    if (result.size === 0) throw metadataError('JWKS document has no usable keys');
    return result;
  }

  function refresh(): Promise<void> {
    inFlight ??= (async () => {
      lastAttemptAt = now();
      try {
        keys = await download();
        fetchedAt = now();
      } catch (err) {
        // Keep serving cached keys through an outage of the metadata endpoint.
        if (keys === undefined)
          throw err instanceof CourierError ? err : metadataError('OpenID metadata or keys could not be fetched', err);
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  return {
    get fetchCount() {
      return fetchCount;
    },
    async getKey(kid: string): Promise<BotJwk | undefined> {
      if (keys === undefined || now() - fetchedAt >= refreshIntervalMs) {
        // A failed scheduled refresh with keys cached is retried at the unknown-kid pace, not per request.
        if (keys === undefined || now() - lastAttemptAt >= unknownKidRefetchMs) await refresh();
      }
      let key = keys?.get(kid);
      if (key === undefined && now() - lastAttemptAt >= unknownKidRefetchMs) {
        await refresh();
        key = keys?.get(kid);
      }
      return key;
    },
  };
}

type Jose = typeof import('jose');
/** What jose's `jwtVerify` accepts as a key. */
export type VerificationKey = Awaited<ReturnType<Jose['importJWK']>>;
export type RsaKeyImporter = (jwk: BotJwk, alg: string) => Promise<VerificationKey>;

/** Plenty for the few keys a JWKS publishes times the allowed algorithms, across rotations. */
const MAX_IMPORTED_KEYS = 64;

/**
 * Imports a published RSA signing key for jose, and caches the result: importing is the costly
 * part of a warm verification.
 *
 * The cache key is the algorithm plus the key material (`n`, `e`), never the `kid` alone. A
 * publisher may reuse a kid for new material; a kid-keyed cache would keep verifying with the old,
 * possibly retired or compromised, key after the JWKS changed (security review). The cache is
 * bounded, and a failed import is not cached. jose is loaded on first use, not at start-up.
 */
export function createRsaKeyImporter(): RsaKeyImporter {
  const imported = new Map<string, Promise<VerificationKey>>();
  return (jwk, alg) => {
    if (jwk.kty !== 'RSA') throw new AuthError('AUTH_INVALID', 'signing key is not an RSA key');
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string' || jwk.n === '' || jwk.e === '')
      throw new AuthError('AUTH_INVALID', 'signing key has no RSA modulus or exponent');
    if (jwk.use !== undefined && jwk.use !== 'sig')
      throw new AuthError('AUTH_INVALID', 'signing key is not published for signatures');
    const cacheKey = `${alg}\u0000${jwk.e}\u0000${jwk.n}`;
    let key = imported.get(cacheKey);
    if (key === undefined) {
      if (imported.size >= MAX_IMPORTED_KEYS) imported.clear();
      const { n, e } = jwk;
      const pending = import('jose').then(({ importJWK }) => importJWK({ kty: 'RSA', n, e }, alg));
      imported.set(cacheKey, pending);
      // A failed import is not cached: the next token with this key tries again. (Any newer entry for
      // the same key and algorithm would fail the same way, so it can go too.)
      pending.catch(() => imported.delete(cacheKey));
      key = pending;
    }
    return key;
  };
}
