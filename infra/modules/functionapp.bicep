// The Function App on Flex Consumption (Python 3.11): per-function scaling up to
// maximumInstanceCount, zero-downtime rolling updates, and every app setting the code reads
// (shared/settings.py; tests/infra checks they are all here). Every connection is
// identity-based: no key and no connection string holds a secret.

param location string
param baseName string
param tags object

param identityId string
param identityClientId string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string

param appInsightsConnectionString string

param cosmosEndpoint string
param cosmosDatabaseName string
param serviceBusFullyQualifiedNamespace string

param keyVaultName string
param gatewaySecretName string

@description('Base URL of the payment gateway (its API: docs/payment-gateway.md).')
param paymentGatewayUrl string

@description('Entra ID audience of the API tokens: the API app registration\'s client id (v2 tokens).')
param authAudience string

@description('Entra ID v2 issuer of the API tokens (https://login.microsoftonline.com/{tenant}/v2.0).')
param authIssuer string

@allowed([
  'accept'
  'reject'
])
param reservationsWhenPaymentDown string

@description('Upper bound of instances per scaling group (HTTP, each Service Bus and Cosmos DB trigger).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Instances kept warm, e.g. [{ name: \'http\', instanceCount: 1 }]; [] scales to zero.')
param alwaysReady array

@description('Concurrent HTTP requests one instance takes before the platform adds another.')
param httpPerInstanceConcurrency int

@description('Zone-redundant plan (docs/azure-platform.md: the region must offer it, host storage must be ZRS, and at least two always-ready instances run per scaling group).')
param zoneRedundant bool

@description('Circuit breaker, gateway and payment-retry tuning (shared/settings.py defaults).')
param tuning object

var loginEndpoint = environment().authentication.loginEndpoint
var tenantId = tenant().tenantId

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:zone redundancy is a parameter: prod.bicepparam sets it, dev stays in one zone (it costs two always-ready instances per scaling group)
  name: 'plan-${baseName}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-11-01' = {
  //checkov:skip=CKV_AZURE_222:API Management calls the app over its public endpoint (no VNet); every route but health needs a function key that only API Management holds, and non-public routes check an Entra ID token in the app too
  //checkov:skip=CKV_AZURE_17:callers authenticate with Entra ID bearer tokens, not client certificates
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales instances itself; prod keeps always-ready HTTP instances (prod.bicepparam)
  //checkov:skip=CKV_AZURE_213:Flex Consumption has no platform health check; readiness is /api/health/ready, probed by the pipeline after every deployment
  name: 'func-${baseName}'
  location: location
  // azd finds the app `azd deploy` publishes to by this tag (azure.yaml, service `api`).
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
      siteUpdateStrategy: {
        type: 'RollingUpdate'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  //checkov:skip=CKV_AZURE_13:checkov reads this appsettings resource as web config; identity is Entra ID tokens checked by API Management and the app
  //checkov:skip=CKV_AZURE_63:checkov reads this appsettings resource as web config; Functions logs and requests go to Application Insights
  //checkov:skip=CKV_AZURE_65:checkov reads this appsettings resource as web config; Functions logs and requests go to Application Insights
  //checkov:skip=CKV_AZURE_66:checkov reads this appsettings resource as web config; Functions logs and requests go to Application Insights
  //checkov:skip=CKV_AZURE_80:checkov reads this appsettings resource as web config; the app is Python, not .NET
  //checkov:skip=CKV_AZURE_88:checkov reads this appsettings resource as web config; Flex Consumption deploys from blob storage, not Azure Files
  //checkov:skip=CKV_AZURE_222:checkov reads this appsettings resource as web config; see the site above
  parent: site
  name: 'appsettings'
  properties: {
    // Functions host: its own storage and telemetry, as the managed identity.
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // Traces (host.json telemetryMode OpenTelemetry): the worker hands each invocation the
    // host's trace context; the app exports its spans with the Azure Monitor distro
    // (shared/adapters/azure_monitor.py, docs/observability.md).
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    // Every trace kept: unset, the distro keeps 5 traces a second, and most sagas under load
    // could not be found by their id. Application Insights' sampler decides by trace id, so a
    // lower ratio keeps or drops a saga's hops together (docs/observability.md).
    OTEL_TRACES_SAMPLER: 'microsoft.fixed_percentage'
    OTEL_TRACES_SAMPLER_ARG: '1.0'
    AZURE_CLIENT_ID: identityClientId

    // Cosmos DB and Service Bus: trigger connections and the app's own clients.
    CosmosDBConnection__accountEndpoint: cosmosEndpoint
    CosmosDBConnection__credential: 'managedidentity'
    CosmosDBConnection__clientId: identityClientId
    COSMOS_DATABASE: cosmosDatabaseName
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identityClientId

    // Identity: Entra ID v2 access tokens (RS256) for the API; without all three the app
    // refuses every authenticated request (docs/security.md, "Identity: fails closed"). The
    // scope is the app registration's.
    AUTH_JWKS_URL: '${loginEndpoint}${tenantId}/discovery/v2.0/keys'
    AUTH_ISSUER: authIssuer
    AUTH_AUDIENCE: authAudience
    AUTH_SCOPE: 'OuterPark.Use'

    // Payment gateway, its circuit breaker and the pay-later retries.
    PAYMENT_GATEWAY_URL: paymentGatewayUrl
    PAYMENT_GATEWAY_SECRET_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${gatewaySecretName})'
    GATEWAY_TIMEOUT_SECONDS: string(tuning.gatewayTimeoutSeconds)
    BREAKER_FAILURE_THRESHOLD: string(tuning.breakerFailureThreshold)
    BREAKER_OPEN_SECONDS: string(tuning.breakerOpenSeconds)
    BREAKER_HALF_OPEN_PROBES: string(tuning.breakerHalfOpenProbes)
    BREAKER_CACHE_SECONDS: string(tuning.breakerCacheSeconds)
    PAYMENT_RETRY_BASE_SECONDS: string(tuning.paymentRetryBaseSeconds)
    PAYMENT_RETRY_MAX_SECONDS: string(tuning.paymentRetryMaxSeconds)
    RESERVATIONS_WHEN_PAYMENT_DOWN: reservationsWhenPaymentDown

    // Notifications.
    NOTICE_SENDER: 'log'

    // Time: the payment deadline and the saga sweeper's timer (defaults of shared/settings.py).
    PAYMENT_DEADLINE_SECONDS: '86400'
    SAGA_SWEEP_SCHEDULE: '*/30 * * * * *'
    SAGA_REPAIR_AFTER_SECONDS: '180'
  }
}

// No basic-auth publishing: deployments authenticate with Entra ID (the pipeline's service
// connection), never with SCM or FTP user names and passwords.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
