/* global require, process */
const { app } = require('@azure/functions');
const { record } = require('./recorder');

// Settings must be in place before the app loads (the emulator's, in emulator mode).
record('load', { appId: process.env.MicrosoftAppId ?? null });

app.hook.appStart((context) => {
  context.hookData.startedAt = Date.now();
  record('appStart', {});
});

app.hook.appTerminate((context) => {
  record('appTerminate', { sawAppStart: typeof context.hookData.startedAt === 'number' });
});

app.hook.preInvocation((context) => {
  context.hookData.preAt = Date.now();
});

app.hook.postInvocation((context) => {
  record('postInvocation', {
    functionName: context.invocationContext.functionName,
    sawPre: typeof context.hookData.preAt === 'number',
    error: context.error ? String(context.error.message ?? context.error) : null,
  });
});
