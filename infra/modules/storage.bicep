// The Function App's storage: the host's own state (AzureWebJobsStorage, identity-based) and the
// blob container Flex Consumption deploys the app package from. Shared keys are off.

param location string
param tags object

@description('Globally unique, 3-24 lowercase letters and digits.')
param accountName string

@description('Blob container the deployment package is uploaded to.')
param deploymentContainerName string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  //checkov:skip=CKV_AZURE_59:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  //checkov:skip=CKV_AZURE_206:ZRS survives a zone loss; the host's state and the package are rebuilt from the pipeline artifact, so geo-replication buys nothing
  //checkov:skip=CKV_AZURE_43:the name is built in main.bicep with take(..., 24) from lowercase letters and digits; checkov cannot evaluate a parameter
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
