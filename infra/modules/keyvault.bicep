// SingleTenant bots only: the app registration's client secret, kept in an RBAC-authorized vault.
// The app reads it through a Key Vault reference (`@Microsoft.KeyVault(SecretUri=...)`) resolved by
// App Service with the user-assigned identity, so the secret never appears in app settings,
// deployment outputs or logs. Rotate by writing a new version; App Service picks it up within 24 h
// (or on restart).
param name string
param location string
param tags object
@secure()
@description('The bot app registration client secret.')
param botAppPassword string

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // App Service resolves Key Vault references over the public endpoint (no VNet here).
    publicNetworkAccess: 'Enabled'
  }

  resource botPassword 'secrets' = {
    name: 'bot-app-password'
    properties: {
      value: botAppPassword
      contentType: 'Bot app registration client secret (MicrosoftAppPassword)'
    }
  }
}

output name string = vault.name
output id string = vault.id
// The versionless secret URI (App Service follows the latest version). A URI, not the secret.
output botSecretUri string = vault::botPassword.properties.secretUri
