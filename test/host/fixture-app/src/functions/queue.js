/* global require */
const { app } = require('@azure/functions');
const { record, sleep } = require('../recorder');

app.storageQueue('recorder', {
  queueName: '%WORK_QUEUE%',
  connection: 'AzureWebJobsStorage',
  handler: async (item, context) => {
    record('recorder', { item, triggerMetadata: context.triggerMetadata, invocationId: context.invocationId });
    if (item && typeof item === 'object' && item.sleepMs) await sleep(item.sleepMs);
    record('recorder.done', { item, invocationId: context.invocationId });
  },
});

app.storageQueue('alwaysFails', {
  queueName: 'failing-items',
  connection: 'AzureWebJobsStorage',
  handler: async (item, context) => {
    record('alwaysFails', { item, dequeueCount: context.triggerMetadata.dequeueCount });
    throw new Error('always fails');
  },
});
