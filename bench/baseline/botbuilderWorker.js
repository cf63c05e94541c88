/* global require, process, console, setTimeout, performance, URL */
/**
 * Baseline for `npm run bench` section 3 ("worker"): a queue worker written the Bot Framework SDK
 * way, as the issue describes one: receive up to 32 messages, read the conversation reference from
 * Table Storage (one entity read), CloudAdapter.continueConversationAsync + sendActivity, delete the
 * message. It reads the same seeded rows and queue as teams-courier's sender, against the same
 * Entra and Bot Connector stubs. Plain JavaScript, run from bench/baseline with its own
 * node_modules (never a dependency of the app).
 *
 * BENCH_CONFIG: { authorityHost, tenantId, appId, appSecret, connectionString, queueName, tableName,
 *                 count, deadlineMs, botName }
 * Prints one line `@@bench {...}` with wall time and this process's CPU, then exits.
 */
'use strict';

require('./loopbackGuard').installLoopbackGuard();

const config = JSON.parse(process.env.BENCH_CONFIG || '{}');

const { CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');
const { MsalServiceClientCredentialsFactory } = require('botframework-connector');
const { ConfidentialClientApplication } = require('@azure/msal-node');
const { QueueClient } = require('@azure/storage-queue');
const { TableClient } = require('@azure/data-tables');

/** The app's table key escaping (src/core/tableKeys.ts) for the ids the bench uses. */
const tableKey = (id) =>
  id.replace(/[%/\\#?]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

async function main() {
  const loginUrl = `${config.authorityHost.replace(/\/+$/, '')}/${config.tenantId}`;
  const msal = new ConfidentialClientApplication({
    auth: {
      clientId: config.appId,
      clientSecret: config.appSecret,
      authority: loginUrl,
      knownAuthorities: [new URL(loginUrl).host],
    },
  });
  const auth = new ConfigurationBotFrameworkAuthentication(
    {
      MicrosoftAppId: config.appId,
      MicrosoftAppType: 'SingleTenant',
      MicrosoftAppTenantId: config.tenantId,
      ToChannelFromBotLoginUrl: loginUrl,
      ToChannelFromBotOAuthScope: 'https://api.botframework.com',
      ValidateAuthority: false,
    },
    new MsalServiceClientCredentialsFactory(config.appId, msal),
  );
  const adapter = new CloudAdapter(auth);
  adapter.onTurnError = async (_context, error) => {
    throw error;
  };
  const queue = new QueueClient(config.connectionString, config.queueName);
  const table = TableClient.fromConnectionString(config.connectionString, config.tableName, {
    allowInsecureConnection: true,
  });
  const errors = [];
  const tally = {};
  const count = (key) => (tally[key] = (tally[key] || 0) + 1);

  const handle = async (m) => {
    try {
      const job = JSON.parse(m.messageText);
      const row = await table.getEntity(tableKey(job.to.conversationId), 'ref');
      const reference = {
        channelId: 'msteams',
        serviceUrl: row.serviceUrl,
        conversation: {
          id: row.conversationId,
          conversationType: row.conversationType,
          tenantId: row.tenantId,
          isGroup: false,
        },
        bot: { id: row.botId, name: config.botName },
        user: { id: row.userId || '29:unknown' },
        locale: 'en-US',
      };
      await adapter.continueConversationAsync(config.appId, reference, async (context) => {
        const response = await context.sendActivity(job.text);
        count(response && response.id ? 'sent' : 'sent:noId');
      });
      await queue.deleteMessage(m.messageId, m.popReceipt);
    } catch (err) {
      const status = err && (err.statusCode || (err.response && err.response.status));
      count(`error:${status || (err && err.code) || 'unknown'}`);
      if (errors.length < 5)
        errors.push(err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 500) : String(err));
    }
  };

  const deadline = Date.now() + config.deadlineMs;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let done = 0;
  let timedOut = false;
  while (done < config.count) {
    if (Date.now() > deadline) {
      timedOut = true;
      break;
    }
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (receivedMessageItems.length === 0) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    await Promise.all(receivedMessageItems.map(handle));
    done += receivedMessageItems.length;
  }
  const used = process.cpuUsage(cpu);
  const measured = { tally, wallMs: performance.now() - t0, cpuMs: (used.user + used.system) / 1000, timedOut };
  process.stdout.write(
    `@@bench ${JSON.stringify({ mode: 'botbuilder-worker', measured, errors, rssMb: process.memoryUsage().rss / 1048576 })}\n`,
  );
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
