// The user-assigned managed identity the Function App runs as. User-assigned (not system-assigned)
// so that every role assignment exists before the app's first start, and survives re-creating it.

param location string
param baseName string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${baseName}'
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
