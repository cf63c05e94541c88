/**
 * Verifies the Entra ID access token a flow caller presents to `/api/notify`: a Logic App or Power
 * Automate flow with a managed identity, or an app registration using client credentials, calling
 * with a token for this app's API (e.g. scope `api://teams-courier/.default`).
 *
 * What is accepted, and why, is docs/authentication.md "Callers of /api/notify". In short:
 * - RS256 only, with a key from the one tenant's OpenID metadata
 *   (`{authorityHost}/{tenantId}/v2.0/.well-known/openid-configuration`, see `callerMetadataUrl`);
 * - `iss` exactly that tenant's v2 issuer, or its v1 issuer (`entraIssuers`); never a pattern, and
 *   the tenant comes from configuration, never from the token;
 * - `aud` one of the configured audiences; `tid` the configured tenant; `exp` and `nbf` required,
 *   with 5 minutes of clock skew; `ver` matching the issuer's form;
 * - `oid` required (the caller's service principal or managed identity);
 * - app-only tokens only: a token with `scp`, or with an `idtyp` other than `app`, is a delegated
 *   (user) token and is refused. Callers are authorized by `oid` or `appid`/`azp`, and Entra's
 *   guidance is that `appid`/`azp` may be used that way only on app-only tokens.
 *
 * Verification proves who is calling, not that they may: the caller of `verify` must still match
 * the identity against its allow-list. Errors never contain the token.
 */
import type { JWTPayload } from 'jose';
import { AuthError, ConfigError } from '../errors';
import { createRsaKeyImporter, type OpenIdKeyCache } from './openIdKeys';
import { describeJoseError } from './verifyChannelToken';

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));

/** GUIDs are lower-case. */
export interface CallerIdentity {
  /** `oid`: the object id of the caller's service principal or managed identity in the tenant. */
  readonly objectId: string;
  /** `appid` (v1 tokens) or `azp` (v2 tokens): the caller's application (client) id. */
  readonly appId?: string;
  /** `tid`, always the configured tenant. */
  readonly tenantId: string;
}

export interface CallerTokenVerifier {
  /**
   * Throws AuthError `AUTH_MISSING` (no usable header) or `AUTH_INVALID` (any failed check), with a
   * loggable reason; a CourierError `AUTH_METADATA_UNAVAILABLE` when no keys could be fetched.
   */
  verify(authorization: string | undefined): Promise<CallerIdentity>;
}

export interface CallerTokenVerifierOptions {
  /** The one tenant (a GUID) whose tokens are accepted. */
  readonly tenantId: string;
  /**
   * Accepted `aud` values: the API's Application ID URI (what v1 tokens carry when requested by
   * URI, e.g. `api://teams-courier`) and/or its client id (what v2 tokens always carry).
   */
  readonly audiences: readonly string[];
  /** The Entra authority host, e.g. `https://login.microsoftonline.com`; a trailing slash is ignored. */
  readonly authorityHost: string;
  /** Key cache on `callerMetadataUrl(authorityHost, tenantId)`. */
  readonly keys: OpenIdKeyCache;
  /** Clock skew allowed on `exp` and `nbf`, in seconds; default 300. */
  readonly clockToleranceSeconds?: number;
  /** The current time; for tests. */
  readonly currentDate?: () => Date;
}

export const CALLER_ALGORITHMS = Object.freeze(['RS256']);
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5 * 60;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Entra clouds by authority host (aliases included): the host of v2 issuers, and the v1 issuer
 * hosts. Sources: learn.microsoft.com/entra/identity-platform/authentication-national-cloud (hosts);
 * v1 issuers as below.
 */
const ENTRA_CLOUDS: readonly {
  readonly hosts: readonly string[];
  readonly v2Host: string;
  readonly v1Hosts: readonly string[];
}[] = [
  {
    hosts: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
    v2Host: 'login.microsoftonline.com',
    v1Hosts: ['sts.windows.net'],
  },
  // US Government (GCC High, DoD). Sources disagree on the v1 issuer: botbuilder's
  // ValidGovernmentTokenIssuerUrlTemplateV1 is `https://login.microsoftonline.us/`, a Microsoft Q&A
  // answer (learn.microsoft.com/answers/questions/1190472) says `https://sts.windows.net`.
  // Microsoft.IdentityModel's AadIssuerValidator reads it from the tenant's v1 metadata instead of
  // hard-coding it. Both exact strings are accepted: the tenant is fixed and the keys come from the
  // US Government authority, so the host part adds no trust either way.
  {
    hosts: ['login.microsoftonline.us', 'login.usgovcloudapi.net'],
    v2Host: 'login.microsoftonline.us',
    v1Hosts: ['login.microsoftonline.us', 'sts.windows.net'],
  },
  {
    hosts: ['login.partner.microsoftonline.cn', 'login.chinacloudapi.cn'],
    v2Host: 'login.partner.microsoftonline.cn',
    v1Hosts: ['sts.chinacloudapi.cn'],
  },
];

function authorityOrigin(authorityHost: string): URL {
  let url: URL;
  try {
    url = new URL(authorityHost);
  } catch {
    throw new ConfigError([{ path: 'authorityHost', message: 'must be an https URL' }]);
  }
  if (
    url.protocol !== 'https:' ||
    // An https URL's path is never empty: `https://host` reads as `/`.
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== ''
  ) {
    throw new ConfigError([
      {
        path: 'authorityHost',
        message: 'must be an https origin without a path, e.g. https://login.microsoftonline.com',
      },
    ]);
  }
  return url;
}

/** The OpenID metadata whose `jwks_uri` signs the tenant's tokens (v1 and v2 alike). */
export function callerMetadataUrl(authorityHost: string, tenantId: string): string {
  return `${authorityOrigin(authorityHost).origin}/${tenantId.toLowerCase()}/v2.0/.well-known/openid-configuration`;
}

/**
 * The exact issuers of the tenant's access tokens. v2: `{authority}/{tenant}/v2.0`. v1: per cloud
 * (`https://sts.windows.net/{tenant}/` in the public cloud). An authority host that is not one of
 * Entra's (a local emulator or test stub) is treated like the public cloud for v1 tokens, which is
 * what such stand-ins imitate.
 */
export function entraIssuers(
  authorityHost: string,
  tenantId: string,
): { readonly v2: string; readonly v1: readonly string[] } {
  const origin = authorityOrigin(authorityHost);
  const tid = tenantId.toLowerCase();
  const cloud = ENTRA_CLOUDS.find((c) => c.hosts.includes(origin.hostname.toLowerCase()));
  const v2Origin = cloud === undefined ? origin.origin : `https://${cloud.v2Host}`;
  return {
    v2: `${v2Origin}/${tid}/v2.0`,
    v1: (cloud?.v1Hosts ?? ['sts.windows.net']).map((host) => `https://${host}/${tid}/`),
  };
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '')
    throw new AuthError('AUTH_INVALID', `claim "${name}" is not a non-empty string`);
  return value;
}

/** The checks jose does not do: tenant, token version, subject, and "app-only". */
function toIdentity(payload: JWTPayload, tenantId: string, v2Issuer: string): CallerIdentity {
  const tid = stringClaim(payload, 'tid');
  if (tid?.toLowerCase() !== tenantId) throw new AuthError('AUTH_INVALID', 'claim "tid" is not the configured tenant');

  const isV2 = payload.iss === v2Issuer;
  const ver = stringClaim(payload, 'ver');
  if (ver !== (isV2 ? '2.0' : '1.0'))
    throw new AuthError('AUTH_INVALID', `claim "ver" does not match a ${isV2 ? 'v2' : 'v1'} issuer`);

  // Delegated (user + app) tokens carry `scp`; app-only tokens never do (access-token-claims-reference:
  // `scp` is "only included for user tokens"). `idtyp` is an optional claim: when the API asks for
  // it, it must say `app`.
  if (payload.scp !== undefined)
    throw new AuthError('AUTH_INVALID', 'delegated (user) token: only app-only tokens are accepted');
  const idtyp = stringClaim(payload, 'idtyp');
  if (idtyp !== undefined && idtyp !== 'app')
    throw new AuthError('AUTH_INVALID', `claim "idtyp" is "${idtyp.slice(0, 16)}": only app-only tokens are accepted`);

  const oid = stringClaim(payload, 'oid');
  if (oid === undefined) throw new AuthError('AUTH_INVALID', 'token has no "oid" claim');
  if (!GUID.test(oid)) throw new AuthError('AUTH_INVALID', 'claim "oid" is not a GUID');

  const appId = stringClaim(payload, isV2 ? 'azp' : 'appid');
  // GUIDs are returned lower-case (Entra writes them so), for exact matching against configuration.
  return { objectId: oid.toLowerCase(), ...(appId === undefined ? {} : { appId: appId.toLowerCase() }), tenantId };
}

export function createCallerTokenVerifier(options: CallerTokenVerifierOptions): CallerTokenVerifier {
  if (!GUID.test(options.tenantId))
    throw new ConfigError([{ path: 'tenantId', message: 'must be a tenant id (a GUID)' }]);
  const audiences = options.audiences.map((a) => a.trim()).filter((a) => a !== '');
  if (audiences.length === 0)
    throw new ConfigError([{ path: 'audiences', message: 'must name at least one audience' }]);
  const tenantId = options.tenantId.toLowerCase();
  const issuers = entraIssuers(options.authorityHost, tenantId);
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const importKey = createRsaKeyImporter();

  return {
    async verify(authorization) {
      const value = authorization?.trim() ?? '';
      if (value === '') throw new AuthError('AUTH_MISSING', 'no Authorization header');
      // The scheme is case-insensitive (RFC 9110 §11.1); Logic Apps and Power Automate send "Bearer".
      const parts = value.split(/\s+/);
      if (parts.length !== 2 || parts[0]?.toLowerCase() !== 'bearer' || parts[1] === undefined) {
        throw new AuthError('AUTH_MISSING', 'Authorization header is not "Bearer <token>"');
      }
      const jwt = parts[1];
      const lib = await loadJose();
      try {
        const { payload } = await lib.jwtVerify(
          jwt,
          async (header) => {
            if (typeof header.kid !== 'string') throw new AuthError('AUTH_INVALID', 'token header has no kid');
            // Stryker disable next-line ConditionalExpression: equivalent, jose refuses an alg outside `algorithms` (the same list) before it calls this resolver
            if (!CALLER_ALGORITHMS.includes(header.alg))
              // Stryker disable next-line StringLiteral,MethodExpression: unreachable, jose has refused any such alg already
              throw new AuthError('AUTH_INVALID', `signing algorithm "${String(header.alg).slice(0, 16)}" not allowed`);
            const jwk = await options.keys.getKey(header.kid);
            if (jwk === undefined) throw new AuthError('AUTH_INVALID', 'token signed with an unknown key id');
            return importKey(jwk, header.alg);
          },
          {
            issuer: [issuers.v2, ...issuers.v1],
            audience: audiences,
            algorithms: [...CALLER_ALGORITHMS],
            clockTolerance,
            requiredClaims: ['exp', 'nbf'],
            ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate() }),
          },
        );
        return toIdentity(payload, tenantId, issuers.v2);
      } catch (err) {
        if (err instanceof AuthError) throw err;
        if (err instanceof Error && 'code' in err && err.code === 'AUTH_METADATA_UNAVAILABLE') throw err;
        throw new AuthError('AUTH_INVALID', describeJoseError(err, lib), { cause: err });
      }
    },
  };
}
