/**
 * The channel's signing keys, fetched from the OpenID metadata document's `jwks_uri` and cached per
 * process. The raw JWKS is kept because the Bot Framework adds a non-standard `endorsements` array to
 * each key, which generic JWKS helpers (jose's createRemoteJWKSet) drop (bot-connector.md §1.3).
 *
 * Policy (bot-connector.md §1.4): refresh at least every 24 hours; on an unknown `kid`, refetch at
 * most once per `unknownKidRefetchMs`; concurrent callers share one fetch; when a refresh fails and
 * keys are cached, keep serving the cached keys. No network call per request once warm.
 */
import { CourierError } from '../errors';

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

/**
 * GET a small JSON document (OpenID metadata, JWKS) with a timeout and a size cap. Uses Node's
 * built-in fetch: the inbound path needs no HTTP client package, which keeps cold starts short.
 */
export async function fetchJsonDocument(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(METADATA_TIMEOUT_MS), headers: { accept: 'application/json' } });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`GET ${url} answered ${response.status}`);
  }
  const text = await response.text();
  if (text.length > METADATA_MAX_BYTES) throw new Error(`GET ${url} returned more than ${METADATA_MAX_BYTES} bytes`);
  return JSON.parse(text) as unknown;
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
      if (isRecord(key) && typeof key.kid === 'string' && typeof key.kty === 'string') result.set(key.kid, key as BotJwk);
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
        if (keys === undefined) throw err instanceof CourierError ? err : metadataError('OpenID metadata or keys could not be fetched', err);
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
