/**
 * Every app setting teams-courier reads, validated once. `loadConfig(env)` reports all problems in one
 * error that names each bad setting, and returns a frozen object. Nothing else reads `process.env`.
 *
 * `SETTINGS` is the single source of truth for setting names: the README table, the Bicep app
 * settings test and the local host all derive from it.
 */
import { CLOUDS, GCC_GLOBAL_SERVICE_URL, type CloudName, type CloudPreset, isCloudName } from './clouds';
import { CALLER_NAME } from './core/job';
import { ConfigError, type Problem } from './errors';

export type AppType = 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
const APP_TYPES: readonly AppType[] = ['MultiTenant', 'SingleTenant', 'UserAssignedMSI'];

export interface SettingSpec {
  readonly name: string;
  readonly description: string;
  /** Shown in docs; `undefined` means "no default". */
  readonly default?: string;
  /** Never logged, never in a deployment output. */
  readonly secret?: boolean;
  /** Set by the deployment (infra/) in Azure. */
  readonly deployed?: boolean;
}

export const SETTINGS: readonly SettingSpec[] = Object.freeze([
  {
    name: 'MicrosoftAppId',
    description:
      "The bot's app (client) id; for UserAssignedMSI bots the managed identity's client id. Inbound tokens must have it as audience.",
    deployed: true,
  },
  {
    name: 'MicrosoftAppType',
    description: '`MultiTenant`, `SingleTenant` or `UserAssignedMSI`.',
    default: 'MultiTenant',
    deployed: true,
  },
  {
    name: 'MicrosoftAppTenantId',
    description: "The bot's home tenant. Required for SingleTenant and UserAssignedMSI.",
    deployed: true,
  },
  {
    name: 'MicrosoftAppPassword',
    description:
      'Client secret (MultiTenant / SingleTenant). In Azure, a Key Vault reference. Must not be set for UserAssignedMSI.',
    secret: true,
    deployed: true,
  },
  {
    name: 'BOT_CERTIFICATE',
    description:
      'Client certificate instead of a secret: a PEM file path, or the PEM text (certificate and private key).',
    secret: true,
  },
  {
    name: 'BOT_CLOUD',
    description: 'Endpoint presets: `public`, `gcc`, `gcchigh` or `dod`.',
    default: 'public',
    deployed: true,
  },
  {
    name: 'BOT_OPENID_METADATA_URL',
    description:
      'Overrides the OpenID metadata document that inbound tokens are checked against (sovereign clouds, tests).',
  },
  {
    name: 'BOT_AUTHORITY_HOST',
    description:
      'Overrides the Entra authority host for outbound tokens; with it, instance discovery is off (tests, unusual clouds).',
  },
  { name: 'BOT_OAUTH_SCOPE', description: 'Overrides the scope of outbound tokens.' },
  {
    name: 'BOT_TRUSTED_SERVICE_URLS',
    description: "Comma-separated extra origins that may receive the bot's token (a trailing slash allowed).",
  },
  {
    name: 'BOT_GLOBAL_SERVICE_URL',
    description:
      "Overrides the cloud's global serviceUrl used to create a personal chat for a tenant with no known serviceUrl.",
  },
  {
    name: 'BOT_TENANT_RATE_PER_SECOND',
    description:
      'Sends per second per tenant for the bot, all instances together (Teams: 50 per bot per tenant). The instances share it through the `budget` table (docs/scale.md).',
    default: '50',
    deployed: true,
  },
  {
    name: 'OUTBOUND_QUEUE',
    description: 'The queue jobs are read from; failed jobs go to `<name>-poison`.',
    default: 'outbound-messages',
    deployed: true,
  },
  {
    name: 'DELIVERY_MAX_ATTEMPTS',
    description: 'Attempts per job for transient failures before it fails.',
    default: '8',
  },
  {
    name: 'CONNECTOR_TIMEOUT_MS',
    description: 'Timeout of one Bot Connector request (connect, headers and body each).',
    default: '15000',
  },
  {
    name: 'FLOW_AUTH_AUDIENCE',
    description:
      "Turns on Entra ID authentication for `/api/notify` (instead of function keys): the audiences accepted in callers' access tokens, comma-separated (the Application ID URI and/or client id of the app registration callers request tokens for).",
    deployed: true,
  },
  {
    name: 'FLOW_AUTH_TENANT_ID',
    description: 'The Entra tenant whose access tokens `/api/notify` accepts. Default: MicrosoftAppTenantId.',
    deployed: true,
  },
  {
    name: 'FLOW_CALLERS',
    description:
      'With FLOW_AUTH_AUDIENCE: the callers allowed, as JSON `[{"name", "objectId" or "appId", "tenants"?}]`. `name` (letters, digits, hyphens) is the caller\'s job-id namespace; `tenants` limits the Teams tenants it may message.',
    deployed: true,
  },
  {
    name: 'WELCOME_MESSAGE',
    description: 'Optional: text (markdown) sent to a conversation right after the app is installed there.',
  },
  {
    name: 'WELCOME_CARD',
    description: 'Optional: an Adaptive Card (JSON) sent on install, alone or after WELCOME_MESSAGE text.',
  },
  {
    name: 'AzureWebJobsStorage',
    description:
      'Storage for the Functions host, the queue trigger and the tables: a connection string (`UseDevelopmentStorage=true` locally) or the identity-based `AzureWebJobsStorage__*` settings.',
    secret: true,
  },
  {
    name: 'AzureWebJobsStorage__accountName',
    description: 'Identity-based storage: the account name (public cloud endpoints).',
  },
  {
    name: 'AzureWebJobsStorage__tableServiceUri',
    description: 'Identity-based storage: the table endpoint.',
    deployed: true,
  },
  {
    name: 'AzureWebJobsStorage__queueServiceUri',
    description: 'Identity-based storage: the queue endpoint.',
    deployed: true,
  },
  {
    name: 'AzureWebJobsStorage__blobServiceUri',
    description: 'Identity-based storage: the blob endpoint (used by the Functions host).',
    deployed: true,
  },
  {
    name: 'AzureWebJobsStorage__credential',
    description: '`managedidentity` to use a managed identity for storage.',
    deployed: true,
  },
  {
    name: 'AzureWebJobsStorage__clientId',
    description: 'Client id of the user-assigned identity used for storage.',
    deployed: true,
  },
] satisfies SettingSpec[]);

export type Env = Readonly<Record<string, string | undefined>>;

export type BotCredentialConfig =
  | { readonly kind: 'secret'; readonly tenantId: string; readonly clientSecret: string }
  | {
      readonly kind: 'certificate';
      readonly tenantId: string;
      readonly certificate: { readonly path: string } | { readonly pem: string };
    }
  | { readonly kind: 'managedIdentity'; readonly clientId: string };

export type StorageConfig =
  | { readonly kind: 'connectionString'; readonly connectionString: string }
  | {
      readonly kind: 'identity';
      readonly tableServiceUri: string;
      readonly queueServiceUri: string;
      readonly credential: 'managedidentity' | 'default';
      readonly clientId?: string;
    };

export interface InboundConfig {
  readonly appId: string;
  readonly openIdMetadataUrl: string;
  readonly tokenIssuer: string;
}

export interface OutboundConfig {
  readonly appId: string;
  readonly appType: AppType;
  readonly credential: BotCredentialConfig;
  /** Authority host for the token; `disableInstanceDiscovery` is set when it was overridden. */
  readonly authorityHost: string;
  readonly authorityOverridden: boolean;
  readonly oauthScope: string;
  readonly globalServiceUrl: string;
  /** Where to retry after 403 InvalidBotApiHost (a GCC tenant called on the public host); none in the US gov clouds. */
  readonly gccServiceUrl?: string;
  /** Tenant limits of Entra-authenticated callers, by name (null: any tenant). */
  readonly callerTenants: ReadonlyMap<string, readonly string[] | null>;
  readonly trustedHosts: readonly string[];
  /** Extra trusted origins, normalised to `scheme://host[:port]`. */
  readonly trustedOrigins: readonly string[];
  readonly tenantRatePerSecond: number;
  readonly queueName: string;
  readonly poisonQueueName: string;
  readonly maxAttempts: number;
  readonly connectorTimeoutMs: number;
}

/** A caller of `/api/notify` authenticated with Entra ID. */
export interface FlowCaller {
  /** Namespace of its job ids; shown in logs. */
  readonly name: string;
  /** Matched against the token's `oid` (a managed identity's or service principal's object id). */
  readonly objectId?: string;
  /** Matched against the token's `appid` / `azp` (an app registration's client id). */
  readonly appId?: string;
  /** The Teams tenants it may message; undefined means any. */
  readonly tenants?: readonly string[];
}

export interface FlowAuthConfig {
  readonly audiences: readonly string[];
  readonly tenantId: string;
  readonly authorityHost: string;
  readonly callers: readonly FlowCaller[];
}

export interface WelcomeConfig {
  readonly text?: string;
  readonly adaptiveCard?: Record<string, unknown>;
}

export interface Config {
  readonly cloud: CloudPreset;
  /** Sent on install when set (WELCOME_MESSAGE / WELCOME_CARD). */
  readonly welcome?: WelcomeConfig;
  readonly inbound: InboundConfig;
  readonly outbound: OutboundConfig;
  /** Entra ID authentication of `/api/notify` callers; undefined means function keys (full trust). */
  readonly flowAuth?: FlowAuthConfig;
  readonly storage: StorageConfig;
}

/** Reads a trimmed setting; empty counts as unset (the portal and azd write empty strings). */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function parseHttpsUrl(value: string, name: string, problems: Problem[], allowHttp = false): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push({ path: name, message: 'is not a valid URL' });
    return undefined;
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    problems.push({ path: name, message: `must be an https URL (got ${url.protocol})` });
    return undefined;
  }
  return url.toString();
}

function parseInteger(env: Env, name: string, fallback: number, min: number, max: number, problems: Problem[]): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push({ path: name, message: `must be a whole number from ${min} to ${max} (got "${raw}")` });
    return fallback;
  }
  return value;
}

/** Normalises an origin list entry: `https://host[:port]`, a trailing slash allowed, no path. */
export function parseTrustedOrigins(raw: string | undefined, problems: Problem[]): string[] {
  if (raw === undefined) return [];
  const origins: string[] = [];
  for (const entry of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      problems.push({ path: 'BOT_TRUSTED_SERVICE_URLS', message: `"${entry}" is not a valid URL` });
      continue;
    }
    if (url.protocol !== 'https:') {
      problems.push({ path: 'BOT_TRUSTED_SERVICE_URLS', message: `"${entry}" must use https` });
      continue;
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
      problems.push({
        path: 'BOT_TRUSTED_SERVICE_URLS',
        message: `"${entry}" must be an origin (scheme, host and port only)`,
      });
      continue;
    }
    origins.push(url.origin);
  }
  return origins;
}

export const DEFAULT_OUTBOUND_QUEUE = 'outbound-messages';

/** OUTBOUND_QUEUE. Queue names: 3-63 lower-case letters, digits and single hyphens; `-poison` must still fit. */
export function loadQueueName(env: Env, problems: Problem[]): string {
  const queueName = read(env, 'OUTBOUND_QUEUE') ?? DEFAULT_OUTBOUND_QUEUE;
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,55}$/.test(queueName)) {
    problems.push({
      path: 'OUTBOUND_QUEUE',
      message: `must be 3-56 lower-case letters, digits and single hyphens (got "${queueName}")`,
    });
  }
  return queueName;
}

/** The storage setting, read as the Functions host reads it. Exported for the CLI. */
export function loadStorage(env: Env, problems: Problem[]): StorageConfig {
  const connectionString = read(env, 'AzureWebJobsStorage');
  // As in the Functions host, an exact-match connection string wins over the `__` settings.
  if (connectionString !== undefined) return { kind: 'connectionString', connectionString };

  const accountName = read(env, 'AzureWebJobsStorage__accountName');
  const tableUri = read(env, 'AzureWebJobsStorage__tableServiceUri');
  const queueUri = read(env, 'AzureWebJobsStorage__queueServiceUri');
  if (accountName === undefined && (tableUri === undefined || queueUri === undefined)) {
    problems.push({
      path: 'AzureWebJobsStorage',
      message:
        'is not set: give a connection string, or AzureWebJobsStorage__accountName, or both AzureWebJobsStorage__tableServiceUri and AzureWebJobsStorage__queueServiceUri',
    });
    return { kind: 'connectionString', connectionString: '' };
  }
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    problems.push({ path: 'AzureWebJobsStorage__accountName', message: 'must be 3-24 lower-case letters and digits' });
  }
  const tableServiceUri =
    (tableUri && parseHttpsUrl(tableUri, 'AzureWebJobsStorage__tableServiceUri', problems)) ??
    `https://${accountName ?? 'invalid'}.table.core.windows.net`;
  const queueServiceUri =
    (queueUri && parseHttpsUrl(queueUri, 'AzureWebJobsStorage__queueServiceUri', problems)) ??
    `https://${accountName ?? 'invalid'}.queue.core.windows.net`;
  const credentialRaw = read(env, 'AzureWebJobsStorage__credential');
  if (credentialRaw !== undefined && credentialRaw.toLowerCase() !== 'managedidentity') {
    problems.push({
      path: 'AzureWebJobsStorage__credential',
      message: `must be "managedidentity" when set (got "${credentialRaw}")`,
    });
  }
  const clientId = read(env, 'AzureWebJobsStorage__clientId');
  return {
    kind: 'identity',
    tableServiceUri,
    queueServiceUri,
    credential: credentialRaw === undefined ? 'default' : 'managedidentity',
    ...(clientId === undefined ? {} : { clientId }),
  };
}

function loadCredential(
  env: Env,
  appType: AppType,
  appId: string,
  cloud: CloudPreset,
  problems: Problem[],
): BotCredentialConfig {
  const tenantSetting = read(env, 'MicrosoftAppTenantId');
  const password = read(env, 'MicrosoftAppPassword');
  const certificate = read(env, 'BOT_CERTIFICATE');

  if (appType === 'UserAssignedMSI') {
    if (tenantSetting === undefined)
      problems.push({ path: 'MicrosoftAppTenantId', message: 'is required for UserAssignedMSI bots' });
    if (password !== undefined)
      problems.push({
        path: 'MicrosoftAppPassword',
        message: 'must not be set for UserAssignedMSI bots (the managed identity is the credential)',
      });
    return { kind: 'managedIdentity', clientId: appId };
  }

  let tenantId: string;
  if (appType === 'SingleTenant') {
    if (tenantSetting === undefined)
      problems.push({ path: 'MicrosoftAppTenantId', message: 'is required for SingleTenant bots' });
    tenantId = tenantSetting ?? '';
  } else {
    // MultiTenant bots always get their token from the Bot Framework tenant of their cloud (§2.1).
    tenantId = cloud.multiTenantAuthority;
  }
  if (certificate !== undefined) {
    return {
      kind: 'certificate',
      tenantId,
      certificate: certificate.includes('-----BEGIN') ? { pem: certificate } : { path: certificate },
    };
  }
  if (password === undefined) {
    problems.push({
      path: 'MicrosoftAppPassword',
      message: `is required for ${appType} bots (or set BOT_CERTIFICATE)`,
    });
  }
  return { kind: 'secret', tenantId, clientSecret: password ?? '' };
}

function loadWelcome(env: Env, problems: Problem[]): WelcomeConfig | undefined {
  const text = read(env, 'WELCOME_MESSAGE');
  const cardRaw = read(env, 'WELCOME_CARD');
  let adaptiveCard: Record<string, unknown> | undefined;
  if (cardRaw !== undefined) {
    try {
      const parsed = JSON.parse(cardRaw) as unknown;
      if (
        typeof parsed === 'object' &&
        parsed !== null &&
        !Array.isArray(parsed) &&
        (parsed as { type?: unknown }).type === 'AdaptiveCard'
      ) {
        adaptiveCard = parsed as Record<string, unknown>;
      } else {
        problems.push({
          path: 'WELCOME_CARD',
          message: 'must be an Adaptive Card JSON object ({"type":"AdaptiveCard", ...})',
        });
      }
    } catch {
      problems.push({ path: 'WELCOME_CARD', message: 'is not valid JSON' });
    }
  }
  if (text === undefined && adaptiveCard === undefined) return undefined;
  return { ...(text === undefined ? {} : { text }), ...(adaptiveCard === undefined ? {} : { adaptiveCard }) };
}

const FLOW_CALLER_FIELDS = new Set(['name', 'objectId', 'appId', 'tenants']);

function loadFlowCallers(raw: string | undefined, problems: Problem[]): FlowCaller[] {
  const problem = (message: string): FlowCaller[] => {
    problems.push({ path: 'FLOW_CALLERS', message });
    return [];
  };
  if (raw === undefined)
    return problem(
      'is required with FLOW_AUTH_AUDIENCE: list the callers allowed, e.g. [{"name":"billing","objectId":"<managed identity object id>"}]',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return problem('is not valid JSON');
  }
  if (!Array.isArray(parsed) || parsed.length === 0)
    return problem('must be a non-empty JSON array of {"name", "objectId" or "appId", "tenants"?}');
  const callers: FlowCaller[] = [];
  const names = new Set<string>();
  parsed.forEach((entry: unknown, i) => {
    const at = `FLOW_CALLERS[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push({ path: at, message: 'must be an object' });
      return;
    }
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !FLOW_CALLER_FIELDS.has(k));
    if (unknown.length > 0) problems.push({ path: at, message: `has unknown fields: ${unknown.join(', ')}` });
    const text = (k: string): string | undefined =>
      typeof e[k] === 'string' && (e[k] as string).trim() !== '' ? (e[k] as string).trim() : undefined;
    const name = text('name');
    if (name === undefined || !CALLER_NAME.test(name))
      problems.push({
        path: `${at}.name`,
        message: 'must be 1-32 letters, digits and hyphens, starting with a letter or digit',
      });
    else if (names.has(name)) problems.push({ path: `${at}.name`, message: `"${name}" is listed twice` });
    // Tokens carry GUIDs in lower case (the verifier normalises them); compare like with like.
    const objectId = text('objectId')?.toLowerCase();
    const appId = text('appId')?.toLowerCase();
    if (objectId === undefined && appId === undefined)
      problems.push({ path: at, message: "needs objectId or appId to match the caller's token" });
    let tenants: string[] | undefined;
    if (e.tenants !== undefined) {
      if (
        !Array.isArray(e.tenants) ||
        e.tenants.length === 0 ||
        !e.tenants.every((t) => typeof t === 'string' && t.trim() !== '')
      ) {
        problems.push({
          path: `${at}.tenants`,
          message: 'must be a non-empty array of tenant ids (leave it out to allow every tenant)',
        });
      } else tenants = e.tenants.map((t: string) => t.trim());
    }
    if (name !== undefined) names.add(name);
    callers.push({
      name: name ?? '',
      ...(objectId === undefined ? {} : { objectId }),
      ...(appId === undefined ? {} : { appId }),
      ...(tenants === undefined ? {} : { tenants }),
    });
  });
  return callers;
}

function loadFlowAuth(env: Env, authorityHost: string | undefined, problems: Problem[]): FlowAuthConfig | undefined {
  const audienceRaw = read(env, 'FLOW_AUTH_AUDIENCE');
  if (audienceRaw === undefined) {
    if (read(env, 'FLOW_CALLERS') !== undefined)
      problems.push({
        path: 'FLOW_CALLERS',
        message: 'has no effect without FLOW_AUTH_AUDIENCE (function keys are full trust); set both or neither',
      });
    return undefined;
  }
  const audiences = audienceRaw
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const tenantId = read(env, 'FLOW_AUTH_TENANT_ID') ?? read(env, 'MicrosoftAppTenantId');
  if (tenantId === undefined)
    problems.push({
      path: 'FLOW_AUTH_TENANT_ID',
      message: 'is required with FLOW_AUTH_AUDIENCE when MicrosoftAppTenantId is not set',
    });
  else if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantId)) {
    problems.push({
      path: 'FLOW_AUTH_TENANT_ID',
      message: "must be a tenant id (a GUID): tokens are checked against that one tenant's issuer",
    });
  }
  const callers = loadFlowCallers(read(env, 'FLOW_CALLERS'), problems);
  return { audiences, tenantId: tenantId ?? '', authorityHost: authorityHost ?? '', callers };
}

/**
 * How the Functions host guards `/api/notify`: `function` keys, or `anonymous` when the app checks
 * Entra ID tokens itself (FLOW_AUTH_AUDIENCE). Read at registration time, before loadConfig runs.
 */
export function flowAuthLevel(env: Env): 'function' | 'anonymous' {
  return read(env, 'FLOW_AUTH_AUDIENCE') === undefined ? 'function' : 'anonymous';
}

/**
 * A Key Vault reference the platform could not resolve reaches the app as its literal text (for
 * example while the identity's role on the vault is still propagating). Taken as a password, it
 * would make every send fail with an Entra error far from the cause.
 */
function unresolvedKeyVaultReferences(env: Env, problems: Problem[]): void {
  for (const { name } of SETTINGS) {
    if (read(env, name)?.startsWith('@Microsoft.KeyVault(')) {
      problems.push({
        path: name,
        message:
          "is a Key Vault reference the platform could not resolve: give the Function App's identity 'Key Vault Secrets User' on the vault, check the secret URI, then restart the app (the portal's Environment variables page shows the reference's status)",
      });
    }
  }
}

/** Reads and validates every setting. Throws one ConfigError naming every bad setting. */
export function loadConfig(env: Env): Config {
  const problems: Problem[] = [];
  unresolvedKeyVaultReferences(env, problems);

  const cloudRaw = (read(env, 'BOT_CLOUD') ?? 'public').toLowerCase();
  let cloudName: CloudName = 'public';
  if (isCloudName(cloudRaw)) cloudName = cloudRaw;
  else problems.push({ path: 'BOT_CLOUD', message: `must be one of public, gcc, gcchigh, dod (got "${cloudRaw}")` });
  const cloud = CLOUDS[cloudName];

  const appId = read(env, 'MicrosoftAppId');
  if (appId === undefined)
    problems.push({
      path: 'MicrosoftAppId',
      message: 'is required (the bot app id, or the managed identity client id for UserAssignedMSI bots)',
    });

  const appTypeRaw = read(env, 'MicrosoftAppType') ?? 'MultiTenant';
  // botbuilder spells it UserAssignedMsi; ARM spells it UserAssignedMSI. Accept either casing.
  const appType = APP_TYPES.find((t) => t.toLowerCase() === appTypeRaw.toLowerCase());
  if (appType === undefined)
    problems.push({
      path: 'MicrosoftAppType',
      message: `must be one of ${APP_TYPES.join(', ')} (got "${appTypeRaw}")`,
    });

  const credential = loadCredential(env, appType ?? 'MultiTenant', appId ?? '', cloud, problems);

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

  const queueName = loadQueueName(env, problems);

  const tenantRatePerSecond = parseInteger(env, 'BOT_TENANT_RATE_PER_SECOND', 50, 1, 1000, problems);
  const maxAttempts = parseInteger(env, 'DELIVERY_MAX_ATTEMPTS', 8, 1, 100, problems);
  const connectorTimeoutMs = parseInteger(env, 'CONNECTOR_TIMEOUT_MS', 15_000, 100, 120_000, problems);

  const storage = loadStorage(env, problems);
  const welcome = loadWelcome(env, problems);
  const flowAuth = loadFlowAuth(env, authorityHost, problems);

  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    cloud,
    ...(welcome === undefined ? {} : { welcome: Object.freeze(welcome) }),
    inbound: Object.freeze({ appId: appId!, openIdMetadataUrl: openIdMetadataUrl!, tokenIssuer: cloud.tokenIssuer }),
    outbound: Object.freeze({
      appId: appId!,
      appType: appType!,
      credential: Object.freeze(credential),
      authorityHost: authorityHost!,
      authorityOverridden: authorityOverride !== undefined,
      oauthScope: read(env, 'BOT_OAUTH_SCOPE') ?? cloud.oauthScope,
      globalServiceUrl: globalServiceUrl!,
      // The GCC retry is a public-cloud recovery; a US gov cloud never sends the token there.
      ...(cloud.trustedServiceHosts.includes(new URL(GCC_GLOBAL_SERVICE_URL).hostname)
        ? { gccServiceUrl: GCC_GLOBAL_SERVICE_URL }
        : {}),
      callerTenants: new Map(
        (flowAuth?.callers ?? []).map(
          (c) => [c.name, c.tenants === undefined ? null : Object.freeze([...c.tenants])] as const,
        ),
      ),
      trustedHosts: cloud.trustedServiceHosts,
      trustedOrigins: Object.freeze(trustedOrigins),
      tenantRatePerSecond,
      queueName,
      poisonQueueName: `${queueName}-poison`,
      maxAttempts,
      connectorTimeoutMs,
    }),
    storage: Object.freeze(storage),
    ...(flowAuth === undefined
      ? {}
      : {
          flowAuth: Object.freeze({
            ...flowAuth,
            audiences: Object.freeze(flowAuth.audiences),
            callers: Object.freeze(flowAuth.callers.map((c) => Object.freeze(c))),
          }),
        }),
  });
}
