// One storage account for everything: the Functions host (blobs), the Flex deployment package
// (a blob container), the outbound queue and its poison queue, and the app's tables.
// Identity-only: shared keys are off, so no connection string with a key exists anywhere.
param name string
param location string
param tags object
param deploymentContainerName string
@description('The queue the sender reads; the Functions host moves failed messages to <name>-poison.')
param queueName string
@description('The tables the app uses (src/store/tables.ts).')
param tableNames string[]

resource storage 'Microsoft.Storage/storageAccounts@2026-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    // Public endpoint, Entra-authorized: the Flex app (no VNet here), a Logic App's managed
    // connector and the az CLI all reach it. Add private endpoints + a VNet to close it.
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }

  resource queueServices 'queueServices' = {
    name: 'default'

    resource queue 'queues' = {
      name: queueName
    }

    // Created up front so that the producer and operators can peek it before the first failure.
    resource poisonQueue 'queues' = {
      name: '${queueName}-poison'
    }
  }

  resource tableServices 'tableServices' = {
    name: 'default'

    resource tables 'tables' = [
      for tableName in tableNames: {
        name: tableName
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
output queueName string = storage::queueServices::queue.name
output poisonQueueName string = storage::queueServices::poisonQueue.name
