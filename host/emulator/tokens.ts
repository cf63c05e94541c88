/**
 * A local Bot Framework token issuer: the keys behind the emulator's OpenID metadata and a minter
 * of channel -> bot tokens shaped like the ones Teams sends (bot-connector.md §1).
 *
 * Every check in §1.2 / §1.3 can be violated on its own through `mintChannelToken` options, so the
 * app's validator can be tested one rule at a time:
 *   wrong iss          -> { issuer: 'https://sts.windows.net/x/' }
 *   wrong aud          -> { audience: 'someone-else' }
 *   expired            -> { expiresInSeconds: -600 } (beyond the 5 minute skew of §1.2 #5)
 *   nbf in the future  -> { notBefore: nowSeconds() + 900 }
 *   bad signature      -> { key: await generateSigningKey(), kid: issuer.currentKey.kid } (unpublished key, published kid)
 *   unknown kid        -> { kid: 'no-such-kid' } (or a key created with issuer.createUnpublishedKey())
 *   alg not allowed    -> { alg: 'HS256' | 'PS256' | 'RS384' | 'none' }
 *   no endorsement     -> { key: await issuer.addKey({ endorsements: ['skype'] }) }
 *   serviceurl mismatch-> { serviceUrl: 'https://elsewhere.example/' } while the activity says otherwise
 *   cty: JWT header    -> { extraHeader: { cty: 'JWT' } } (§1.5: must be accepted)
 */
import { randomBytes } from 'node:crypto';
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
} from 'jose';

/** Channel -> bot issuer in the public cloud (§1.1). */
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';
/** Teams' channel id; the endorsement a key must carry for Teams activities (§1.3). */
export const TEAMS_CHANNEL_ID = 'msteams';
/** Observed Teams tokens live for exactly one hour (§1.2, `exp - nbf = 3600`). */
export const CHANNEL_TOKEN_LIFETIME_SECONDS = 3600;

export type TokenAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'HS256' | 'none';

/** A JWK as published at /v1/.well-known/keys, with the non-standard `endorsements` member (§1.3). */
export interface PublishedJwk extends JWK {
  kty: 'RSA';
  kid: string;
  use: 'sig';
  n: string;
  e: string;
  x5t: string;
  endorsements: string[];
}

export interface PublishedJwks extends JSONWebKeySet {
  keys: PublishedJwk[];
}

export interface SigningKey {
  readonly kid: string;
  /** RS256 signing key. */
  readonly privateKey: CryptoKey;
  /** Exported private JWK: re-imported for the RS384/RS512/PS256 variants. */
  readonly privateJwk: JWK;
  readonly publicJwk: PublishedJwk;
}

export interface GenerateSigningKeyOptions {
  /** Defaults to the RFC 7638 thumbprint of the public key. */
  readonly kid?: string;
  /** Defaults to `['msteams']`. Pass `[]` or `['skype']` for a key that fails the Teams endorsement check. */
  readonly endorsements?: readonly string[];
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export async function generateSigningKey(options: GenerateSigningKeyOptions = {}): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const pub = await exportJWK(publicKey);
  const kid = options.kid ?? (await calculateJwkThumbprint(pub));
  if (pub.n === undefined || pub.e === undefined) throw new Error('RSA public JWK without n/e');
  const publicJwk: PublishedJwk = {
    kty: 'RSA',
    use: 'sig',
    kid,
    // Real keys carry x5t (certificate thumbprint); there is no certificate here, so reuse the kid.
    x5t: kid,
    n: pub.n,
    e: pub.e,
    endorsements: [...(options.endorsements ?? [TEAMS_CHANNEL_ID])],
  };
  return { kid, privateKey, privateJwk: await exportJWK(privateKey), publicJwk };
}

export interface MintChannelTokenOptions {
  /** The bot's app id: the default audience (§1.2 #4). */
  readonly appId: string;
  /** Goes into the lower-case `serviceurl` claim (§1.2 #7); must equal activity.serviceUrl exactly. */
  readonly serviceUrl: string;
  /** Default `https://api.botframework.com`. */
  readonly issuer?: string;
  /** Default `appId`. */
  readonly audience?: string | string[];
  /** Lifetime from `now`; default 3600. Negative gives an already expired token. */
  readonly expiresInSeconds?: number;
  /** Absolute `nbf` (epoch seconds); default `now`. */
  readonly notBefore?: number;
  /** Epoch seconds the token is minted "at"; default the current time. */
  readonly now?: number;
  /** Header `kid`; default the signing key's kid; `null` leaves it out. */
  readonly kid?: string | null;
  /** Default RS256. HS256 signs with `hmacSecret`; `none` produces an unsigned token. */
  readonly alg?: TokenAlg;
  /** Added to (or overriding) the protected header, e.g. `{ cty: 'JWT', x5t: '...' }` (§1.5). */
  readonly extraHeader?: Record<string, unknown>;
  /** Added to (or overriding) the claims; a value of `undefined` removes that claim. */
  readonly claims?: Record<string, unknown>;
  /** The key to sign with; default the issuer's current key. */
  readonly key?: SigningKey;
  /** Secret for HS256; default 32 random bytes. */
  readonly hmacSecret?: Uint8Array;
}

/** Signs a Bot-Framework-shaped channel -> bot token (claims as observed in §1.2: no `tid`, no `iat`). */
export async function mintChannelToken(
  options: MintChannelTokenOptions & { readonly key: SigningKey },
): Promise<string> {
  const now = options.now ?? nowSeconds();
  const payload: Record<string, unknown> = {
    serviceurl: options.serviceUrl,
    nbf: options.notBefore ?? now,
    exp: now + (options.expiresInSeconds ?? CHANNEL_TOKEN_LIFETIME_SECONDS),
    iss: options.issuer ?? BOT_FRAMEWORK_ISSUER,
    aud: options.audience ?? options.appId,
  };
  for (const [name, value] of Object.entries(options.claims ?? {})) {
    if (value === undefined) delete payload[name];
    else payload[name] = value;
  }
  const alg = options.alg ?? 'RS256';
  const kid = options.kid === undefined ? options.key.kid : options.kid;
  const header: Record<string, unknown> = { alg, typ: 'JWT', ...(kid === null ? {} : { kid }), ...options.extraHeader };
  header.alg = alg;

  if (alg === 'none') {
    const encode = (value: unknown): string => base64url.encode(JSON.stringify(value));
    return `${encode(header)}.${encode(payload)}.`;
  }
  let signingKey: CryptoKey | Uint8Array;
  if (alg === 'HS256') {
    signingKey = options.hmacSecret ?? new Uint8Array(randomBytes(32));
  } else if (alg === 'RS256') {
    signingKey = options.key.privateKey;
  } else {
    // A WebCrypto key is bound to one algorithm; re-import the same RSA key for RS384/RS512/PS256.
    const { alg: _alg, key_ops: _ops, ext: _ext, ...jwk } = options.key.privateJwk;
    signingKey = (await importJWK(jwk, alg)) as CryptoKey;
  }
  return new SignJWT(payload).setProtectedHeader(header as JWTHeaderParameters).sign(signingKey);
}

export interface ChannelTokenIssuerOptions {
  /** `iss` of minted tokens and of the metadata document; default `https://api.botframework.com`. */
  readonly issuer?: string;
  /** Endorsements of the initial key; default `['msteams']`. */
  readonly endorsements?: readonly string[];
}

/**
 * The published key set plus a "current" signing key. Keys can be added and removed at runtime
 * to exercise the app's refresh rules (§1.4: scheduled refresh, re-download on unknown kid).
 */
export class ChannelTokenIssuer {
  readonly issuer: string;
  private readonly published: SigningKey[] = [];
  private current: SigningKey;

  private constructor(issuer: string, first: SigningKey) {
    this.issuer = issuer;
    this.current = first;
    this.published.push(first);
  }

  static async create(options: ChannelTokenIssuerOptions = {}): Promise<ChannelTokenIssuer> {
    const first = await generateSigningKey({ ...(options.endorsements ? { endorsements: options.endorsements } : {}) });
    return new ChannelTokenIssuer(options.issuer ?? BOT_FRAMEWORK_ISSUER, first);
  }

  /** The key `mintChannelToken` signs with by default. */
  get currentKey(): SigningKey {
    return this.current;
  }

  get keys(): readonly SigningKey[] {
    return this.published;
  }

  /** The keys document served at /v1/.well-known/keys (a fresh copy each call). */
  jwks(): PublishedJwks {
    return { keys: this.published.map((k) => structuredClone(k.publicJwk)) };
  }

  /** Generates and publishes a key. `makeCurrent` (default false) also signs with it from now on. */
  async addKey(options: GenerateSigningKeyOptions & { readonly makeCurrent?: boolean } = {}): Promise<SigningKey> {
    const key = await generateSigningKey(options);
    this.publishKey(key, options.makeCurrent ?? false);
    return key;
  }

  /** Publishes an existing key (e.g. one created unpublished to test "refetch on unknown kid"). */
  publishKey(key: SigningKey, makeCurrent = false): void {
    if (!this.published.some((k) => k.kid === key.kid)) this.published.push(key);
    if (makeCurrent) this.current = key;
  }

  /** A key that is NOT in the keys document (bad signature / unknown kid). */
  createUnpublishedKey(options: GenerateSigningKeyOptions = {}): Promise<SigningKey> {
    return generateSigningKey(options);
  }

  /** Unpublishes a key. If it was current, the first remaining key becomes current. */
  removeKey(kid: string): boolean {
    const index = this.published.findIndex((k) => k.kid === kid);
    if (index < 0) return false;
    this.published.splice(index, 1);
    if (this.current.kid === kid && this.published[0]) this.current = this.published[0];
    return true;
  }

  /** Rotation as Microsoft does it: publish a new key, sign with it, keep the old one published. */
  rotate(options: GenerateSigningKeyOptions = {}): Promise<SigningKey> {
    return this.addKey({ ...options, makeCurrent: true });
  }

  mintChannelToken(options: MintChannelTokenOptions): Promise<string> {
    return mintChannelToken({ ...options, issuer: options.issuer ?? this.issuer, key: options.key ?? this.current });
  }
}
