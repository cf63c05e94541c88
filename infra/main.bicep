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

@allowed(['User', 'Group', 'ServicePrincipal'])
@description('Type of principalId (ServicePrincipal when a pipeline deploys).')
param principalType string = 'User'

@allowed(['UserAssignedMSI', 'SingleTenant'])
@description('UserAssignedMSI: the app\'s managed identity is the bot (no secret anywhere). SingleTenant: an existing app registration (botAppId) whose secret (botAppPassword) goes to Key Vault.')
param botAppType string = 'UserAssignedMSI'

@description('SingleTenant only: the app registration\'s application (client) id.')
param botAppId string = ''

@secure()
@description('SingleTenant only: the app registration\'s client secret; stored in Key Vault, never in app settings.')
param botAppPassword string = ''

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
@description('BOT_TENANT_RATE_PER_SECOND: sends per second per tenant per instance.')
param tenantRatePerSecond int = 50

@description('Optional principal id of a producer (e.g. a Logic App\'s managed identity) allowed to put messages on the outbound queue. Empty = none.')
param producerPrincipalId string = ''

@minValue(40)
@maxValue(1000)
@description('Flex Consumption: maximum number of instances.')
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
@description('Flex Consumption: memory per instance (MB).')
param instanceMemoryMB int = 2048

var isSingleTenant = botAppType == 'SingleTenant'
// fail() stops the deployment early with a clear message instead of a Bot Service validation error.
var checkedBotAppPassword = isSingleTenant && empty(botAppPassword) ? fail('botAppPassword is required when botAppType is SingleTenant.') : botAppPassword

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

// The queue and tables the app uses: OUTBOUND_QUEUE's default and src/store/tables.ts.
// test/infra checks both against the source, so they cannot drift.
var outboundQueueName = 'outbound-messages'
var tableNames = ['conversations', 'userchats', 'deliveries']

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
    botSecretUri: isSingleTenant ? keyVault!.outputs.botSecretUri : ''
    botCloud: botCloud
    tenantRatePerSecond: tenantRatePerSecond
    queueName: outboundQueueName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host needs its storage and telemetry roles before it starts.
  dependsOn: [monitoring, rbac]
}

var messagingEndpoint = 'https://${app.outputs.defaultHostName}/api/messages'

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
