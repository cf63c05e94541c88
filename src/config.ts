/**
 * Every app setting teams-courier reads, validated once. `loadConfig(env)` reports all problems in one
 * error that names each bad setting, and returns a frozen object. Nothing else reads `process.env`.
 *
 * This is the entry; each group of settings has its own module in src/config/: the list of settings
 * (`SETTINGS`, the single source of truth for names: the README table, the Bicep app settings test
 * and the local host derive from it), the small parsers, the cloud and its endpoints, the bot's
 * credential, storage and the queue name, the flows' Entra ID callers, and the welcome message.
 */
import type { CloudPreset } from './clouds';
import { ConfigError, type Problem } from './errors';
import { loadBotIdentity, type AppType, type BotCredentialConfig } from './config/botCredential';
import { loadCloud, loadEndpoints } from './config/cloud';
import { loadFlowAuth, type FlowAuthConfig } from './config/flowAuth';
import { unresolvedKeyVaultReferences } from './config/keyVaultReferences';
import { loadBatch, type BatchConfig } from './config/batch';
import { loadGraphInstall, type GraphInstallConfig } from './config/graphInstall';
import { parseInteger, read, type Env } from './config/parsers';
import { loadQueueName, loadStorage, type StorageConfig } from './config/storage';
import { loadWelcome, type WelcomeConfig } from './config/welcome';

export type { AppType, BotCredentialConfig } from './config/botCredential';
export { flowAuthLevel, type FlowAuthConfig, type FlowCaller } from './config/flowAuth';
export { parseTrustedOrigins, type Env } from './config/parsers';
export { SETTINGS, type SettingSpec } from './config/settings';
export { DEFAULT_OUTBOUND_QUEUE, loadQueueName, loadStorage, type StorageConfig } from './config/storage';
export type { WelcomeConfig } from './config/welcome';
export { BATCH_DEFAULTS, type BatchConfig } from './config/batch';
export type { GraphInstallConfig } from './config/graphInstall';

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
  /** The bot's home tenant (MicrosoftAppTenantId), when set: where a SingleTenant or managed-identity bot may act through Graph. */
  readonly homeTenantId?: string;
  /** Proactive installation through Graph; undefined when TEAMS_APP_CATALOG_ID is not set. */
  readonly graphInstall?: GraphInstallConfig;
  readonly batch: BatchConfig;
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

/** Reads and validates every setting. Throws one ConfigError naming every bad setting. */
export function loadConfig(env: Env): Config {
  const problems: Problem[] = [];
  unresolvedKeyVaultReferences(env, problems);

  const cloud = loadCloud(env, problems);
  const { appId, appType, credential } = loadBotIdentity(env, cloud, problems);
  const endpoints = loadEndpoints(env, cloud, problems);
  const queueName = loadQueueName(env, problems);
  const tenantRatePerSecond = parseInteger(env, 'BOT_TENANT_RATE_PER_SECOND', 50, 1, 1000, problems);
  const maxAttempts = parseInteger(env, 'DELIVERY_MAX_ATTEMPTS', 8, 1, 100, problems);
  const connectorTimeoutMs = parseInteger(env, 'CONNECTOR_TIMEOUT_MS', 15_000, 100, 120_000, problems);
  const storage = loadStorage(env, problems);
  const welcome = loadWelcome(env, problems);
  const flowAuth = loadFlowAuth(env, endpoints.authorityHost, problems);
  const graphInstall = loadGraphInstall(env, problems);
  const batch = loadBatch(env, problems);
  const homeTenantId = read(env, 'MicrosoftAppTenantId');

  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    cloud,
    ...(welcome === undefined ? {} : { welcome: Object.freeze(welcome) }),
    inbound: Object.freeze({
      appId: appId!,
      openIdMetadataUrl: endpoints.openIdMetadataUrl!,
      tokenIssuer: cloud.tokenIssuer,
    }),
    outbound: Object.freeze({
      appId: appId!,
      appType: appType!,
      credential: Object.freeze(credential),
      authorityHost: endpoints.authorityHost!,
      authorityOverridden: endpoints.authorityOverridden,
      oauthScope: endpoints.oauthScope,
      globalServiceUrl: endpoints.globalServiceUrl!,
      ...(endpoints.gccServiceUrl === undefined ? {} : { gccServiceUrl: endpoints.gccServiceUrl }),
      callerTenants: new Map(
        (flowAuth?.callers ?? []).map(
          (c) => [c.name, c.tenants === undefined ? null : Object.freeze([...c.tenants])] as const,
        ),
      ),
      trustedHosts: cloud.trustedServiceHosts,
      trustedOrigins: Object.freeze(endpoints.trustedOrigins),
      tenantRatePerSecond,
      queueName,
      poisonQueueName: `${queueName}-poison`,
      maxAttempts,
      connectorTimeoutMs,
      ...(homeTenantId === undefined ? {} : { homeTenantId }),
      ...(graphInstall === undefined ? {} : { graphInstall: Object.freeze(graphInstall) }),
      batch: Object.freeze(batch),
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
