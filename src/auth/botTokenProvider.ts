/**
 * The bot's own token for the Bot Connector (bot -> connector), from @azure/identity:
 * - MultiTenant: client secret/certificate against the Bot Framework tenant of the cloud;
 * - SingleTenant: client secret/certificate against MicrosoftAppTenantId;
 * - UserAssignedMSI: the managed identity whose client id is MicrosoftAppId.
 * Always the bot's home tenant, never the conversation's (bot-connector.md §2.3).
 *
 * Cached until five minutes before expiry (botbuilder does the same); concurrent callers share one
 * request; `invalidate()` forces a new token after a 401.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { OutboundConfig } from '../config';
import { CourierError } from '../errors';

export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;

export interface BotTokenProvider {
  getToken(): Promise<string>;
  invalidate(): void;
}

export function createBotCredential(config: OutboundConfig): TokenCredential {
  const identity = require('@azure/identity') as typeof import('@azure/identity');
  const authority = {
    authorityHost: config.authorityHost,
    // A non-Microsoft authority (tests, unusual clouds) cannot answer instance discovery.
    ...(config.authorityOverridden ? { disableInstanceDiscovery: true } : {}),
  };
  const credential = config.credential;
  switch (credential.kind) {
    case 'managedIdentity':
      return new identity.ManagedIdentityCredential({ clientId: credential.clientId });
    case 'certificate':
      return 'path' in credential.certificate
        ? new identity.ClientCertificateCredential(
            credential.tenantId,
            config.appId,
            { certificatePath: credential.certificate.path },
            authority,
          )
        : new identity.ClientCertificateCredential(
            credential.tenantId,
            config.appId,
            { certificate: credential.certificate.pem },
            authority,
          );
    case 'secret':
      return new identity.ClientSecretCredential(credential.tenantId, config.appId, credential.clientSecret, authority);
  }
}

/**
 * `createCredential` is called again by `invalidate()`: @azure/identity keeps its own (MSAL) token
 * cache per credential, so only a new credential guarantees a new token after a 401.
 */
export function createBotTokenProvider(options: {
  createCredential: () => TokenCredential;
  scope: string;
  now?: () => number;
  /** Whose token, for the error message; default the Bot Connector's. */
  audience?: string;
}): BotTokenProvider {
  const now = options.now ?? Date.now;
  const audience = options.audience ?? 'Bot Connector';
  let credential = options.createCredential();
  let cached: AccessToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;

  async function fetchToken(): Promise<AccessToken> {
    let token: AccessToken | null;
    try {
      token = await credential.getToken(options.scope);
    } catch (err) {
      // @azure/identity messages name the tenant and app, never the secret.
      throw new CourierError(
        'TOKEN_UNAVAILABLE',
        `could not get a ${audience} token: ${err instanceof Error ? err.message.split('\n')[0] : 'unknown error'}`,
        { cause: err },
      );
    }
    if (token === null)
      throw new CourierError('TOKEN_UNAVAILABLE', `could not get a ${audience} token: the credential returned none`);
    return token;
  }

  return {
    async getToken() {
      if (cached !== undefined && cached.expiresOnTimestamp - now() > REFRESH_BEFORE_EXPIRY_MS) return cached.token;
      inFlight ??= fetchToken().finally(() => {
        inFlight = undefined;
      });
      cached = await inFlight;
      return cached.token;
    },
    invalidate() {
      cached = undefined;
      credential = options.createCredential();
    },
  };
}
