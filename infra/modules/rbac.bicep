// Every role assignment of the deployment, in one place. Data roles only: management roles such
// as Owner or Contributor grant no access to blob, queue or table data.
// Role definition ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
param storageAccountName string
param queueName string
param applicationInsightsName string
@description('Key Vault holding the bot secret (SingleTenant bots); empty = none.')
param keyVaultName string
@description('Name of the app\'s user-assigned identity.')
param appIdentityName string
@description('Optional: principal id of a producer (e.g. a Logic App\'s managed identity) allowed to enqueue jobs; empty = none.')
param producerPrincipalId string
@description('Optional: principal id of the deployer (azd: AZURE_PRINCIPAL_ID), for the docs\' az CLI steps; empty = none.')
param deployerPrincipalId string
@description('User, Group or ServicePrincipal; empty = Azure looks the type up (the deployer exists already, so the lookup cannot miss).')
@allowed(['', 'User', 'Group', 'ServicePrincipal'])
param deployerPrincipalType string

// A fixed 'User' failed for a service principal running the CLI path; null lets Azure look it up.
var deployerType = empty(deployerPrincipalType) ? null : deployerPrincipalType

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  storageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource storage 'Microsoft.Storage/storageAccounts@2026-06-01' existing = {
  name: storageAccountName

  resource queueServices 'queueServices' existing = {
    name: 'default'

    resource queue 'queues' existing = {
      name: queueName
    }
  }
}

// Names (not principal ids) come in so that every assignment name is known before deployment
// (what-if); the principal id is read here.
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: appIdentityName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' existing = if (!empty(keyVaultName)) {
  name: keyVaultName
}

// --- The app's identity -------------------------------------------------------------------------

// Functions host (AzureWebJobsStorage__blobServiceUri): leases, host keys and the azure-webjobs-*
// containers it creates; Flex Consumption also reads the deployment package container with it.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Queue trigger + the app's own queue writes. The trigger alone needs Queue Data Reader + Queue Data
// Message Processor, but the app also re-enqueues retries with a delay and writes the poison queue
// itself (Message Sender), and the host creates `<queue>-poison` if it is missing (queue create,
// which only Contributor grants). Queue Data Contributor is the one role covering read, process,
// add and create, scoped to this account, which holds nothing but the app's queues.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The store (src/store): conversation references, the user -> chat index and delivery records.
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Application Insights with local auth disabled: the host sends telemetry with an Entra token
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING=ClientId=<identity>;Authorization=AAD).
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appIdentity.id, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// SingleTenant bots: App Service resolves the MicrosoftAppPassword Key Vault reference with the
// app's identity (keyVaultReferenceIdentity). Read-only on secret values, this vault only.
resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(keyVaultName)) {
  name: guid(vault.id, appIdentity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- Optional producer --------------------------------------------------------------------------

// A producer (e.g. a Logic App's managed identity with the Azure Queues connector) may only add
// messages, and only to the outbound queue: it cannot read, delete or see other queues.
resource producerQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(producerPrincipalId)) {
  name: guid(storage::queueServices::queue.id, producerPrincipalId, roles.storageQueueDataMessageSender)
  scope: storage::queueServices::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: producerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- Optional deployer (docs/deploy.md) ---------------------------------------------------------

// The deployer sends the first job with `az storage message put --auth-mode login`.
resource deployerQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage::queueServices::queue.id, deployerPrincipalId, roles.storageQueueDataMessageSender)
  scope: storage::queueServices::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: deployerPrincipalId
    principalType: deployerType
  }
}

// The deployer peeks the queue and its poison queue (`az storage message peek`) without consuming.
resource deployerQueueReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roles.storageQueueDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataReader)
    principalId: deployerPrincipalId
    principalType: deployerType
  }
}

// The deployer reads delivery records (`az storage entity query --table-name deliveries`).
resource deployerTableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roles.storageTableDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
    principalId: deployerPrincipalId
    principalType: deployerType
  }
}
