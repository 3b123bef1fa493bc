// Key Vault (RBAC authorisation) holding the payment gateway's secret key. The app reads it
// through a Key Vault reference in its app settings, as its managed identity.

param location string
param baseName string
param tags object

@description('Globally unique, 3-24 characters.')
param vaultName string

@secure()
@description('The gateway secret key; empty leaves the secret as it is (set out of band).')
param paymentGatewaySecretKey string

@description('Name of the secret the app setting PAYMENT_GATEWAY_SECRET_KEY refers to.')
param secretName string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  //checkov:skip=CKV_AZURE_189:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  name: vaultName
  location: location
  tags: union(tags, {
    workload: baseName
  })
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource gatewaySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(paymentGatewaySecretKey)) {
  //checkov:skip=CKV_AZURE_41:the payment provider sets the key's lifetime; it is rotated by setting the secret again (docs/deploy.md)
  //checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not read properties of a conditional resource
  parent: vault
  name: secretName
  properties: {
    value: paymentGatewaySecretKey
    contentType: 'text/plain'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
