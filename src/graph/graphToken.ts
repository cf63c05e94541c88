/**
 * App-only Microsoft Graph tokens, from the bot's own credential settings (the ones
 * createBotCredential in ../auth/botTokenProvider.ts uses), with scope `https://<graph host>/.default`.
 *
 * Installing the app for a user needs a token FROM THE USER'S TENANT (application permissions are
 * granted per tenant, by that tenant's admin):
 * - MultiTenant (secret or certificate): a credential against the target tenant's authority, one
 *   per tenant, never the Bot Framework tenant the Bot Connector token comes from;
 * - SingleTenant: its own tenant (MicrosoftAppTenantId) only;
 * - UserAssignedMSI: the managed identity's tenant (MicrosoftAppTenantId) only.
 * Any other tenant is a permanent GraphTenantNotAllowed, and no token is asked for.
 *
 * Tokens are cached per tenant until five minutes before expiry, as the bot's token is;
 * concurrent callers share one request; `invalidate(tenant)` forces a new one after a 401.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { REFRESH_BEFORE_EXPIRY_MS } from '../auth/botTokenProvider';
import type { OutboundConfig } from '../config';
import type { GraphTokenSource } from './graphClient';
import { failure, GraphTokenError, type GraphFailure } from './graphResult';

export interface GraphIdentity extends Pick<
  OutboundConfig,
  'appId' | 'appType' | 'credential' | 'authorityHost' | 'authorityOverridden'
> {
  /** MicrosoftAppTenantId: the only tenant a SingleTenant or UserAssignedMSI bot may act in. */
  readonly homeTenantId?: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Undefined when `identity` may get a Graph token from `tenantId`; else the permanent reason why not. */
export function graphTenantRefusal(identity: GraphIdentity, tenantId: string): GraphFailure | undefined {
  if (!GUID.test(tenantId))
    return failure('GraphInvalidId', `tenant id "${tenantId.slice(0, 64)}" is not a GUID; no Graph token asked for`);
  const home =
    identity.appType === 'UserAssignedMSI'
      ? identity.homeTenantId
      : identity.appType === 'SingleTenant' && identity.credential.kind !== 'managedIdentity'
        ? identity.credential.tenantId
        : undefined;
  if (identity.appType === 'MultiTenant') {
    if (identity.credential.kind === 'managedIdentity')
      return failure(
        'GraphTenantNotAllowed',
        'a MultiTenant bot needs a secret or certificate to act in other tenants',
      );
    return undefined;
  }
  const who = identity.appType === 'UserAssignedMSI' ? 'a managed identity (UserAssignedMSI)' : 'a SingleTenant bot';
  if (home === undefined || !GUID.test(home))
    return failure(
      'GraphTenantNotAllowed',
      `${who} acts only in its own tenant, and MicrosoftAppTenantId is not a GUID`,
    );
  if (home.toLowerCase() !== tenantId.toLowerCase())
    return failure(
      'GraphTenantNotAllowed',
      `${who} gets Graph tokens only from its own tenant ${home}; user's tenant is ${tenantId}, where it cannot install the app`,
    );
  return undefined;
}

/** The credential that gets Graph tokens from `tenantId` (call graphTenantRefusal first). */
export function createGraphCredential(identity: GraphIdentity, tenantId: string): TokenCredential {
  const azure = require('@azure/identity') as typeof import('@azure/identity');
  const authority = {
    authorityHost: identity.authorityHost,
    // A non-Microsoft authority (tests, the emulator) cannot answer instance discovery.
    ...(identity.authorityOverridden ? { disableInstanceDiscovery: true } : {}),
  };
  const credential = identity.credential;
  switch (credential.kind) {
    case 'managedIdentity':
      return new azure.ManagedIdentityCredential({ clientId: credential.clientId });
    case 'certificate':
      return 'path' in credential.certificate
        ? new azure.ClientCertificateCredential(
            tenantId,
            identity.appId,
            { certificatePath: credential.certificate.path },
            authority,
          )
        : new azure.ClientCertificateCredential(
            tenantId,
            identity.appId,
            { certificate: credential.certificate.pem },
            authority,
          );
    case 'secret':
      return new azure.ClientSecretCredential(tenantId, identity.appId, credential.clientSecret, authority);
  }
}

/** Token failures that waiting will not mend, by Entra error code (AADSTS…). */
function tokenFailure(tenantId: string, err: unknown): GraphFailure {
  const line = err instanceof Error ? (err.message.split('\n')[0] ?? '').slice(0, 300) : 'unknown error';
  if (/AADSTS700016\b/.test(line))
    return failure(
      'GraphConsentMissing',
      `the bot's app is not registered in tenant ${tenantId}: an admin of that tenant must consent to it (${line})`,
    );
  if (/AADSTS90002\b/.test(line))
    return failure('GraphTenantNotAllowed', `tenant ${tenantId} does not exist (${line})`);
  return failure('GraphTokenUnavailable', `could not get a Graph token from tenant ${tenantId}: ${line}`);
}

interface TenantEntry {
  credential: TokenCredential;
  cached?: AccessToken;
  inFlight?: Promise<AccessToken>;
}

export interface GraphTokenProvider extends GraphTokenSource {
  /** Tenants with a credential in the cache (tests, diagnostics). */
  tenants(): string[];
}

export function createGraphTokenProvider(options: {
  identity: GraphIdentity;
  /** `graphScopeFor(cloud)`. */
  scope: string;
  createCredential?: (tenantId: string) => TokenCredential;
  now?: () => number;
  /** Credentials kept at most (oldest use dropped first); default 1000. */
  maxTenants?: number;
}): GraphTokenProvider {
  const now = options.now ?? Date.now;
  const create = options.createCredential ?? ((tenantId: string) => createGraphCredential(options.identity, tenantId));
  const maxTenants = options.maxTenants ?? 1000;
  const entries = new Map<string, TenantEntry>();

  const entryFor = (tenantId: string): TenantEntry => {
    const key = tenantId.toLowerCase();
    let entry = entries.get(key);
    if (entry === undefined) entry = { credential: create(tenantId) };
    entries.delete(key);
    entries.set(key, entry);
    while (entries.size > maxTenants) entries.delete(entries.keys().next().value!);
    return entry;
  };

  async function fetchToken(entry: TenantEntry, tenantId: string): Promise<AccessToken> {
    let token: AccessToken | null;
    try {
      token = await entry.credential.getToken(options.scope);
    } catch (err) {
      throw new GraphTokenError(tokenFailure(tenantId, err), { cause: err });
    }
    if (token === null)
      throw new GraphTokenError(
        failure(
          'GraphTokenUnavailable',
          `could not get a Graph token from tenant ${tenantId}: the credential returned none`,
        ),
      );
    return token;
  }

  return {
    async getToken(tenantId) {
      const refusal = graphTenantRefusal(options.identity, tenantId);
      if (refusal !== undefined) throw new GraphTokenError(refusal);
      const entry = entryFor(tenantId);
      const { cached } = entry;
      if (cached !== undefined && cached.expiresOnTimestamp - now() > REFRESH_BEFORE_EXPIRY_MS) return cached.token;
      entry.inFlight ??= fetchToken(entry, tenantId).finally(() => {
        entry.inFlight = undefined;
      });
      entry.cached = await entry.inFlight;
      return entry.cached.token;
    },
    invalidate(tenantId) {
      const key = tenantId.toLowerCase();
      if (!entries.has(key)) return;
      // A new credential: @azure/identity (MSAL) caches tokens per credential.
      entries.set(key, { credential: create(tenantId) });
    },
    tenants: () => [...entries.keys()],
  };
}
