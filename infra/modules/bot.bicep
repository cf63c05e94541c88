// The Azure Bot registration (global) and its Microsoft Teams channel. Azure Bot Service only
// stores the bot's identity and messaging endpoint: Teams calls the endpoint directly.
param name string
param displayName string
param tags object
@allowed(['UserAssignedMSI', 'SingleTenant'])
param appType string
@description('The identity client id (UserAssignedMSI) or the app registration id (SingleTenant).')
param appId string
@description('Resource id of the user-assigned identity; used only for UserAssignedMSI bots.')
param identityId string
param tenantId string
param messagingEndpoint string
@allowed(['F0', 'S1'])
param sku string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: { name: sku }
  properties: {
    displayName: displayName
    endpoint: messagingEndpoint
    // Type, app id and tenant are fixed when the bot is created: a later change fails the deployment
    // ("'MsaAppType' property cannot be changed"), so switching botAppType means deleting the bot
    // first (docs/deploy.md, "Troubleshooting"). An app id also belongs to one bot only.
    msaAppType: appType
    msaAppId: appId
    msaAppTenantId: tenantId
    // Multi-tenant registrations can no longer be created; both supported types are tenant-bound.
    msaAppMSIResourceId: appType == 'UserAssignedMSI' ? identityId : null
  }

  resource teams 'channels' = {
    name: 'MsTeamsChannel'
    location: 'global'
    properties: {
      channelName: 'MsTeamsChannel'
      properties: {
        isEnabled: true
        // Reportedly required for the channel to pass Teams app validation.
        acceptedTerms: true
      }
    }
  }
}

output name string = bot.name
