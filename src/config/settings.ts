/**
 * Every app setting teams-courier reads, with its description and default: the single source of
 * truth for setting names. The README table, the Bicep app settings test, the local host and the
 * bench all derive from `SETTINGS`; src/config.ts reads them.
 */

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
    name: 'TEAMS_APP_CATALOG_ID',
    description:
      "Optional: turns on proactive installation. A job for a user with no stored personal chat installs the app for that user through Microsoft Graph first. The app's id in your org's app catalog (docs/graph-install.md); needs the Graph permission TeamsAppInstallation.ReadWriteSelfForUser.All with admin consent.",
  },
  {
    name: 'GRAPH_BASE_URL',
    description: "Overrides the cloud's Microsoft Graph root (https only; tests and the emulator).",
  },
  {
    name: 'BATCH_MEMBERS_PER_REQUEST',
    description:
      "Users or channels per Teams batch request (10 to 1000); longer lists are split into balanced requests. Microsoft's SDKs give 5 to 1000 per request.",
    default: '100',
  },
  {
    name: 'BATCH_POLL_INTERVAL_MS',
    description:
      "First wait before a batch operation's state is read, in milliseconds (1000 to 300000); later reads back off from it and follow Teams' retryAfter.",
    default: '10000',
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
