/**
 * How the sender's clients and the caller check are built from the configuration. runtime.ts (the
 * composition root) decides when, and keeps what it built; this file only builds. Required by
 * runtime.ts on first use, so no entry module loads the SDKs named here at start-up.
 */
import type { CloudPreset } from './clouds';
import type { FlowAuthConfig, GraphInstallConfig, OutboundConfig } from './config';
import type { NotifyDeps } from './flows/notifyApi';
import type { SenderDeps } from './outbound/senderTypes';
import type { TableClient } from './store/tableClients';

/** What only sending needs: the bot token, the Connector clients, Graph, the budget shared by instances. */
export type SenderParts = Pick<SenderDeps, 'connector' | 'tokens' | 'budget' | 'graph' | 'batches'>;

export function buildSenderParts(cloud: CloudPreset, outbound: OutboundConfig, budgetTable: TableClient): SenderParts {
  const { createBotCredential, createBotTokenProvider } =
    require('./auth/botTokenProvider') as typeof import('./auth/botTokenProvider');
  const { createConnectorClient } =
    require('./connector/connectorClient') as typeof import('./connector/connectorClient');
  const { createBatchClient } = require('./connector/batchClient') as typeof import('./connector/batchClient');
  const { createSendBudget } = require('./outbound/sendBudget') as typeof import('./outbound/sendBudget');
  const { createBudgetRoster } = require('./store/budgetRoster') as typeof import('./store/budgetRoster');

  const tokens = createBotTokenProvider({
    createCredential: () => createBotCredential(outbound),
    scope: outbound.oauthScope,
  });
  const connectorOptions = {
    trust: { trustedHosts: outbound.trustedHosts, trustedOrigins: outbound.trustedOrigins },
    getToken: () => tokens.getToken(),
    timeoutMs: outbound.connectorTimeoutMs,
  };
  return {
    tokens,
    connector: createConnectorClient(connectorOptions),
    batches: createBatchClient({
      ...connectorOptions,
      invalidateToken: () => tokens.invalidate(),
      ...(outbound.gccServiceUrl === undefined ? {} : { gccServiceUrl: outbound.gccServiceUrl }),
    }),
    ...(outbound.graphInstall === undefined ? {} : { graph: buildGraph(cloud, outbound, outbound.graphInstall) }),
    // One budget per process, shared by every invocation here and, through the roster, by every instance.
    budget: createSendBudget({ roster: createBudgetRoster(budgetTable), ratePerSecond: outbound.tenantRatePerSecond }),
  };
}

/** The Graph client for proactive installation, with tokens from the bot's credential per tenant. */
function buildGraph(
  cloud: CloudPreset,
  outbound: OutboundConfig,
  graphInstall: GraphInstallConfig,
): NonNullable<SenderDeps['graph']> {
  const { createGraphClient } = require('./graph/graphClient') as typeof import('./graph/graphClient');
  const { createGraphTokenProvider } = require('./graph/graphToken') as typeof import('./graph/graphToken');
  const { graphScopeFor } = require('./graph/graphHosts') as typeof import('./graph/graphHosts');
  const tokens = createGraphTokenProvider({
    identity: {
      appId: outbound.appId,
      appType: outbound.appType,
      credential: outbound.credential,
      authorityHost: outbound.authorityHost,
      authorityOverridden: outbound.authorityOverridden,
      ...(outbound.homeTenantId === undefined ? {} : { homeTenantId: outbound.homeTenantId }),
    },
    scope: graphScopeFor(cloud.name),
  });
  const client = createGraphClient({
    cloud: cloud.name,
    ...(graphInstall.baseUrl === undefined ? {} : { baseUrl: graphInstall.baseUrl }),
    tokens,
    timeoutMs: outbound.connectorTimeoutMs,
  });
  return { client, catalogId: graphInstall.catalogId };
}

/** Function keys: everyone the host let in has full trust. Entra: the caller's token says who it is. */
export function buildAuthenticate(flowAuth: FlowAuthConfig | undefined): NotifyDeps['authenticate'] {
  if (flowAuth === undefined) return async () => undefined;
  const { createOpenIdKeyCache, fetchJsonDocument } =
    require('./auth/openIdKeys') as typeof import('./auth/openIdKeys');
  const { callerMetadataUrl, createCallerTokenVerifier } =
    require('./auth/verifyCallerToken') as typeof import('./auth/verifyCallerToken');
  const { toSubmitter } = require('./flows/callerAuth') as typeof import('./flows/callerAuth');
  const verifier = createCallerTokenVerifier({
    tenantId: flowAuth.tenantId,
    audiences: flowAuth.audiences,
    authorityHost: flowAuth.authorityHost,
    keys: createOpenIdKeyCache({
      metadataUrl: callerMetadataUrl(flowAuth.authorityHost, flowAuth.tenantId),
      fetchJson: fetchJsonDocument,
    }),
  });
  return async (request) =>
    toSubmitter(await verifier.verify(request.headers.get('authorization') ?? undefined), flowAuth.callers);
}
