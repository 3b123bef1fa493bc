// Cosmos DB for NoSQL: the account, database `outerpark` and every container of
// shared/topology.py CONTAINERS (same partition key and default TTL; tests/infra checks it).
// The managed identity cannot create containers through data-plane RBAC, so every container,
// the trigger lease container included, is declared here.

param location string
param baseName string
param tags object

@description('true: serverless (pay per request, dev); false: autoscale throughput shared by the database.')
param serverless bool

@description('Autoscale ceiling in RU/s when not serverless (the floor is a tenth of it).')
param autoscaleMaxThroughput int

@description('A second region for the account (prod); empty for a single-region account.')
param failoverLocation string = ''

@description('Zone redundancy of every region of the account (only where the region has zones).')
param zoneRedundant bool = false

var databaseName = 'outerpark'

// defaultTtl: null = TTL off, -1 = on without expiry (items carry their own ttl), n = seconds.
var containers = [
  {
    name: 'musicals'
    partitionKey: '/musicalId'
    defaultTtl: -1
  }
  {
    name: 'payments'
    partitionKey: '/reservationId'
    defaultTtl: -1
  }
  {
    name: 'notices'
    partitionKey: '/customerId'
    defaultTtl: null
  }
  {
    name: 'customercenter'
    partitionKey: '/customerId'
    defaultTtl: null
  }
  {
    name: 'idempotency'
    partitionKey: '/customerId'
    defaultTtl: 86400
  }
  {
    name: 'control'
    partitionKey: '/id'
    defaultTtl: null
  }
  {
    name: 'leases'
    partitionKey: '/id'
    defaultTtl: null
  }
  {
    name: 'performances'
    partitionKey: '/partitionKey'
    defaultTtl: -1
  }
]

// Everything is indexed by default; the history view adds what its one query needs
// (its customer's partition, newest first) and leaves its nested lists out of the index.
var defaultIndexingPolicy = {
  indexingMode: 'consistent'
  automatic: true
  includedPaths: [
    {
      path: '/*'
    }
  ]
  excludedPaths: [
    {
      path: '/"_etag"/?'
    }
  ]
}

var indexingPolicies = {
  customercenter: {
    indexingMode: 'consistent'
    automatic: true
    includedPaths: [
      {
        path: '/*'
      }
    ]
    excludedPaths: [
      {
        path: '/"_etag"/?'
      }
      {
        path: '/notices/*'
      }
      {
        path: '/timeline/*'
      }
    ]
    // GET /history: ORDER BY createdAt DESC, id ASC inside the customer's partition.
    compositeIndexes: [
      [
        {
          path: '/createdAt'
          order: 'descending'
        }
        {
          path: '/id'
          order: 'ascending'
        }
      ]
    ]
  }
  musicals: {
    indexingMode: 'consistent'
    automatic: true
    includedPaths: [
      {
        path: '/*'
      }
    ]
    excludedPaths: [
      {
        path: '/"_etag"/?'
      }
    ]
    // GET /musicals: the catalog partition, ORDER BY createdAt ASC, id ASC.
    compositeIndexes: [
      [
        {
          path: '/createdAt'
          order: 'ascending'
        }
        {
          path: '/id'
          order: 'ascending'
        }
      ]
    ]
  }
}

var containerBodies = [for c in containers: {
  id: c.name
  partitionKey: {
    paths: [
      c.partitionKey
    ]
    kind: 'Hash'
    version: 2
  }
  indexingPolicy: contains(indexingPolicies, c.name) ? indexingPolicies[c.name] : defaultIndexingPolicy
}]

// defaultTtl is left out (TTL off) where the container has none.
var containerTtls = [for c in containers: c.defaultTtl == null ? {} : {
  defaultTtl: c.defaultTtl
}]

var primaryLocation = [
  {
    locationName: location
    failoverPriority: 0
    isZoneRedundant: zoneRedundant
  }
]

var secondaryLocation = empty(failoverLocation) ? [] : [
  {
    locationName: failoverLocation
    failoverPriority: 1
    isZoneRedundant: zoneRedundant
  }
]

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  //checkov:skip=CKV_AZURE_101:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  //checkov:skip=CKV_AZURE_99:no VNet: the Flex Consumption app reaches it over its public endpoint; access is Entra ID only (local auth off); private endpoints are the next step (docs/deploy.md)
  name: 'cosmos-${baseName}'
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: !empty(failoverLocation)
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: concat(primaryLocation, secondaryLocation)
    capabilities: serverless ? [
      {
        name: 'EnableServerless'
      }
    ] : []
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: 'Continuous7Days'
      }
    }
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless ? {} : {
      autoscaleSettings: {
        maxThroughput: autoscaleMaxThroughput
      }
    }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for (container, i) in containers: {
    parent: database
    name: container.name
    properties: {
      resource: union(containerBodies[i], containerTtls[i])
    }
  }
]

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
