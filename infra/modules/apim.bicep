// API Management in front of the Function App: the API imported from the OpenAPI 3.0.3 rendering
// of the repository's openapi.yaml (infra/scripts/openapi30.py writes it at build time), with the policy of policies/api.xml (Entra ID tokens, per-caller rate limit,
// correlation id, CORS). The tier is a v2 one: rate-limit-by-key is not offered on Consumption.

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

@description('Entra ID audience of the API tokens.')
param authAudience string

@description('Origins browsers may call the API from.')
param corsAllowedOrigins array

@description('Calls one caller may make per rate-limit period.')
param rateLimitCalls int

@description('Rate-limit period in seconds.')
param rateLimitPeriodSeconds int

var backendId = 'outerpark-functions'
var loginEndpoint = environment().authentication.loginEndpoint
var tenantId = tenant().tenantId

// The policy's {{named values}}: visible and changeable in the portal without editing the XML.
var namedValues = {
  'outerpark-openid-config-url': '${loginEndpoint}${tenantId}/v2.0/.well-known/openid-configuration'
  'outerpark-issuer': '${loginEndpoint}${tenantId}/v2.0'
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

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: service
  name: backendId
  properties: {
    description: 'OuterPark Function App'
    protocol: 'http'
    url: 'https://${functionAppHostName}/api'
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
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
