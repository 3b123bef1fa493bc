// OuterPark: every Azure resource of one environment, in one resource group.
// Deployed by azure-pipelines.yml with dev.bicepparam or prod.bicepparam (docs/deploy.md).

targetScope = 'resourceGroup'

@allowed([
  'dev'
  'prod'
])
param environmentName string

param location string = resourceGroup().location

// --- Cosmos DB
@description('Serverless (dev) or autoscale throughput shared by the database (prod).')
param cosmosServerless bool
param cosmosAutoscaleMaxThroughput int = 4000
param cosmosFailoverLocation string = ''
@description('Spread each Cosmos DB region over availability zones (the regions must offer them).')
param cosmosZoneRedundant bool = false

// --- Function App (Flex Consumption)
param functionMaximumInstanceCount int
param functionInstanceMemoryMB int = 2048
param functionAlwaysReady array = []
param httpPerInstanceConcurrency int = 16
@description('Spread the Flex Consumption instances over availability zones (regions: az functionapp list-flexconsumption-locations --zone-redundant=true). The platform then keeps at least two always-ready instances per scaling group, billed as always-ready.')
param functionZoneRedundant bool = false

// --- API Management
@allowed([
  'BasicV2'
  'StandardV2'
])
param apimSku string
param apimPublisherEmail string
param apimPublisherName string = 'OuterPark'
param corsAllowedOrigins array
param rateLimitCalls int = 120
@minValue(1)
@maxValue(300)
param rateLimitPeriodSeconds int = 60
@description('Name of the Function App host key API Management sends. Rotation moves it to a new key, so that the old one stays valid until the gateway holds the new one (docs/security.md).')
param functionKeyName string = 'default'

// --- App behaviour
@description('Entra ID audience of the API tokens: the API app registration\'s client id (it issues v2 tokens: infra/scripts/entra-app.sh).')
param authAudience string
param paymentGatewayUrl string
@allowed([
  'accept'
  'reject'
])
param reservationsWhenPaymentDown string = 'accept'
@description('Circuit breaker, gateway and retry tuning; defaults are those of shared/settings.py.')
param tuning object = {
  gatewayTimeoutSeconds: 3
  breakerFailureThreshold: 5
  breakerOpenSeconds: 10
  breakerHalfOpenProbes: 1
  breakerCacheSeconds: 1
  paymentRetryBaseSeconds: 1
  paymentRetryMaxSeconds: 20
}

@secure()
@description('Payment gateway secret key, from a secret pipeline variable; empty keeps the stored one.')
param paymentGatewaySecretKey string = ''

// --- Operations
param logRetentionInDays int = 30
@description('Who the alerts email (docs/runbook.md); defaults to the API publisher address.')
param operatorEmail string = apimPublisherEmail

var baseName = 'outerpark-${environmentName}'
var suffix = uniqueString(resourceGroup().id)
var tags = {
  application: 'outerpark'
  environment: environmentName
}
var deploymentContainerName = 'app-package'
var gatewaySecretName = 'payment-gateway-secret-key'
// Entra ID v2 tokens' issuer: the app (AUTH_ISSUER) and API Management's validate-jwt use it alike.
var authIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    baseName: baseName
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    baseName: baseName
    tags: tags
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    location: location
    baseName: '${baseName}-${suffix}'
    tags: tags
    serverless: cosmosServerless
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    failoverLocation: cosmosFailoverLocation
    zoneRedundant: cosmosZoneRedundant
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    baseName: '${baseName}-${suffix}'
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    accountName: take('stop${environmentName}${suffix}', 24)
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    baseName: baseName
    tags: tags
    vaultName: take('kv-op-${environmentName}-${suffix}', 24)
    paymentGatewaySecretKey: paymentGatewaySecretKey
    secretName: gatewaySecretName
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    cosmosAccountName: cosmos.outputs.accountName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    keyVaultName: keyVault.outputs.name
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    serviceBusTriggerSubscriptions: serviceBus.outputs.subscriptions
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    baseName: '${baseName}-${suffix}'
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    keyVaultName: keyVault.outputs.name
    gatewaySecretName: gatewaySecretName
    paymentGatewayUrl: paymentGatewayUrl
    authAudience: authAudience
    authIssuer: authIssuer
    reservationsWhenPaymentDown: reservationsWhenPaymentDown
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    alwaysReady: functionAlwaysReady
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    zoneRedundant: functionZoneRedundant
    tuning: tuning
  }
  // The app starts with its roles in place (storage, bus, Cosmos DB, Key Vault reference).
  dependsOn: [
    rbac
  ]
}

module apim 'modules/apim.bicep' = {
  name: 'apim'
  params: {
    location: location
    baseName: '${baseName}-${suffix}'
    tags: tags
    skuName: apimSku
    publisherEmail: apimPublisherEmail
    publisherName: apimPublisherName
    functionAppHostName: functionApp.outputs.defaultHostName
    functionAppName: functionApp.outputs.name
    keyVaultName: keyVault.outputs.name
    functionKeyName: functionKeyName
    authAudience: authAudience
    authIssuer: authIssuer
    corsAllowedOrigins: corsAllowedOrigins
    rateLimitCalls: rateLimitCalls
    rateLimitPeriodSeconds: rateLimitPeriodSeconds
  }
}

module operations 'modules/operations.bicep' = {
  name: 'operations'
  params: {
    location: location
    baseName: baseName
    tags: tags
    operatorEmail: operatorEmail
    workspaceId: monitoring.outputs.workspaceId
    appInsightsName: monitoring.outputs.appInsightsName
    cosmosAccountName: cosmos.outputs.accountName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    keyVaultName: keyVault.outputs.name
    apimName: apim.outputs.name
  }
}

output resourceGroupName string = resourceGroup().name
output functionAppName string = functionApp.outputs.name
output apimGatewayUrl string = apim.outputs.gatewayUrl
output cosmosAccountName string = cosmos.outputs.accountName
output serviceBusNamespaceName string = serviceBus.outputs.namespaceName
output keyVaultName string = keyVault.outputs.name
// For the pipeline's wait on the identity's new storage role (infra/scripts/wait-for-roles.sh).
output identityPrincipalId string = identity.outputs.principalId
output storageAccountId string = storage.outputs.id
