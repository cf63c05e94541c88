/* global require, process, console, setTimeout, performance, URL */
/**
 * Baseline for `npm run bench` section 3: the same proactive sends done the Bot Framework SDK way,
 * CloudAdapter.continueConversationAsync + TurnContext.sendActivity, against the same Entra and Bot
 * Connector stubs. Plain JavaScript, run as its own process from bench/baseline with the SDK from
 * bench/baseline/node_modules (installed on demand; never a dependency of the app).
 *
 * Authentication: ConfigurationBotFrameworkAuthentication for a SingleTenant bot whose login URL
 * (ToChannelFromBotLoginUrl) is the Entra stub. The SDK's own password factory builds an MSAL client
 * that would run instance discovery against login.microsoftonline.com, so the SDK's
 * MsalServiceClientCredentialsFactory is given an MSAL ConfidentialClientApplication that knows the
 * stub as an authority (knownAuthorities). Tokens are cached by the SDK (AppCredentials.cache).
 *
 * BENCH_CONFIG: { authorityHost, tenantId, appId, appSecret, userTenantId, serviceUrl, prefix, count,
 *                 warmupPrefix, warmup, concurrency, deadlineMs, botName }
 * Prints one line `@@bench {...}` with wall time and this process's CPU, then exits.
 */
'use strict';

require('./loopbackGuard').installLoopbackGuard();

const config = JSON.parse(process.env.BENCH_CONFIG || '{}');

const { CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');
const { MsalServiceClientCredentialsFactory } = require('botframework-connector');
const { ConfidentialClientApplication } = require('@azure/msal-node');

const conversationId = (prefix, i) => `a:1bench-${prefix}-${String(i).padStart(6, '0')}`;
const userId = (prefix, i) => `29:1bench-user-${prefix}-${String(i).padStart(6, '0')}`;

function reference(prefix, i) {
  return {
    channelId: 'msteams',
    serviceUrl: config.serviceUrl,
    conversation: {
      id: conversationId(prefix, i),
      conversationType: 'personal',
      tenantId: config.userTenantId,
      isGroup: false,
    },
    bot: { id: `28:${config.appId}`, name: config.botName },
    user: { id: userId(prefix, i) },
    locale: 'en-US',
  };
}

async function runPool(count, concurrency, deadline, task) {
  let next = 0;
  let timedOut = false;
  const worker = async () => {
    for (;;) {
      if (next >= count) return;
      if (Date.now() > deadline) {
        timedOut = true;
        return;
      }
      const index = next;
      next += 1;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { started: next, timedOut };
}

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
  const errors = [];
  adapter.onTurnError = async (_context, error) => {
    throw error;
  };
  const deadline = Date.now() + config.deadlineMs;

  const run = async (prefix, n) => {
    const tally = {};
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const { timedOut } = await runPool(n, config.concurrency, deadline, async (i) => {
      try {
        await adapter.continueConversationAsync(config.appId, reference(prefix, i), async (context) => {
          const response = await context.sendActivity(`Benchmark message ${i}: the build passed.`);
          const key = response && response.id ? 'sent' : 'sent:noId';
          tally[key] = (tally[key] || 0) + 1;
        });
      } catch (err) {
        const status = err && (err.statusCode || (err.response && err.response.status));
        const key = `error:${status || (err && err.code) || 'unknown'}`;
        tally[key] = (tally[key] || 0) + 1;
        if (errors.length < 5)
          errors.push(err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 500) : String(err));
      }
    });
    const used = process.cpuUsage(cpu);
    return { tally, wallMs: performance.now() - t0, cpuMs: (used.user + used.system) / 1000, timedOut };
  };

  const warmup = config.warmup > 0 ? await run(config.warmupPrefix, config.warmup) : undefined;
  const measured = await run(config.prefix, config.count);
  process.stdout.write(
    `@@bench ${JSON.stringify({ mode: 'botbuilder', warmup, measured, errors, rssMb: process.memoryUsage().rss / 1048576 })}\n`,
  );
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
