// Development: serverless Cosmos DB, scale to zero, a small API Management.
using './main.bicep'

param environmentName = 'dev'
param cosmosServerless = true
param functionMaximumInstanceCount = 40
param functionInstanceMemoryMB = 2048
param functionAlwaysReady = []
param apimSku = 'BasicV2'
param apimPublisherEmail = readEnvironmentVariable('APIM_PUBLISHER_EMAIL', 'outerpark-dev@example.com')
param corsAllowedOrigins = [
  'http://localhost:3000'
]
// The API app registration's client id (infra/scripts/entra-app.sh prints it): v2 tokens carry
// it as their audience. No default: a deployment without it fails instead of checking nothing.
param authAudience = readEnvironmentVariable('AUTH_AUDIENCE')
// The host key API Management sends (pipeline variable functionKeyName); a new name rotates
// it without downtime (docs/security.md).
param functionKeyName = readEnvironmentVariable('FUNCTION_KEY_NAME', 'default')
param paymentGatewayUrl = readEnvironmentVariable('PAYMENT_GATEWAY_URL', 'https://pg-sandbox.example.com')
param paymentGatewaySecretKey = readEnvironmentVariable('PAYMENT_GATEWAY_SECRET_KEY', '')
param logRetentionInDays = 30
