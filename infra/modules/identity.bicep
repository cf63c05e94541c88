// The one identity of the app: host storage, the queue trigger, the tables, Application Insights,
// Key Vault references and (for UserAssignedMSI bots) the bot's own credential.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
