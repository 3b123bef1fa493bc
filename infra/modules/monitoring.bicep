// Log Analytics workspace and the workspace-based Application Insights the Function App and
// API Management write to. Local (key) ingestion is off: writers authenticate with Entra ID.

@description('Azure region of the resources.')
param location string

@description('Base of the resource names, e.g. outerpark-dev.')
param baseName string

@description('Days Log Analytics keeps data.')
param retentionInDays int

param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${baseName}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${baseName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
