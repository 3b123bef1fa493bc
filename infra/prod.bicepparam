// Production: autoscale Cosmos DB, zone redundant, with a failover region (required: the
// variable group's cosmosFailoverLocation; without it this file does not compile), a warm HTTP
// instance, Standard v2 API Management.
using './main.bicep'

param environmentName = 'prod'
param cosmosServerless = false
param cosmosAutoscaleMaxThroughput = 10000
param cosmosFailoverLocation = readEnvironmentVariable('COSMOS_FAILOVER_LOCATION')
param cosmosZoneRedundant = true
param functionMaximumInstanceCount = 200
// Zone redundant: the platform keeps two always-ready instances per scaling group (docs/deploy.md).
param functionZoneRedundant = true
param functionInstanceMemoryMB = 2048
param functionAlwaysReady = [
  {
    name: 'http'
    instanceCount: 2
  }
]
param httpPerInstanceConcurrency = 16
param apimSku = 'StandardV2'
param apimPublisherEmail = readEnvironmentVariable('APIM_PUBLISHER_EMAIL', 'outerpark@example.com')
param corsAllowedOrigins = [
  'https://www.outerpark.example'
]
param rateLimitCalls = 120
param rateLimitPeriodSeconds = 60
// The API app registration's client id (infra/scripts/entra-app.sh prints it): v2 tokens carry
// it as their audience. No default: a deployment without it fails instead of checking nothing.
param authAudience = readEnvironmentVariable('AUTH_AUDIENCE')
// The host key API Management sends (pipeline variable functionKeyName); a new name rotates
// it without downtime (docs/security.md).
param functionKeyName = readEnvironmentVariable('FUNCTION_KEY_NAME', 'default')
param paymentGatewayUrl = readEnvironmentVariable('PAYMENT_GATEWAY_URL', 'https://pg.example.com')
param paymentGatewaySecretKey = readEnvironmentVariable('PAYMENT_GATEWAY_SECRET_KEY', '')
param reservationsWhenPaymentDown = 'accept'
param logRetentionInDays = 90
