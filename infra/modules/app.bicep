// The Function App on the Flex Consumption plan (FC1). Linux, Node 22, one app per plan.
// App settings are exactly what src/config.ts reads (SETTINGS, `deployed: true`) plus the host's
// Application Insights settings; test/infra checks the list against SETTINGS.
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
@description('Versionless Key Vault secret URI of the bot secret (SingleTenant); empty for UserAssignedMSI.')
param botSecretUri string
@allowed(['public', 'gcc', 'gcchigh', 'dod'])
param botCloud string
param tenantRatePerSecond int
param queueName string
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int

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
        // Each instance keeps its own per-tenant send rate (BOT_TENANT_RATE_PER_SECOND), so this also
        // bounds the total rate a tenant can see.
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
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
        // A Key Vault reference for SingleTenant bots; empty for UserAssignedMSI, where the config
        // module treats an empty setting as unset (a password next to a managed identity is an error).
        {
          name: 'MicrosoftAppPassword'
          value: empty(botSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${botSecretUri})'
        }
        { name: 'BOT_CLOUD', value: botCloud }
        { name: 'BOT_TENANT_RATE_PER_SECOND', value: string(tenantRatePerSecond) }
        { name: 'OUTBOUND_QUEUE', value: queueName }
      ]
    }
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
