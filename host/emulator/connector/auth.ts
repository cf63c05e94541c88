/**
 * The bot's bearer token (§2.1: "Authorization: Bearer ACCESS_TOKEN"), checked as the Bot Connector
 * does: an RS256 token signed by the Entra stub, for the Bot Framework audience, issued to a
 * registered bot.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';

export interface ConnectorAuthOptions {
  /** Keys that sign valid bot tokens (the Entra stub's `jwks()`); a function is re-read per request. */
  readonly jwks: JSONWebKeySet | (() => JSONWebKeySet);
  /** Accepted `aud` values; default `https://api.botframework.com`. */
  readonly audiences?: readonly string[];
  /** Accepted `appid`/`azp` values; default any. */
  readonly appIds?: readonly string[];
}

/** The 401 body, the same whatever was wrong (the reason is only recorded). */
export const DENIED = { message: 'Authorization has been denied for this request.' };

export type BearerCheck =
  | { readonly ok: true; readonly claims: JWTPayload; readonly appId?: string }
  | { readonly ok: false; readonly reason: string };

export async function checkBearerToken(
  authorization: string | undefined,
  auth: ConnectorAuthOptions,
): Promise<BearerCheck> {
  const match = /^Bearer (\S+)$/.exec(authorization ?? '');
  if (!match?.[1])
    return { ok: false, reason: authorization === undefined ? 'missing Authorization header' : 'not a Bearer token' };
  try {
    const jwks = typeof auth.jwks === 'function' ? auth.jwks() : auth.jwks;
    const { payload } = await jwtVerify(match[1], createLocalJWKSet(jwks), {
      audience: [...(auth.audiences ?? ['https://api.botframework.com'])],
      algorithms: ['RS256'],
      clockTolerance: 300,
    });
    const appId =
      typeof payload.appid === 'string' ? payload.appid : typeof payload.azp === 'string' ? payload.azp : undefined;
    if (auth.appIds && (appId === undefined || !auth.appIds.includes(appId)))
      throw new Error(`appid ${appId ?? '(none)'} is not a registered bot`);
    return { ok: true, claims: payload, ...(appId !== undefined ? { appId } : {}) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
