// SingleTenant bots only: the app registration's credential (client secret and/or certificate),
// kept in an RBAC-authorized vault. The app reads it through Key Vault references
// (`@Microsoft.KeyVault(SecretUri=...)`) resolved by App Service with the user-assigned identity, so
// the credential never appears in app settings, deployment outputs or logs. Rotate by writing a new
// version; App Service picks it up within 24 h (or on restart).
// Soft delete keeps a deleted vault's name taken for softDeleteRetentionInDays (7, the minimum):
// after `az group delete` or `azd down` without --purge, recover or purge it before redeploying
// (docs/deploy.md, "Troubleshooting").
param name string
param location string
param tags object
@secure()
@description('The bot app registration client secret; empty = none.')
param botAppPassword string
@secure()
@description('The bot app registration certificate and private key (PEM text); empty = none.')
param botCertificate string
// Plain flags for what was given: outputs may not depend on secure values, not even on their emptiness.
@description('True when botAppPassword is not empty.')
param hasBotAppPassword bool
@description('True when botCertificate is not empty.')
param hasBotCertificate bool

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

  resource botPassword 'secrets' = if (hasBotAppPassword) {
    name: 'bot-app-password'
    properties: {
      value: botAppPassword
      contentType: 'Bot app registration client secret (MicrosoftAppPassword)'
    }
  }

  resource botCertificatePem 'secrets' = if (hasBotCertificate) {
    name: 'bot-certificate'
    properties: {
      value: botCertificate
      contentType: 'Bot app registration certificate and private key, PEM (BOT_CERTIFICATE)'
    }
  }
}

output name string = vault.name
output id string = vault.id
// Versionless secret URIs (App Service follows the latest version); empty when not given. URIs, not
// the secrets.
output botSecretUri string = hasBotAppPassword ? vault::botPassword!.properties.secretUri : ''
output botCertificateUri string = hasBotCertificate ? vault::botCertificatePem!.properties.secretUri : ''
