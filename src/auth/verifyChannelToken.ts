/**
 * Verifies the JWT the Bot Connector sends with every activity (channel -> bot). There is no switch
 * to turn this off: "Implementers shouldn't expose a way to disable validation" (bot-connector.md §1.2).
 *
 * Checks, each from bot-connector.md §1 / docs/authentication.md:
 * 1. `Authorization: Bearer <jwt>`; 2. a well-formed JWS; 3. `iss` is the cloud's Bot Framework
 * issuer; 4. `aud` is MicrosoftAppId; 5. `exp` and `nbf`, both required, with 5 minutes of clock
 * skew; 6. the signature verifies with an RSA key from the OpenID metadata's JWKS using
 * RS256/RS384/RS512; then, once the body is parsed: 7. the key's `endorsements` contain the
 * activity's channelId (else 403); 8. the `serviceurl` claim equals the activity's serviceUrl, a
 * trailing slash aside.
 *
 * A `cty: "JWT"` header is legal (§1.5); jose does not reject it.
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
/** jose is loaded on the first verification, not at start-up: cold starts load only what a path uses. */
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));
import { AuthError } from '../errors';
import { createRsaKeyImporter, type BotJwk, type OpenIdKeyCache } from './openIdKeys';

export const ALLOWED_ALGORITHMS = Object.freeze(['RS256', 'RS384', 'RS512']);
export const CLOCK_TOLERANCE_SECONDS = 5 * 60;

export interface ChannelTokenVerifierOptions {
  readonly appId: string;
  readonly issuer: string;
  readonly keys: OpenIdKeyCache;
  /** Seconds since the epoch; for tests. */
  readonly currentDate?: () => Date;
}

export interface VerifiedChannelToken {
  readonly claims: JWTPayload;
  readonly header: JWTHeaderParameters;
  /** The JWK that signed the token (with its endorsements). */
  readonly key: BotJwk;
}

export interface ChannelTokenVerifier {
  /** Checks 1-6. Throws AuthError (401) with a loggable reason; never includes the token. */
  verify(authorization: string | null | undefined): Promise<VerifiedChannelToken>;
}

/**
 * Checks 7-8, which need the activity. Throws AuthError (403 endorsement, 401 serviceurl).
 *
 * The endorsement check is stricter than botbuilder's EndorsementsValidator, which lets an activity
 * without a channelId pass and skips keys without endorsements: here the signing key must carry an
 * `endorsements` array that contains the activity's (non-empty) channelId, as [BC] Step 3 and
 * docs/authentication.md check 9 say. Every key the Bot Framework publishes carries endorsements.
 */
export function assertActivityMatchesToken(
  token: VerifiedChannelToken,
  activity: { channelId: string; serviceUrl: string },
): void {
  const endorsements: unknown = token.key.endorsements;
  if (activity.channelId === '')
    throw new AuthError(
      'AUTH_ENDORSEMENT',
      "activity has no channelId to check the signing key's endorsements against",
    );
  if (!Array.isArray(endorsements) || !endorsements.includes(activity.channelId)) {
    throw new AuthError('AUTH_ENDORSEMENT', `signing key is not endorsed for channel "${activity.channelId}"`);
  }
  const claim = token.claims.serviceurl;
  if (typeof claim !== 'string' || claim === '') throw new AuthError('AUTH_INVALID', 'token has no serviceurl claim');
  if (stripTrailingSlash(claim) !== stripTrailingSlash(activity.serviceUrl)) {
    throw new AuthError('AUTH_INVALID', 'serviceurl claim does not match the activity serviceUrl');
  }
}

function stripTrailingSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

/** A loggable reason for a jose verification error (never contains the token). */
export function describeJoseError(err: unknown, { errors: joseErrors }: Jose): string {
  if (err instanceof joseErrors.JWTExpired) return 'token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim "${err.claim}" failed: ${err.reason}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'signing algorithm not allowed';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'token is malformed';
  if (err instanceof joseErrors.JOSENotSupported) return 'token uses an unsupported algorithm or key';
  return 'token could not be verified';
}

const ENTRA_ISSUER = /^https:\/\/(sts\.windows\.net|login\.microsoftonline\.(com|us))\//;

/** The unverified issuer when it is an Entra one (for the log reason only; never trusted). */
function entraIssuerOf(jwt: string, { decodeJwt }: Jose): string | undefined {
  let iss: unknown;
  try {
    iss = decodeJwt(jwt).iss;
  } catch {
    // Not even a JWT: no issuer to name.
  }
  return typeof iss === 'string' && ENTRA_ISSUER.test(iss) ? new URL(iss).origin : undefined;
}

export function createChannelTokenVerifier(options: ChannelTokenVerifierOptions): ChannelTokenVerifier {
  // Cached by key material, not by kid: a kid reused for a new key must not verify with the old one.
  const importKey = createRsaKeyImporter();

  return {
    async verify(authorization) {
      if (authorization === null || authorization === undefined || authorization.trim() === '') {
        throw new AuthError('AUTH_MISSING', 'no Authorization header');
      }
      const parts = authorization.trim().split(/\s+/);
      if (parts.length !== 2 || parts[0] !== 'Bearer' || parts[1] === undefined) {
        throw new AuthError('AUTH_MISSING', 'Authorization header is not "Bearer <token>"');
      }
      const jwt = parts[1];
      const lib = await loadJose();
      const { jwtVerify } = lib;

      let signingKey: BotJwk | undefined;
      try {
        const { payload, protectedHeader } = await jwtVerify(
          jwt,
          async (header) => {
            if (typeof header.kid !== 'string') throw new AuthError('AUTH_INVALID', 'token header has no kid');
            // Stryker disable next-line ConditionalExpression: equivalent, jose refuses an alg outside `algorithms` (the same list) before it calls this resolver
            if (!ALLOWED_ALGORITHMS.includes(header.alg))
              // Stryker disable next-line StringLiteral: unreachable, jose has refused any such alg already
              throw new AuthError('AUTH_INVALID', `signing algorithm "${header.alg}" not allowed`);
            const jwk = await options.keys.getKey(header.kid);
            if (jwk === undefined) throw new AuthError('AUTH_INVALID', 'token signed with an unknown key id');
            const key = await importKey(jwk, header.alg);
            signingKey = jwk;
            return key;
          },
          {
            issuer: options.issuer,
            audience: options.appId,
            algorithms: [...ALLOWED_ALGORITHMS],
            clockTolerance: CLOCK_TOLERANCE_SECONDS,
            // docs/authentication.md check 8: both are required ([BC] req. 5); jose rejects a
            // present `exp`/`nbf` that is not a number.
            requiredClaims: ['exp', 'nbf'],
            ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate() }),
          },
        );
        // Stryker disable next-line StringLiteral: unreachable, jwtVerify resolves only after the resolver set signingKey
        if (signingKey === undefined) throw new AuthError('AUTH_INVALID', 'no signing key resolved');
        return { claims: payload, header: protectedHeader, key: signingKey };
      } catch (err) {
        const entra = entraIssuerOf(jwt, lib);
        if (entra !== undefined) {
          // docs/authentication.md: Entra-issued tokens are not accepted on the channel path.
          throw new AuthError(
            'AUTH_INVALID',
            `entra_issuer: token issued by ${entra} is not accepted (only ${options.issuer}); see docs/authentication.md`,
            { cause: err },
          );
        }
        if (err instanceof AuthError) throw err;
        if (err instanceof Error && 'code' in err && err.code === 'AUTH_METADATA_UNAVAILABLE') throw err;
        throw new AuthError('AUTH_INVALID', describeJoseError(err, lib), { cause: err });
      }
    },
  };
}
