/**
 * The bot's identity: its app id, app type and the credential its outbound tokens are requested
 * with (a client secret, a certificate, or a user-assigned managed identity).
 */
import type { CloudPreset } from '../clouds';
import type { Problem } from '../errors';
import { read, type Env } from './parsers';

export type AppType = 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
const APP_TYPES: readonly AppType[] = ['MultiTenant', 'SingleTenant', 'UserAssignedMSI'];

export type BotCredentialConfig =
  | { readonly kind: 'secret'; readonly tenantId: string; readonly clientSecret: string }
  | {
      readonly kind: 'certificate';
      readonly tenantId: string;
      readonly certificate: { readonly path: string } | { readonly pem: string };
    }
  | { readonly kind: 'managedIdentity'; readonly clientId: string };

export interface BotIdentity {
  /** Undefined only when there are problems. */
  readonly appId: string | undefined;
  readonly appType: AppType | undefined;
  readonly credential: BotCredentialConfig;
}

/** MicrosoftAppId, MicrosoftAppType and the credential that goes with the type. */
export function loadBotIdentity(env: Env, cloud: CloudPreset, problems: Problem[]): BotIdentity {
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
  return { appId, appType, credential };
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
