// What operators are told (docs/runbook.md): one action group, the alerts that page it, the
// diagnostic settings that send Cosmos DB, Service Bus, Key Vault and API Management logs to
// the workspace, and API Management's logger to Application Insights with its managed identity.
// Log alerts match the log lines of shared/breaker.py and shared/operator_signals.py.

param location string
param baseName string
param tags object

@description('Who the action group emails; empty: alerts fire and show in the portal only.')
param operatorEmail string

param workspaceId string
param appInsightsName string
param cosmosAccountName string
param serviceBusNamespaceName string
param keyVaultName string
param apimName string

@description('Alert when more than this percent of requests of a 5-minute window answer 5xx.')
param http5xxPercent int = 5

@description('Alert when the payment gateway breaker stays open longer than this (minutes).')
param breakerOpenMinutes int = 15

@description('The reconciler reports reservations Reserved longer than this (seconds); alert on any.')
param reservedOverdueSeconds int = 900

// Built-in role: Monitoring Metrics Publisher (Application Insights has local auth off).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: apimName
}

resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${baseName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'outerpark'
    enabled: true
    emailReceivers: empty(operatorEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: operatorEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// --- Diagnostic settings: every resource's logs and metrics into the workspace.
resource cosmosDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: cosmos
  name: 'to-workspace'
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Requests'
        enabled: true
      }
    ]
  }
}

resource serviceBusDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: serviceBus
  name: 'to-workspace'
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource keyVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: vault
  name: 'to-workspace'
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource apimDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: apim
  name: 'to-workspace'
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// --- API Management → Application Insights, as API Management's system-assigned identity.
resource apimTelemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, apim.id, monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource apimLogger 'Microsoft.ApiManagement/service/loggers@2024-05-01' = {
  parent: apim
  name: 'appinsights'
  properties: {
    loggerType: 'applicationInsights'
    resourceId: appInsights.id
    credentials: {
      connectionString: appInsights.properties.ConnectionString
      identityClientId: 'SystemAssigned'
    }
  }
  dependsOn: [
    apimTelemetryPublisher
  ]
}

resource apimAppInsights 'Microsoft.ApiManagement/service/diagnostics@2024-05-01' = {
  parent: apim
  name: 'applicationinsights'
  properties: {
    loggerId: apimLogger.id
    alwaysLog: 'allErrors'
    httpCorrelationProtocol: 'W3C'
    verbosity: 'information'
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
  }
}

// --- Metric alerts.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${baseName}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'A message was dead-lettered (docs/runbook.md#dead-lettered-messages).'
    severity: 2
    enabled: true
    scopes: [
      serviceBus.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [
      {
        actionGroupId: operators.id
      }
    ]
  }
}

resource cosmosThrottled 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${baseName}-cosmos-429'
  location: 'global'
  tags: tags
  properties: {
    description: 'Cosmos DB answered 429 (throttled) (docs/runbook.md#cosmos-db-429).'
    severity: 2
    enabled: true
    scopes: [
      cosmos.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'throttled'
          metricNamespace: 'Microsoft.DocumentDB/databaseAccounts'
          metricName: 'TotalRequests'
          dimensions: [
            {
              name: 'StatusCode'
              operator: 'Include'
              values: [
                '429'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Count'
        }
      ]
    }
    actions: [
      {
        actionGroupId: operators.id
      }
    ]
  }
}

// --- Log alerts over Application Insights' tables in the workspace (AppRequests, AppTraces).
var logAlerts = [
  {
    name: 'http-5xx'
    severity: 1
    description: 'More than ${http5xxPercent}% of requests answered 5xx (docs/runbook.md#http-5xx-rate).'
    query: 'AppRequests | summarize total = count(), failed = countif(toint(ResultCode) >= 500) | where total >= 20 and 100.0 * failed / total > ${http5xxPercent}'
    window: 'PT5M'
  }
  {
    name: 'breaker-open'
    severity: 1
    description: 'The payment gateway breaker has been open for more than ${breakerOpenMinutes} minutes (docs/runbook.md#breaker-open).'
    query: 'let events = AppTraces | where TimeGenerated > ago(1d) | where Message startswith "circuit breaker " | extend breaker = extract(@"^circuit breaker (\\S+) ", 1, Message), closed = Message has " closed: "; let lastClosed = events | where closed | summarize closedAt = max(TimeGenerated) by breaker; events | where Message has " opened after " or Message has " reopened: " | join kind=leftouter lastClosed on breaker | where isnull(closedAt) or TimeGenerated > closedAt | summarize openSince = min(TimeGenerated) by breaker | where openSince < ago(${breakerOpenMinutes}m)'
    window: 'P1D'
  }
  {
    name: 'reserved-overdue'
    severity: 2
    description: 'Reservations stayed Reserved longer than ${reservedOverdueSeconds} s (docs/runbook.md#reservations-reserved-too-long).'
    query: 'AppTraces | where Message matches regex @"^reservation \\S+ still Reserved after \\d+ s" | extend seconds = toint(extract(@"after (\\d+) s", 1, Message)) | where seconds > ${reservedOverdueSeconds}'
    window: 'PT15M'
  }
  {
    name: 'reservations-expired'
    severity: 3
    description: 'Reservations expired: their payment was not approved by the deadline (docs/runbook.md#expired-reservations).'
    query: 'AppTraces | where Message matches regex @"^reservation \\S+ expired: "'
    window: 'PT1H'
  }
]

resource logAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [
  for alert in logAlerts: {
    name: 'alert-${baseName}-${alert.name}'
    location: location
    tags: tags
    properties: {
      displayName: 'outerpark ${alert.name}'
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [
        workspaceId
      ]
      evaluationFrequency: 'PT5M'
      windowSize: alert.window
      criteria: {
        allOf: [
          {
            query: alert.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: [
          operators.id
        ]
      }
    }
  }
]

output actionGroupId string = operators.id
