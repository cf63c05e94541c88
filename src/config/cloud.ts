/**
 * BOT_CLOUD and the endpoint overrides: the cloud's frozen preset (src/clouds.ts), then each
 * endpoint a setting may replace (sovereign clouds, tests), and the extra trusted origins.
 */
import { CLOUDS, GCC_GLOBAL_SERVICE_URL, isCloudName, type CloudName, type CloudPreset } from '../clouds';
import type { Problem } from '../errors';
import { parseHttpsUrl, parseTrustedOrigins, read, type Env } from './parsers';

/** BOT_CLOUD; an unknown name is a problem, and the public cloud stands in meanwhile. */
export function loadCloud(env: Env, problems: Problem[]): CloudPreset {
  const cloudRaw = (read(env, 'BOT_CLOUD') ?? 'public').toLowerCase();
  let cloudName: CloudName = 'public';
  if (isCloudName(cloudRaw)) cloudName = cloudRaw;
  else problems.push({ path: 'BOT_CLOUD', message: `must be one of public, gcc, gcchigh, dod (got "${cloudRaw}")` });
  return CLOUDS[cloudName];
}

export interface Endpoints {
  /** Undefined only when there are problems. */
  readonly openIdMetadataUrl: string | undefined;
  readonly authorityHost: string | undefined;
  readonly authorityOverridden: boolean;
  readonly oauthScope: string;
  readonly globalServiceUrl: string | undefined;
  /** Where to retry after 403 InvalidBotApiHost; none in the US gov clouds. */
  readonly gccServiceUrl?: string;
  /** BOT_TRUSTED_SERVICE_URLS, normalised to `scheme://host[:port]`. */
  readonly trustedOrigins: string[];
}

/** The cloud's endpoints with the overrides applied. */
export function loadEndpoints(env: Env, cloud: CloudPreset, problems: Problem[]): Endpoints {
  const metadataOverride = read(env, 'BOT_OPENID_METADATA_URL');
  const openIdMetadataUrl =
    metadataOverride === undefined
      ? cloud.openIdMetadataUrl
      : parseHttpsUrl(metadataOverride, 'BOT_OPENID_METADATA_URL', problems);

  const authorityOverride = read(env, 'BOT_AUTHORITY_HOST');
  const authorityHost =
    authorityOverride === undefined
      ? cloud.authorityHost
      : parseHttpsUrl(authorityOverride, 'BOT_AUTHORITY_HOST', problems);

  const globalOverride = read(env, 'BOT_GLOBAL_SERVICE_URL');
  const globalServiceUrl =
    globalOverride === undefined
      ? cloud.globalServiceUrl
      : parseHttpsUrl(globalOverride, 'BOT_GLOBAL_SERVICE_URL', problems);

  const trustedOrigins = parseTrustedOrigins(read(env, 'BOT_TRUSTED_SERVICE_URLS'), problems);

  return {
    openIdMetadataUrl,
    authorityHost,
    authorityOverridden: authorityOverride !== undefined,
    oauthScope: read(env, 'BOT_OAUTH_SCOPE') ?? cloud.oauthScope,
    globalServiceUrl,
    // The GCC retry is a public-cloud recovery; a US gov cloud never sends the token there.
    ...(cloud.trustedServiceHosts.includes(new URL(GCC_GLOBAL_SERVICE_URL).hostname)
      ? { gccServiceUrl: GCC_GLOBAL_SERVICE_URL }
      : {}),
    trustedOrigins,
  };
}
