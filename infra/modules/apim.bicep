// API Management in front of the Function App: the API imported from the OpenAPI 3.0.3 rendering
// of the repository's openapi.yaml (infra/scripts/openapi30.py writes it at build time), with the
// policy of policies/api.xml (Entra ID tokens, per-caller rate limit, correlation id, CORS, 64 KiB
// bodies). The tier is a v2 one: rate-limit-by-key is not offered on Consumption.
//
// The only door: the Function App's HTTP functions are `function`-level (function_app.py), so
// Azure's Functions host answers 401 to a caller without a key. The app's host key named by
// functionKeyName is copied into Key Vault here, and API Management sends it as x-functions-key on
// every call to the backend, from a Key Vault-backed named value read as the gateway's own
// identity. Rotation: docs/security.md.

param location string
param baseName string
param tags object

@allowed([
  'BasicV2'
  'StandardV2'
])
param skuName string

param publisherEmail string
param publisherName string

@description('Host name of the Function App the API forwards to.')
param functionAppHostName string

@description('Name of the Function App, whose host key API Management sends.')
param functionAppName string

@description('Key Vault that keeps the Function App key API Management sends.')
param keyVaultName string

@description('Name of the Function App host key API Management sends (docs/security.md: rotation).')
param functionKeyName string

@description('Entra ID audience of the API tokens: the API app registration\'s client id (v2 tokens).')
param authAudience string

@description('Entra ID v2 issuer of the API tokens; the app setting AUTH_ISSUER is the same value.')
param authIssuer string

@description('Origins browsers may call the API from.')
param corsAllowedOrigins array

@description('Calls one caller may make per rate-limit period.')
param rateLimitCalls int

@description('Rate-limit period in seconds (rate-limit-by-key renewal-period: at most 300).')
@minValue(1)
@maxValue(300)
param rateLimitPeriodSeconds int

var backendId = 'outerpark-functions'
var loginEndpoint = environment().authentication.loginEndpoint
var tenantId = tenant().tenantId
var functionKeySecretName = 'functions-host-key'
var functionKeyNamedValue = 'outerpark-functions-key'
// Key Vault Secrets User: read secret values.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

// The policy's {{named values}}: visible and changeable in the portal without editing the XML.
var namedValues = {
  'outerpark-openid-config-url': '${loginEndpoint}${tenantId}/v2.0/.well-known/openid-configuration'
  'outerpark-issuer': authIssuer
  'outerpark-audience': authAudience
  'outerpark-rate-limit-calls': string(rateLimitCalls)
  'outerpark-rate-limit-period': string(rateLimitPeriodSeconds)
}

var corsOrigins = '<origin>${join(corsAllowedOrigins, '</origin><origin>')}</origin>'
var policyXml = replace(loadTextContent('../policies/api.xml'), '__CORS_ORIGINS__', corsOrigins)

resource service 'Microsoft.ApiManagement/service@2024-05-01' = {
  //checkov:skip=CKV_AZURE_107:the gateway is the public entry point by design (Basic/Standard v2 without VNet injection)
  //checkov:skip=CKV_AZURE_174:the gateway is the public entry point by design
  name: 'apim-${baseName}'
  location: location
  tags: tags
  sku: {
    name: skuName
    capacity: 1
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
    customProperties: {
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls10': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls11': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Ssl30': 'false'
    }
  }
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' existing = {
  name: functionAppName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The Function App's host key named functionKeyName, kept in Key Vault; written again by every
// deployment, so the secret always holds the key the deployment names. A name the app does not
// have fails the deployment instead of storing a key that the app would refuse.
resource functionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:the Functions host sets the key; it is rotated as docs/security.md says
  parent: vault
  name: functionKeySecretName
  properties: {
    value: listKeys('${functionApp.id}/host/default', '2024-11-01').functionKeys[functionKeyName]
    contentType: 'text/plain'
  }
}

resource gatewayReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, service.id, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: service.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

resource functionKey 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: service
  name: functionKeyNamedValue
  properties: {
    displayName: functionKeyNamedValue
    secret: true
    keyVault: {
      secretIdentifier: '${vault.properties.vaultUri}secrets/${functionKeySecretName}'
    }
  }
  dependsOn: [
    functionKeySecret
    gatewayReadsSecrets
  ]
}

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: service
  name: backendId
  properties: {
    description: 'OuterPark Function App'
    protocol: 'http'
    url: 'https://${functionAppHostName}/api'
    credentials: {
      header: {
        'x-functions-key': [
          '{{${functionKeyNamedValue}}}'
        ]
      }
    }
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
  dependsOn: [
    functionKey
  ]
}

resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: service
  name: 'outerpark'
  properties: {
    displayName: 'OuterPark'
    path: 'api'
    protocols: [
      'https'
    ]
    subscriptionRequired: false
    // OpenAPI 3.1 imports only in part (docs/azure-platform.md): the build renders it as 3.0.3.
    format: 'openapi+json'
    value: loadTextContent('../generated/openapi30.json')
  }
}

resource policyValues 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = [
  for item in items(namedValues): {
    parent: service
    name: item.key
    properties: {
      displayName: item.key
      value: item.value
      secret: false
    }
  }
]

resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: policyXml
  }
  dependsOn: [
    backend
    policyValues
  ]
}

output name string = service.name
output gatewayUrl string = service.properties.gatewayUrl
