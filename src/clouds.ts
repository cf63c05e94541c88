/**
 * Frozen per-cloud endpoint presets, selected by `BOT_CLOUD`.
 * Sources: ../shared/reference/bot-connector.md §1.1 (inbound metadata and issuers), §2.2 (token
 * authority and scope), §3 (global proactive serviceUrls and the hosts a bot token may be sent to).
 */

export type CloudName = 'public' | 'gcc' | 'gcchigh' | 'dod';

export interface CloudPreset {
  readonly name: CloudName;
  /** OpenID metadata document for channel -> bot tokens. */
  readonly openIdMetadataUrl: string;
  /** Required `iss` of channel -> bot tokens. */
  readonly tokenIssuer: string;
  /** Entra authority host for bot -> connector tokens. */
  readonly authorityHost: string;
  /** Tenant used for MultiTenant bots (the Bot Framework's own tenant in that cloud). */
  readonly multiTenantAuthority: string;
  /** Scope of bot -> connector tokens. */
  readonly oauthScope: string;
  /** Where to create a conversation when no serviceUrl is known for a tenant. */
  readonly globalServiceUrl: string;
  /** Hosts that may receive the bot's token (https only). */
  readonly trustedServiceHosts: readonly string[];
}

// The GCC host is trusted in the public cloud too: Teams answers 403 InvalidBotApiHost for GCC
// tenants called on the public host and the documented fix is to retry on the GCC host (§7).
const PUBLIC_HOSTS = Object.freeze(['smba.trafficmanager.net', 'smba.infra.gcc.teams.microsoft.com']);
const GOV_HOSTS = Object.freeze(['smba.infra.gov.teams.microsoft.us', 'smba.infra.dod.teams.microsoft.us']);

export const GCC_GLOBAL_SERVICE_URL = 'https://smba.infra.gcc.teams.microsoft.com/teams/';

export const CLOUDS: Readonly<Record<CloudName, CloudPreset>> = Object.freeze({
  public: Object.freeze({
    name: 'public',
    openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
    tokenIssuer: 'https://api.botframework.com',
    authorityHost: 'https://login.microsoftonline.com',
    multiTenantAuthority: 'botframework.com',
    oauthScope: 'https://api.botframework.com/.default',
    globalServiceUrl: 'https://smba.trafficmanager.net/teams/',
    trustedServiceHosts: PUBLIC_HOSTS,
  }),
  // GCC Moderate tenants live in global Entra and use the public Bot Framework constants
  // (bot-connector.md §1.1, marked unconfirmed there); only the Teams service host differs.
  gcc: Object.freeze({
    name: 'gcc',
    openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
    tokenIssuer: 'https://api.botframework.com',
    authorityHost: 'https://login.microsoftonline.com',
    multiTenantAuthority: 'botframework.com',
    oauthScope: 'https://api.botframework.com/.default',
    globalServiceUrl: GCC_GLOBAL_SERVICE_URL,
    trustedServiceHosts: PUBLIC_HOSTS,
  }),
  gcchigh: Object.freeze({
    name: 'gcchigh',
    openIdMetadataUrl: 'https://login.botframework.azure.us/v1/.well-known/openidconfiguration',
    tokenIssuer: 'https://api.botframework.us',
    authorityHost: 'https://login.microsoftonline.us',
    multiTenantAuthority: 'MicrosoftServices.onmicrosoft.us',
    oauthScope: 'https://api.botframework.us/.default',
    globalServiceUrl: 'https://smba.infra.gov.teams.microsoft.us/teams/',
    trustedServiceHosts: GOV_HOSTS,
  }),
  dod: Object.freeze({
    name: 'dod',
    openIdMetadataUrl: 'https://login.botframework.azure.us/v1/.well-known/openidconfiguration',
    tokenIssuer: 'https://api.botframework.us',
    authorityHost: 'https://login.microsoftonline.us',
    multiTenantAuthority: 'MicrosoftServices.onmicrosoft.us',
    oauthScope: 'https://api.botframework.us/.default',
    globalServiceUrl: 'https://smba.infra.dod.teams.microsoft.us/teams/',
    trustedServiceHosts: GOV_HOSTS,
  }),
});

export function isCloudName(value: string): value is CloudName {
  return Object.hasOwn(CLOUDS, value);
}
