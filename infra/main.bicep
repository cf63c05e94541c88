// teams-courier: a Teams bot's messaging endpoint and a queue-triggered proactive sender on Azure
// Functions Flex Consumption, with Table Storage state and an Azure Bot (Teams channel).
// Subscription scope, as in the azd quickstarts: creates the resource group `rg-<environmentName>`.
// Deploy with `azd up` (infra/main.parameters.json) or `az deployment sub create` (docs/deploy.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd: AZURE_ENV_NAME); names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of every regional resource. Must offer Flex Consumption: `az functionapp list-flexconsumption-locations`.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group name; default `rg-<environmentName>`.')
param resourceGroupName string = ''

@description('Principal id of the deployer (azd: AZURE_PRINCIPAL_ID); gets queue send/peek and table read for the docs\' CLI steps. Empty = none.')
param principalId string = deployer().objectId

// Empty by default: Azure then looks the type up itself, so a user, a group or a service principal
// running `az deployment sub create` all work. azd always passes the type it signed in with.
@allowed(['', 'User', 'Group', 'ServicePrincipal'])
@description('Type of principalId: User, Group or ServicePrincipal (azd: AZURE_PRINCIPAL_TYPE). Empty = let Azure look it up.')
param principalType string = ''

@allowed(['UserAssignedMSI', 'SingleTenant'])
@description('UserAssignedMSI: the app\'s managed identity is the bot (no secret anywhere). SingleTenant: an existing app registration (botAppId) whose secret (botAppPassword) goes to Key Vault.')
param botAppType string = 'UserAssignedMSI'

@description('SingleTenant only: the app registration\'s application (client) id.')
param botAppId string = ''

@secure()
@description('SingleTenant only: the app registration\'s client secret (MicrosoftAppPassword); stored in Key Vault, never in app settings.')
param botAppPassword string = ''

@secure()
@description('SingleTenant only, instead of botAppPassword: the app registration\'s certificate and private key as PEM text (BOT_CERTIFICATE); stored in Key Vault, never in app settings. Empty = none.')
param botCertificate string = ''

@description('Display name of the bot.')
param botDisplayName string = 'Teams Courier'

@allowed(['F0', 'S1'])
@description('Azure Bot pricing tier. Teams is a standard channel: messages are free on both.')
param botSku string = 'F0'

@allowed(['public', 'gcc', 'gcchigh', 'dod'])
@description('BOT_CLOUD: Bot Framework / Teams endpoint preset.')
param botCloud string = 'public'

@minValue(1)
@maxValue(1000)
@description('BOT_TENANT_RATE_PER_SECOND: sends per second to one tenant, for this bot, all instances together (a budget shared through storage). Teams allows 50 per bot per tenant.')
param tenantRatePerSecond int = 50

// The app settings below are optional: an empty value (the default) means "not set", and the app
// uses its own default (src/config.ts). They are parameters so that `azd provision` and
// `az deployment sub create` set them every time: a setting added by hand in the portal is removed
// by the next deployment, because the template writes the whole list.

@description('BOT_OPENID_METADATA_URL: overrides the OpenID metadata document inbound tokens are checked against. Empty = the cloud preset.')
param botOpenIdMetadataUrl string = ''

@description('BOT_AUTHORITY_HOST: overrides the Entra authority host for outbound tokens. Empty = the cloud preset.')
param botAuthorityHost string = ''

@description('BOT_OAUTH_SCOPE: overrides the scope of outbound tokens. Empty = the cloud preset.')
param botOAuthScope string = ''

@description('BOT_TRUSTED_SERVICE_URLS: comma-separated extra origins that may receive the bot\'s token. Empty = none.')
param botTrustedServiceUrls string = ''

@description('BOT_GLOBAL_SERVICE_URL: overrides the global serviceUrl used to create a personal chat. Empty = the cloud preset.')
param botGlobalServiceUrl string = ''

@minLength(3)
@maxLength(56)
@description('OUTBOUND_QUEUE: the queue jobs are read from; the template creates it and <name>-poison.')
param outboundQueueName string = 'outbound-messages'

@minValue(1)
@maxValue(100)
@description('DELIVERY_MAX_ATTEMPTS: attempts per job for transient failures before it fails.')
param deliveryMaxAttempts int = 8

@minValue(100)
@maxValue(120000)
@description('CONNECTOR_TIMEOUT_MS: timeout of one Bot Connector request, in milliseconds.')
param connectorTimeoutMs int = 15000

@description('TEAMS_APP_CATALOG_ID: optional. The Teams app\'s id in the org app catalog; turns on proactive installation through Microsoft Graph (grant the Graph permission first: docs/graph-install.md).')
param teamsAppCatalogId string = ''

@description('GRAPH_BASE_URL: overrides the cloud\'s Microsoft Graph root. Leave empty in Azure.')
param graphBaseUrl string = ''

@description('BATCH_MEMBERS_PER_REQUEST: users or channels per Teams batch request (10 to 1000).')
@minValue(10)
@maxValue(1000)
param batchMembersPerRequest int = 100

@description('BATCH_POLL_INTERVAL_MS: first wait before a batch operation\'s state is read, in milliseconds.')
@minValue(1000)
@maxValue(300000)
param batchPollIntervalMs int = 10000

@description('WELCOME_MESSAGE: text (markdown) sent to a conversation when the app is installed there. Empty = none.')
param welcomeMessage string = ''

@description('WELCOME_CARD: an Adaptive Card (JSON object) sent on install. Empty object = none.')
param welcomeCard object = {}

@description('FLOW_AUTH_AUDIENCE: the Application ID URI or client id that callers of the flow API request Entra tokens for. Empty = not set.')
param flowAuthAudience string = ''

@description('FLOW_AUTH_TENANT_ID: the tenant whose Entra tokens the flow API accepts. Empty = the bot\'s tenant.')
param flowAuthTenantId string = ''

@description('FLOW_CALLERS: the callers allowed to use the flow API, with their tenants (JSON). Empty array = not set.')
param flowCallers array = []

@description('Optional principal id of a producer (e.g. a Logic App\'s managed identity) allowed to put messages on the outbound queue. Empty = none.')
param producerPrincipalId string = ''

// 40 is the lowest cap every region accepts; lower values (down to 1) are being rolled out region
// by region and are rejected where they are not yet available. Each instance polls the queue, so a
// lower cap means fewer storage transactions while idle and less contention on the shared tenant
// budget; one instance already sends a tenant's whole budget. docs/deploy.md, "Scale".
@minValue(1)
@maxValue(1000)
@description('Flex Consumption: maximum number of on-demand instances per function group (HTTP functions; the queue sender).')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
@description('Flex Consumption: memory per instance (MB).')
param instanceMemoryMB int = 2048

@minValue(0)
@maxValue(1000)
@description('Flex Consumption: always-ready instances for the HTTP functions (/api/messages, /api/notify); billed all the time. 0 = scale to zero.')
param alwaysReadyHttpInstances int = 0

@description('Where the operating alerts are e-mailed (docs/operate.md). Empty = the alerts fire in Azure Monitor, but nobody is e-mailed.')
param alertEmail string = ''

@description('Also test GET /api/health from three regions every 5 minutes, with an alert when two fail (an Application Insights standard test, billed per run).')
param availabilityTest bool = false

var isSingleTenant = botAppType == 'SingleTenant'
// fail() stops the deployment early with a clear message instead of a Bot Service validation error.
var checkedBotAppPassword = isSingleTenant && empty(botAppPassword) && empty(botCertificate)
  ? fail('botAppPassword is required when botAppType is SingleTenant (or give botCertificate instead).')
  : botAppPassword

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var names = {
  identity: 'id-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  applicationInsights: 'appi-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  plan: 'plan-${resourceToken}'
  app: 'func-${resourceToken}'
  bot: 'bot-${resourceToken}'
}

// The tables the app uses (src/store/tables.ts); test/infra checks them, and the default of
// outboundQueueName, against the source, so they cannot drift.
var tableNames = ['conversations', 'userchats', 'deliveries', 'budget', 'stats']

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
    queueName: outboundQueueName
    tableNames: tableNames
  }
}

module keyVault 'modules/keyvault.bicep' = if (isSingleTenant) {
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    botAppPassword: checkedBotAppPassword
    botCertificate: botCertificate
    hasBotAppPassword: !empty(botAppPassword)
    hasBotCertificate: !empty(botCertificate)
  }
}

module rbac 'modules/rbac.bicep' = {
  scope: rg
  params: {
    storageAccountName: names.storage
    queueName: outboundQueueName
    applicationInsightsName: names.applicationInsights
    keyVaultName: isSingleTenant ? names.keyVault : ''
    appIdentityName: names.identity
    producerPrincipalId: producerPrincipalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
  // Names are passed (not outputs), so the ordering is explicit.
  dependsOn: [identity, monitoring, storage, keyVault]
}

// MicrosoftAppId: the identity's client id (UserAssignedMSI) or the given app registration.
var resolvedBotAppId = isSingleTenant
  ? (empty(botAppId) ? fail('botAppId is required when botAppType is SingleTenant.') : botAppId)
  : identity.outputs.clientId

module app 'modules/app.bicep' = {
  scope: rg
  params: {
    planName: names.plan
    appName: names.app
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsName: names.applicationInsights
    botAppType: botAppType
    botAppId: resolvedBotAppId
    botSecretUri: isSingleTenant && !empty(botAppPassword) ? keyVault!.outputs.botSecretUri : ''
    botCertificateUri: isSingleTenant && !empty(botCertificate) ? keyVault!.outputs.botCertificateUri : ''
    botCloud: botCloud
    botOpenIdMetadataUrl: botOpenIdMetadataUrl
    botAuthorityHost: botAuthorityHost
    botOAuthScope: botOAuthScope
    botTrustedServiceUrls: botTrustedServiceUrls
    botGlobalServiceUrl: botGlobalServiceUrl
    tenantRatePerSecond: tenantRatePerSecond
    queueName: outboundQueueName
    deliveryMaxAttempts: deliveryMaxAttempts
    connectorTimeoutMs: connectorTimeoutMs
    teamsAppCatalogId: teamsAppCatalogId
    graphBaseUrl: graphBaseUrl
    batchMembersPerRequest: batchMembersPerRequest
    batchPollIntervalMs: batchPollIntervalMs
    welcomeMessage: welcomeMessage
    welcomeCard: empty(welcomeCard) ? '' : string(welcomeCard)
    flowAuthAudience: flowAuthAudience
    flowAuthTenantId: flowAuthTenantId
    flowCallers: empty(flowCallers) ? '' : string(flowCallers)
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
  }
  // The host needs its storage and telemetry roles before it starts.
  dependsOn: [monitoring, rbac]
}

var messagingEndpoint = 'https://${app.outputs.defaultHostName}/api/messages'

// Alerts, the action group that e-mails them, the workbook, and the optional health test (docs/operate.md).
module operations 'modules/operations.bicep' = {
  scope: rg
  params: {
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    alertEmail: alertEmail
    healthUrl: 'https://${app.outputs.defaultHostName}/api/health'
    availabilityTest: availabilityTest
  }
  dependsOn: [monitoring]
}

module bot 'modules/bot.bicep' = {
  scope: rg
  params: {
    name: names.bot
    displayName: botDisplayName
    tags: tags
    appType: botAppType
    appId: resolvedBotAppId
    identityId: identity.outputs.id
    tenantId: tenant().tenantId
    messagingEndpoint: messagingEndpoint
    sku: botSku
  }
}

// azd conventions (written to .azure/<env>/.env by azd).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = app.outputs.name
output AZURE_FUNCTION_NAME string = app.outputs.name

// teams-courier. Ids, names and URLs only: no secret (the linter's outputs-should-not-contain-secrets
// is an error, and test/infra checks it too).
output BOT_NAME string = bot.outputs.name
output BOT_APP_TYPE string = botAppType
output BOT_APP_ID string = resolvedBotAppId
output BOT_MESSAGING_ENDPOINT string = messagingEndpoint
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output OUTBOUND_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output OUTBOUND_QUEUE_NAME string = storage.outputs.queueName
output OUTBOUND_POISON_QUEUE_NAME string = storage.outputs.poisonQueueName
output KEY_VAULT_NAME string = isSingleTenant ? names.keyVault : ''
output OPERATIONS_WORKBOOK_NAME string = operations.outputs.workbookName
