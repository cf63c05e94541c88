// The Function App on the Flex Consumption plan (FC1). Linux, Node 22, one app per plan.
// App settings are exactly what src/config.ts reads (SETTINGS) plus the host's Application Insights
// settings; test/infra checks the list against SETTINGS. The template writes the whole list, so every
// setting a user may set comes in as a parameter (empty = not set): anything added by hand in the
// portal is gone after the next deployment.
// Not set, because Flex forbids or ignores them: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION
// (runtime comes from functionAppConfig.runtime), WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*,
// SCM_DO_BUILD_DURING_DEPLOYMENT, ENABLE_ORYX_BUILD, WEBSITE_TIME_ZONE.
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerUrl string
@description('The Application Insights component; its connection string is read here, not passed around as an output.')
param applicationInsightsName string
@description('MicrosoftAppType: UserAssignedMSI (the identity is the bot) or SingleTenant (an app registration).')
@allowed(['UserAssignedMSI', 'SingleTenant'])
param botAppType string
@description('MicrosoftAppId: the identity client id (UserAssignedMSI) or the app registration id (SingleTenant).')
param botAppId string
@description('Versionless Key Vault secret URI of the bot secret (SingleTenant); empty = none.')
param botSecretUri string
@description('Versionless Key Vault secret URI of the bot certificate PEM (SingleTenant); empty = none.')
param botCertificateUri string
@allowed(['public', 'gcc', 'gcchigh', 'dod'])
param botCloud string
param botOpenIdMetadataUrl string
param botAuthorityHost string
param botOAuthScope string
param botTrustedServiceUrls string
param botGlobalServiceUrl string
@description('Sends per second to one tenant, all instances together.')
param tenantRatePerSecond int
param queueName string
param deliveryMaxAttempts int
@description('Milliseconds.')
param connectorTimeoutMs int
param teamsAppCatalogId string
param graphBaseUrl string
param batchMembersPerRequest int
param batchPollIntervalMs int
param welcomeMessage string
@description('Adaptive Card JSON text; empty = none.')
param welcomeCard string
param flowAuthAudience string
param flowAuthTenantId string
@description('JSON text; empty = not set.')
param flowCallers string
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@minValue(0)
@maxValue(1000)
param alwaysReadyHttpInstances int

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  // azd deploys `services.api` (azure.yaml) to the resource carrying this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (MicrosoftAppPassword) are resolved with the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        // Per function group: the HTTP functions scale together, the queue sender on its own. The
        // per-tenant send rate (BOT_TENANT_RATE_PER_SECOND) is one budget shared by all instances,
        // so the cap bounds polling and contention, not the rate a tenant sees.
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // An always-ready HTTP instance answers the Bot Connector without a cold start, and is billed
        // all the time (docs/deploy.md, "Costs"). An empty list clears an earlier setting.
        alwaysReady: alwaysReadyHttpInstances > 0 ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
      }
      runtime: { name: 'node', version: '22' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        // Host storage, the queue trigger and the app's own clients: identity-based, with the
        // user-assigned identity. `__credential` and `__clientId` are both required with a UAMI, or
        // the scale controller cannot read the queue (azure-functions-host#10904).
        { name: 'AzureWebJobsStorage__blobServiceUri', value: storageBlobEndpoint }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: storageQueueEndpoint }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: storageTableEndpoint }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'MicrosoftAppType', value: botAppType }
        { name: 'MicrosoftAppId', value: botAppId }
        { name: 'MicrosoftAppTenantId', value: tenant().tenantId }
        // Key Vault references for SingleTenant bots; empty otherwise, and the config module treats an
        // empty setting as unset (a password next to a managed identity is an error). A reference that
        // does not resolve reaches the app as the literal `@Microsoft.KeyVault(...)` text, which
        // loadConfig refuses, naming the setting.
        {
          name: 'MicrosoftAppPassword'
          value: empty(botSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${botSecretUri})'
        }
        {
          name: 'BOT_CERTIFICATE'
          value: empty(botCertificateUri) ? '' : '@Microsoft.KeyVault(SecretUri=${botCertificateUri})'
        }
        { name: 'BOT_CLOUD', value: botCloud }
        { name: 'BOT_OPENID_METADATA_URL', value: botOpenIdMetadataUrl }
        { name: 'BOT_AUTHORITY_HOST', value: botAuthorityHost }
        { name: 'BOT_OAUTH_SCOPE', value: botOAuthScope }
        { name: 'BOT_TRUSTED_SERVICE_URLS', value: botTrustedServiceUrls }
        { name: 'BOT_GLOBAL_SERVICE_URL', value: botGlobalServiceUrl }
        { name: 'BOT_TENANT_RATE_PER_SECOND', value: string(tenantRatePerSecond) }
        { name: 'OUTBOUND_QUEUE', value: queueName }
        { name: 'DELIVERY_MAX_ATTEMPTS', value: string(deliveryMaxAttempts) }
        { name: 'CONNECTOR_TIMEOUT_MS', value: string(connectorTimeoutMs) }
        { name: 'TEAMS_APP_CATALOG_ID', value: teamsAppCatalogId }
        { name: 'GRAPH_BASE_URL', value: graphBaseUrl }
        { name: 'BATCH_MEMBERS_PER_REQUEST', value: string(batchMembersPerRequest) }
        { name: 'BATCH_POLL_INTERVAL_MS', value: string(batchPollIntervalMs) }
        { name: 'WELCOME_MESSAGE', value: welcomeMessage }
        { name: 'WELCOME_CARD', value: welcomeCard }
        { name: 'FLOW_AUTH_AUDIENCE', value: flowAuthAudience }
        { name: 'FLOW_AUTH_TENANT_ID', value: flowAuthTenantId }
        { name: 'FLOW_CALLERS', value: flowCallers }
      ]
    }
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
