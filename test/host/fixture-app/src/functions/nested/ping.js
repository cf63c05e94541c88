/* global require */
const { app } = require('@azure/functions');

// Lives in a sub-folder: package.json "main" must reach it through "**".
app.get('ping', { route: 'nested/ping', handler: async () => ({ body: 'pong' }) });
