// Operating it (docs/operate.md): an action group that e-mails the operator, log alerts on the app's
// structured events in Application Insights, a workbook charting them, and, optionally, an
// availability test of GET /api/health.
//
// The alert queries and the workbook are plain files under infra/monitoring/, loaded here, so that
// test/infra/alerts.test.ts checks the very same text against log lines the app really writes.
param applicationInsightsName string
param location string
param tags object

@description('Where alerts are e-mailed. Empty = the alerts still fire (Azure Monitor > Alerts), but nobody is told.')
param alertEmail string

@description('The health endpoint the availability test calls (https://<app>/api/health).')
param healthUrl string

@description('Also test GET /api/health from three regions every 5 minutes, and alert when two fail (billed per test run).')
param availabilityTest bool

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Always created, so the rules have somewhere to send; the e-mail receiver only with an address.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${applicationInsightsName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'courier'
    enabled: true
    emailReceivers: empty(alertEmail)
      ? []
      : [
          {
            name: 'operator'
            emailAddress: alertEmail
            useCommonAlertSchema: true
          }
        ]
  }
}

// Each query returns a row only when its condition holds (the thresholds are in the .kql files),
// so every rule fires on "at least one row". Traces are sampled under load (host.json); the
// queries weigh each line by itemCount.
var rules = [
  {
    name: 'jobs-failing'
    displayName: 'teams-courier: jobs failing'
    description: 'At least 5 jobs failed for good in 15 minutes. Fix the cause, then: teams-courier poison replay --reason <code>.'
    severity: 2
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    query: loadTextContent('../monitoring/alerts/jobs-failing.kql')
  }
  {
    name: 'poison-growing'
    displayName: 'teams-courier: poison queue growing'
    description: 'At least 25 jobs went to the poison queue in 6 hours. See teams-courier poison list.'
    severity: 3
    evaluationFrequency: 'PT1H'
    windowSize: 'PT6H'
    query: loadTextContent('../monitoring/alerts/poison-growing.kql')
  }
  {
    name: 'throttled-share'
    displayName: 'teams-courier: Teams throttling (429) above 1%'
    description: 'More than 1% of the Bot Connector\'s answers in 5 minutes were 429.'
    severity: 2
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    query: loadTextContent('../monitoring/alerts/throttled-share.kql')
  }
  {
    name: 'inbound-refused'
    displayName: 'teams-courier: inbound 401/403 spike'
    description: 'At least 20 requests to /api/messages or /api/notify were refused for their token in 5 minutes: someone probing, or a flow that lost its access.'
    severity: 2
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    query: loadTextContent('../monitoring/alerts/inbound-refused.kql')
  }
  {
    name: 'sender-not-draining'
    displayName: 'teams-courier: sender not draining the queue'
    description: 'Jobs were accepted but none handled in 15 minutes, or the median time from enqueue to sent is over 15 minutes.'
    severity: 1
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    query: loadTextContent('../monitoring/alerts/sender-not-draining.kql')
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = [
  for rule in rules: {
    name: '${applicationInsightsName}-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [applicationInsights.id]
      evaluationFrequency: rule.evaluationFrequency
      windowSize: rule.windowSize
      criteria: {
        allOf: [
          {
            query: rule.query
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
      // Resolved by itself once the condition is gone.
      autoMitigate: true
      actions: {
        actionGroups: [actionGroup.id]
      }
    }
  }
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per App Insights resource.
  name: guid(applicationInsights.id, 'teams-courier-operations')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'teams-courier operations'
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: loadTextContent('../monitoring/operations.workbook.json')
  }
}

// A standard test's tag `hidden-link:<component id>` is what ties it to Application Insights.
resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = if (availabilityTest) {
  name: '${applicationInsightsName}-health'
  location: location
  tags: union(tags, { 'hidden-link:${applicationInsights.id}': 'Resource' })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: '${applicationInsightsName}-health'
    Name: 'teams-courier GET /api/health'
    Enabled: true
    Frequency: 300
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      { Id: 'us-va-ash-azr' }
      { Id: 'emea-nl-ams-azr' }
      { Id: 'apac-sg-sin-azr' }
    ]
    Request: {
      RequestUrl: healthUrl
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

resource healthAlert 'Microsoft.Insights/metricAlerts@2026-01-01' = if (availabilityTest) {
  name: '${applicationInsightsName}-health-failing'
  location: 'global'
  tags: tags
  properties: {
    description: 'GET /api/health failed from two of three regions: the app cannot load its configuration or reach storage, or is down.'
    severity: 1
    enabled: true
    scopes: [healthTest.id, applicationInsights.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthTest.id
      componentId: applicationInsights.id
      failedLocationCount: 2
    }
    actions: [
      { actionGroupId: actionGroup.id }
    ]
  }
}

output actionGroupName string = actionGroup.name
output workbookName string = workbook.name
