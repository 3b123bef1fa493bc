// Service Bus (Standard: topics need it): every topic and subscription of shared/topology.py
// TOPICS with the same delivery count, lock duration, duplicate-detection window and subject
// filter (tests/infra checks it). Local (SAS) auth is off: the app uses its managed identity.

param location string
param baseName string
param tags object

@description('How long an unconsumed message lives before it is dead-lettered.')
param messageTimeToLive string = 'P14D'

var topics = [
  {
    name: 'reservation'
    duplicateDetectionWindowSeconds: 600
  }
  {
    name: 'cancel'
    duplicateDetectionWindowSeconds: 600
  }
  {
    name: 'payment'
    duplicateDetectionWindowSeconds: 600
  }
]

// subjects: the message subjects the subscription receives (empty = every message).
var subscriptions = [
  {
    topic: 'reservation'
    name: 'payment'
    maxDeliveryCount: 10
    lockDurationSeconds: 30
    subjects: []
  }
  {
    topic: 'cancel'
    name: 'payment'
    maxDeliveryCount: 10
    lockDurationSeconds: 30
    subjects: []
  }
  {
    topic: 'payment'
    name: 'notice'
    maxDeliveryCount: 10
    lockDurationSeconds: 30
    subjects: [
      'PaymentApproved'
      'PaymentDeclined'
      'PaymentCancelled'
    ]
  }
  {
    topic: 'payment'
    name: 'reservation'
    maxDeliveryCount: 10
    lockDurationSeconds: 30
    subjects: [
      'PaymentApproved'
      'PaymentDeclined'
    ]
  }
]

var filteredSubscriptions = filter(subscriptions, s => !empty(s.subjects))

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb-${baseName}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource sbTopics 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = [
  for topic in topics: {
    parent: namespace
    name: topic.name
    properties: {
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'PT${topic.duplicateDetectionWindowSeconds}S'
      defaultMessageTimeToLive: messageTimeToLive
      supportOrdering: false
    }
  }
]

resource sbSubscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [
  for sub in subscriptions: {
    name: '${namespace.name}/${sub.topic}/${sub.name}'
    properties: {
      maxDeliveryCount: sub.maxDeliveryCount
      lockDuration: 'PT${sub.lockDurationSeconds}S'
      deadLetteringOnMessageExpiration: true
      deadLetteringOnFilterEvaluationExceptions: true
      defaultMessageTimeToLive: messageTimeToLive
    }
    dependsOn: [
      sbTopics
    ]
  }
]

// A subscription is born with a `$Default` rule that lets everything in; writing a rule of the
// same name replaces it with the subject filter (another rule name would leave it in place).
resource subjectFilters 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [
  for sub in filteredSubscriptions: {
    name: '${namespace.name}/${sub.topic}/${sub.name}/$Default'
    properties: {
      filterType: 'SqlFilter'
      sqlFilter: {
        sqlExpression: 'sys.Label IN (${join(map(sub.subjects, s => '\'${s}\''), ', ')})'
      }
    }
    dependsOn: [
      sbSubscriptions
    ]
  }
]

output namespaceName string = namespace.name
output namespaceId string = namespace.id
// The subscriptions the app's triggers read (each: topic, name), for their scaling role.
output subscriptions array = [for sub in subscriptions: {
  topic: sub.topic
  name: sub.name
}]
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
