/**
 * The sender through the real delivery path: Azurite, @azure/identity against the local Entra
 * authority, undici against the Bot Connector stub over HTTPS.
 */
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Faults, fixtureActivity, loadTestCertificate } from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';
import { processJobMessage, type JobResult, type SenderDeps } from '../../src/outbound/processJob';
import { createSendBudget, type SendBudget } from '../../src/outbound/sendBudget';
import { createBudgetRoster } from '../../src/store/budgetRoster';
import type { DeliveryStore } from '../../src/store/deliveryStore';
import { createJobQueue } from '../../src/store/jobQueue';
import { TABLES } from '../../src/store/tables';
import { StorageUnavailableError } from '../../src/errors';
import { APP_ID, USER_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();
const swagger = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/ConnectorAPI.swagger.json'), 'utf8')) as {
  definitions: Record<string, { properties: Record<string, unknown> }>;
};

let n = 0;
/** Captures a personal chat (a unique one per call) and returns its ids. */
async function personalChat(
  prefix = 'amer',
  tenantId?: string,
): Promise<{ conversationId: string; aadObjectId: string }> {
  n += 1;
  const e = env();
  const conversationId = `a:sender-${n}`;
  const aadObjectId = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const activity = fixtureActivity('message.personal', { serviceUrl: e.connector.serviceUrl(prefix), conversationId });
  (activity.from as Record<string, string>).aadObjectId = aadObjectId;
  (activity.from as Record<string, string>).id = `29:user-${n}`;
  if (tenantId !== undefined) (activity.conversation as Record<string, string>).tenantId = tenantId;
  await e.capture(activity);
  return { conversationId, aadObjectId };
}

/**
 * A job queue of the test's own, so what the sender puts back can be counted exactly and never
 * reaches the shared queue that `drain()` empties.
 */
async function ownQueue(name: string) {
  const e = env();
  const jobs = e.storage.queue(name);
  await jobs.createIfNotExists();
  const poison = e.storage.queue(`${name}-poison`);
  await poison.createIfNotExists();
  return {
    jobs,
    queue: createJobQueue({ jobs, poison }),
    /** Messages on the queue, visible or not. */
    count: async () => (await jobs.getProperties()).approximateMessagesCount ?? 0,
    /** Messages visible now. */
    visible: async () => (await jobs.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length,
  };
}

const process1 = (body: unknown, deps: SenderDeps, messageId = `m-${n}`): Promise<JobResult> =>
  processJobMessage(body, { messageId, dequeueCount: 1 }, deps);

/** Holds every claim until `parties` workers are claiming, so they all claim with what they read before. */
function claimsTogether(deliveries: DeliveryStore, parties: number): DeliveryStore {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return {
    ...deliveries,
    claim: async (...args) => {
      arrived += 1;
      if (arrived === parties) release();
      await all;
      return deliveries.claim(...args);
    },
  };
}

const deliveriesTo = (conversationId: string) =>
  env().connector.delivered.filter((d) => d.conversationId === conversationId);

describe('sending a job', () => {
  it('posts to {serviceUrl}v3/conversations/{id}/activities with the bot token and records the activity id', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.enqueue({ id: 'job-basic', to: { conversationId }, text: 'Invoice **4711** is overdue.' });
    const [result] = await e.drain();
    expect(result).toMatchObject({ status: 'sent', jobId: 'job-basic', conversationId });

    const request = e.connector.requests.find((r) => r.conversationId === conversationId)!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe(`/amer/v3/conversations/${encodeURIComponent(conversationId)}/activities`);
    expect(request.tokenClaims).toMatchObject({
      aud: 'https://api.botframework.com',
      appid: APP_ID,
      tid: '00000000-0000-4000-8000-0000000b07e0',
    });
    expect(request.body).toMatchObject({
      type: 'message',
      text: 'Invoice **4711** is overdue.',
      textFormat: 'markdown',
      conversation: { id: conversationId },
    });
    for (const key of Object.keys(request.body as object))
      expect(Object.keys(swagger.definitions.Activity!.properties)).toContain(key);

    const record = await e.deliveries.get('job-basic');
    expect(record).toMatchObject({
      status: 'sent',
      attempts: 1,
      conversationId,
      activityId: deliveriesTo(conversationId)[0]!.activityId,
    });
  });

  it('never sends a job id twice', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const job = { id: 'job-once', to: { conversationId }, text: 'once' };
    await e.enqueue(job);
    await e.enqueue(job);
    await e.drain();
    await e.enqueue(job);
    const results = await e.drain();
    expect(deliveriesTo(conversationId)).toHaveLength(1);
    expect(results).toEqual([expect.objectContaining({ status: 'skipped', existing: 'sent' })]);
  });

  it('takes base64-encoded jobs (Functions output bindings) as well as plain text', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.enqueue({ id: 'job-b64', to: { conversationId }, text: 'from a binding' }, 'base64');
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent' })]);
  });

  it('defaults the job id to the queue message id', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.enqueue({ to: { conversationId }, text: 'no id' });
    const [result] = await e.drain();
    expect(result?.status).toBe('sent');
    expect(await e.deliveries.get(result!.jobId)).toMatchObject({ status: 'sent' });
  });

  it('reaches a user by aadObjectId through the stored personal chat, with or without tenant', async () => {
    const e = env();
    const { conversationId, aadObjectId } = await personalChat();
    await e.enqueue({ id: 'job-user-1', to: { aadObjectId, tenantId: USER_TENANT }, text: 'hi' });
    await e.enqueue({ id: 'job-user-2', to: { aadObjectId }, text: 'hi again' });
    await e.drain();
    expect(deliveriesTo(conversationId)).toHaveLength(2);
  });

  it('creates the personal chat for a user never seen, stores it, and reuses it', async () => {
    const e = env();
    const aadObjectId = '00000000-0000-4000-8000-00000000ab01';
    e.connector.registerUser({ id: '29:never-seen', tenantId: USER_TENANT, aadObjectId, installed: true });
    await e.enqueue({ id: 'job-create-1', to: { aadObjectId, tenantId: USER_TENANT }, text: 'first' });
    await e.drain();
    const create = e.connector.requests.find(
      (r) => r.operation === 'createConversation' && JSON.stringify(r.body).includes(aadObjectId),
    )!;
    expect(create.body).toEqual({
      bot: { id: `28:${APP_ID}` },
      members: [{ id: aadObjectId }],
      channelData: { tenant: { id: USER_TENANT } },
      tenantId: USER_TENANT,
      isGroup: false,
    });
    for (const key of Object.keys(create.body as object))
      expect(Object.keys(swagger.definitions.ConversationParameters!.properties)).toContain(key);
    const chatId = create.createdConversationId!;
    expect(await e.conversations.findPersonalChat(aadObjectId, USER_TENANT)).toMatchObject({
      kind: 'found',
      reference: { conversationId: chatId, installed: true },
    });

    await e.enqueue({ id: 'job-create-2', to: { aadObjectId }, text: 'second' });
    await e.drain();
    expect(
      e.connector.requests.filter(
        (r) => r.operation === 'createConversation' && JSON.stringify(r.body).includes(aadObjectId),
      ),
    ).toHaveLength(1);
    expect(deliveriesTo(chatId).map((d) => d.activity?.text)).toEqual(['first', 'second']);
  });

  it('a user never seen and no tenant: fails with a reason naming to.tenantId', async () => {
    const e = env();
    await e.enqueue({ id: 'job-no-tenant', to: { aadObjectId: 'unknown-user' }, text: 'x' });
    expect(await e.drain()).toEqual([
      expect.objectContaining({
        status: 'failed',
        code: 'TenantRequired',
        reason: expect.stringContaining('to.tenantId is required'),
      }),
    ]);
  });

  it('posts to a channel, and replies in a thread through ;messageid=', async () => {
    const e = env();
    const activity = fixtureActivity('message.channel.threadReply', { serviceUrl: e.connector.serviceUrl('emea') });
    await e.capture(activity);
    const channelId = '19:opsChannelIdForFixturesOnly0002@thread.tacv2';
    await e.enqueue({ id: 'job-channel', to: { channelId }, text: 'post' });
    await e.enqueue({ id: 'job-thread', to: { channelId, threadId: '1763660000000' }, text: 'reply' });
    await e.drain();
    expect(deliveriesTo(channelId).map((d) => d.activity?.text)).toEqual(['post']);
    const reply = e.connector.requests.find((r) => (r.body as { text?: string } | undefined)?.text === 'reply')!;
    expect(reply.conversationId).toBe(`${channelId};messageid=1763660000000`);
    expect(reply.path).toBe(
      `/emea/v3/conversations/${encodeURIComponent(`${channelId};messageid=1763660000000`)}/activities`,
    );
  });

  it('sends cards, mentions and the tutorial raw activity', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const card = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'Approve?' }] };
    await e.enqueue({ id: 'job-card', to: { conversationId }, adaptiveCard: card, summary: 'Approve?' });
    await e.enqueue({
      id: 'job-mention',
      to: { conversationId },
      text: 'Deploy done',
      mentions: [{ id: '29:ana', name: 'Ana' }],
    });
    await e.enqueue({
      type: 'message',
      from: { id: '28:x' },
      conversation: { id: conversationId },
      recipient: { id: '29:y' },
      text: 'Hello, Human!',
    });
    await e.drain();
    const sent = deliveriesTo(conversationId).map((d) => d.activity!);
    expect(sent).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: card }],
          summary: 'Approve?',
        }),
        expect.objectContaining({
          text: '<at>Ana</at> Deploy done',
          entities: [{ type: 'mention', mentioned: { id: '29:ana', name: 'Ana' }, text: '<at>Ana</at>' }],
        }),
        expect.objectContaining({ text: 'Hello, Human!' }),
      ]),
    );
  });
});

describe('when a job cannot be sent', () => {
  it('an invalid job fails at once, is recorded, and lands in the poison queue with its reason', async () => {
    const e = env();
    const before = e.connector.requests.length;
    await e.enqueue({ id: 'job-invalid', to: { conversationId: 'a:1', aadObjectId: 'x' }, textFormat: 'html' });
    await e.jobs.sendMessage('this is not json');
    const results = await e.drain();
    expect(results.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(e.connector.requests.length).toBe(before);
    expect(await e.deliveries.get('job-invalid')).toMatchObject({
      status: 'failed',
      lastErrorCode: 'InvalidJob',
      lastErrorReason: expect.stringContaining('to: has conflicting targets'),
    });
    const poisoned = await e.poisoned();
    expect(poisoned).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          teamsCourier: expect.objectContaining({
            jobId: 'job-invalid',
            code: 'InvalidJob',
            reason: expect.stringContaining('textFormat: must be one of'),
          }),
        }),
        expect.objectContaining({
          teamsCourier: expect.objectContaining({
            code: 'InvalidJob',
            reason: expect.stringContaining('neither JSON nor base64'),
          }),
          job: 'this is not json',
        }),
      ]),
    );
  });

  it('an unknown conversation or an uninstalled bot fails without calling Teams', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.capture({
      ...fixtureActivity('installationUpdate.remove.personal', {
        serviceUrl: e.connector.serviceUrl('amer'),
        conversationId,
      }),
    });
    const before = e.connector.requests.length;
    await e.enqueue({ id: 'job-unknown', to: { conversationId: 'a:never-seen' }, text: 'x' });
    await e.enqueue({ id: 'job-uninstalled', to: { conversationId }, text: 'x' });
    const results = await e.drain();
    expect(results).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ jobId: 'job-unknown', status: 'failed', code: 'ConversationUnknown' }),
        expect.objectContaining({
          jobId: 'job-uninstalled',
          status: 'failed',
          code: 'BotUninstalled',
          reason: expect.stringContaining('removed'),
        }),
      ]),
    );
    expect(e.connector.requests.length).toBe(before);
  });

  it.each([
    'ConversationBlockedByUser',
    'BotNotInConversationRoster',
    'BotDisabledByAdmin',
    'ForbiddenOperationException',
    'MessageWritesBlocked',
    'ConversationNotFound',
  ] as const)(
    '%s is permanent: failed, reference marked, dead-lettered, and the next job fails fast',
    async (error) => {
      const e = env();
      const { conversationId } = await personalChat();
      e.connector.injectFault(Faults.error(error), { match: { conversationId }, times: 1 });
      await e.enqueue({ id: `job-${error}`, to: { conversationId }, text: 'x' });
      expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: error })]);
      expect(await e.deliveries.get(`job-${error}`)).toMatchObject({
        status: 'failed',
        attempts: 1,
        lastErrorCode: error,
      });
      expect((await e.conversations.get(conversationId))?.undeliverableReason).toContain(error);
      expect(
        (await e.poisoned()).some(
          (p) => p.teamsCourier.jobId === `job-${error}` && p.teamsCourier.reason.includes(error),
        ),
      ).toBe(true);

      const before = e.connector.requests.length;
      await e.enqueue({ id: `job-${error}-2`, to: { conversationId }, text: 'y' });
      expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'Undeliverable' })]);
      expect(e.connector.requests.length).toBe(before);
    },
  );

  it('a reference with a foreign serviceUrl fails and the foreign host receives nothing', async () => {
    const e = env();
    let foreignRequests = 0;
    const foreign = createServer(loadTestCertificate(), (_req, res) => {
      foreignRequests += 1;
      res.end('{}');
    });
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
    try {
      const port = (foreign.address() as { port: number }).port;
      const conversationId = 'a:foreign-reference';
      // Written straight into the table, as an attacker with storage access (or a bug) might.
      await e.storage.table(TABLES.conversations).upsertEntity({
        partitionKey: toTableKey(conversationId),
        rowKey: 'ref',
        conversationId,
        conversationType: 'personal',
        tenantId: USER_TENANT,
        serviceUrl: `https://localhost:${port}/amer/`,
        botId: `28:${APP_ID}`,
        installed: true,
        installedChangedAt: new Date().toISOString(),
        firstSeenAt: new Date().toISOString(),
        lastSeenAt: new Date().toISOString(),
      });
      await e.enqueue({ id: 'job-foreign', to: { conversationId }, text: 'secret' });
      expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'UntrustedServiceUrl' })]);
      expect(foreignRequests).toBe(0);
    } finally {
      foreign.close();
    }
  });

  it('a job too large to be put back on the queue fails at once, and its poison message still fits', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const before = e.connector.requests.length;
    const body = { id: 'job-too-large', to: { conversationId }, text: 'ü'.repeat(32_700) };
    const result = await processJobMessage(body, { messageId: 'm-large', dequeueCount: 1 }, e.deps());
    expect(result).toMatchObject({
      status: 'failed',
      code: 'JobTooLarge',
      reason: expect.stringContaining('send less'),
    });
    expect(e.connector.requests.length).toBe(before);
    const poisoned = (await e.poisoned()).find((p) => p.teamsCourier.jobId === 'job-too-large');
    expect(poisoned?.job).toMatchObject({ truncated: true, bytes: expect.any(Number) });
  });

  it("a message over Teams' 100 KB never leaves: MessageSizeTooBig without a request", async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const before = e.connector.requests.length;
    await e.enqueue({ id: 'job-huge', to: { conversationId }, text: 'x'.repeat(60_000) });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'MessageSizeTooBig' })]);
    expect(e.connector.requests.length).toBe(before);
  });

  // Answers that refuse one request, not the conversation: the job fails at once (one request, no
  // retry), and the next job to the same conversation is sent.
  it.each([
    ['500 ServiceError', 'ServiceError', 500],
    ['400 BadArgument', 'BadArgument', 400],
    ['413 MessageSizeTooBig from Teams', 'MessageSizeTooBig', 413],
    ['403 NotEnoughPermissions', 'NotEnoughPermissions', 403],
  ] as const)(
    'a single %s fails that job only: not retried, and the conversation stays deliverable',
    async (_label, error, status) => {
      const e = env();
      const { conversationId } = await personalChat();
      e.connector.injectFault(Faults.error(error), { match: { conversationId }, times: 1 });
      const jobId = `job-once-${error}`;
      await e.enqueue({ id: jobId, to: { conversationId }, text: 'small enough' });
      expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', jobId, code: error })]);
      // It reached Teams (a real answer, not a local refusal) exactly once.
      const requests = e.connector.requests.filter((r) => r.conversationId === conversationId);
      expect(requests.map((r) => r.status)).toEqual([status]);
      expect(await e.deliveries.get(jobId)).toMatchObject({
        status: 'failed',
        attempts: 1,
        lastErrorCode: error,
        history: [{ attempt: 1, outcome: 'failed', code: error }],
      });
      expect((await e.poisoned()).some((p) => p.teamsCourier.jobId === jobId && p.teamsCourier.code === error)).toBe(
        true,
      );
      const reference = await e.conversations.get(conversationId);
      expect(reference).toMatchObject({ conversationId, installed: true });
      expect(reference?.undeliverableReason).toBeUndefined();

      await e.enqueue({ id: `${jobId}-next`, to: { conversationId }, text: 'the next one' });
      expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent', jobId: `${jobId}-next` })]);
      expect(deliveriesTo(conversationId).map((d) => d.activity?.text)).toEqual(['the next one']);
    },
  );
});

describe('transient failures and recoveries', () => {
  it.each([
    ['429 with Retry-After seconds', Faults.throttle(1)],
    ['429 with an HTTP date', Faults.throttleHttpDate(1)],
    ['429 without Retry-After', Faults.throttleWithoutRetryAfter()],
    ['412', Faults.error('PreconditionFailed' as never)],
    ['502', Faults.status(502)],
    ['503', Faults.status(503)],
    ['504', Faults.status(504)],
    ['a dropped connection', Faults.drop()],
  ])('%s: recorded as retrying, then delivered exactly once', async (_label, fault) => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(fault, { match: { conversationId }, times: 1 });
    const jobId = `job-transient-${n}`;
    await e.enqueue({ id: jobId, to: { conversationId }, text: 'x' });
    const results = await e.drain();
    expect(results.map((r) => r.status)).toEqual(['retrying', 'sent']);
    expect(deliveriesTo(conversationId)).toHaveLength(1);
    const record = await e.deliveries.get(jobId);
    expect(record).toMatchObject({ status: 'sent', attempts: 2 });
    expect(record?.history.map((h) => h.outcome)).toEqual(['retry', 'sent']);
  });

  it('a drop after Teams accepted is the ambiguous window: sent again, and that is visible', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.dropAfterAccept(), { match: { conversationId }, times: 1 });
    await e.enqueue({ id: 'job-ambiguous', to: { conversationId }, text: 'x' });
    expect((await e.drain()).map((r) => r.status)).toEqual(['retrying', 'sent']);
    expect(deliveriesTo(conversationId)).toHaveLength(2);
    expect((await e.deliveries.get('job-ambiguous'))?.history[0]).toMatchObject({
      outcome: 'retry',
      code: 'NetworkReset',
    });
  });

  it('tells the budget when Teams answered a send (it had arrived by then), and not when nothing answered', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const settled: { conversationId: string; grantedAt: number | undefined }[] = [];
    const budget: SendBudget = {
      ...e.budget,
      acquire: (c, t, slot) => e.budget.acquire(c, t, slot),
      settle: (c, t, slot) => {
        settled.push({ conversationId: c, grantedAt: slot.grantedAt });
        e.budget.settle(c, t, slot);
      },
    };
    e.connector.injectFault(Faults.dropAfterAccept(), { match: { conversationId }, times: 1 });
    await e.enqueue({ id: 'job-settle', to: { conversationId }, text: 'x' });
    const before = Date.now();
    expect((await e.drain({ deps: { budget } })).map((r) => r.status)).toEqual(['retrying', 'sent']);
    // The dropped attempt is not settled; the answered one is, with the grant it was given.
    expect(settled).toEqual([{ conversationId, grantedAt: expect.any(Number) }]);
    expect(settled[0]!.grantedAt).toBeGreaterThanOrEqual(before);
  });

  it('a response slower than the client timeout is retried; Teams may have it already (ambiguous)', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.delay(3_000), { match: { conversationId }, times: 1 });
    await e.enqueue({ id: 'job-slow', to: { conversationId }, text: 'x' });
    expect((await e.drain()).map((r) => r.status)).toEqual(['retrying', 'sent']);
    expect((await e.deliveries.get('job-slow'))?.history[0]).toMatchObject({
      outcome: 'retry',
      code: 'NetworkTimeout',
    });
    // The stub finished the slow request after the client gave up: the second send is the documented window.
    await e.connector.waitForDelivery(
      (d) => d.conversationId === conversationId && deliveriesTo(conversationId).length === 2,
      5_000,
    );
  });

  it('honours Retry-After before trying again', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.throttle(2), { match: { conversationId }, times: 1 });
    await e.enqueue({ id: 'job-retry-after', to: { conversationId }, text: 'x' });
    const results = await e.drain();
    expect(results.map((r) => r.status)).toEqual(['retrying', 'sent']);
    expect(results[0]).toMatchObject({ code: 'Throttled', delayMs: 2_000 });
    const attempts = e.connector.requests.filter((r) => r.conversationId === conversationId);
    expect(attempts).toHaveLength(2);
    expect(attempts[1]!.time - attempts[0]!.time).toBeGreaterThanOrEqual(1_900);
  });

  it('gives up after the configured attempts, with the last reason', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.status(503), { match: { conversationId }, times: 10 });
    await e.enqueue({ id: 'job-give-up', to: { conversationId }, text: 'x' });
    const results = await e.drain({ timeoutMs: 30_000, deps: { backoffBaseMs: 100 } });
    expect(results.at(-1)).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^gave up after 5 attempts: HTTP 503/),
    });
    expect(await e.deliveries.get('job-give-up')).toMatchObject({ status: 'failed', attempts: 5 });
    expect(deliveriesTo(conversationId)).toHaveLength(0);
  });

  it('a 401 refreshes the token once and then delivers', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const tokensBefore = e.entra.tokensIssued();
    e.connector.injectFault(Faults.status(401), { match: { conversationId }, times: 1 });
    await e.enqueue({ id: 'job-401', to: { conversationId }, text: 'x' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent' })]);
    expect(e.entra.tokensIssued()).toBe(tokensBefore + 1);
  });

  it('a second 401 fails the job and is logged as an error', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.status(401), { match: { conversationId }, times: 2 });
    await e.enqueue({ id: 'job-401-twice', to: { conversationId }, text: 'x' });
    expect(await e.drain()).toEqual([
      expect.objectContaining({ status: 'failed', reason: expect.stringContaining('after a token refresh') }),
    ]);
    expect(e.logs.some((l) => l.includes('"level":"error"') && l.includes('connector.unauthorized'))).toBe(true);
  });

  it('403 InvalidBotApiHost is retried on the GCC host', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    e.connector.injectFault(Faults.error('InvalidBotApiHost'), {
      match: { conversationId, servicePrefix: '/amer/' },
      times: 1,
    });
    await e.enqueue({ id: 'job-gcc', to: { conversationId }, text: 'x' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent' })]);
    expect(deliveriesTo(conversationId).map((d) => d.serviceUrl)).toEqual([e.connector.serviceUrl('gcc')]);
  });

  it('caches the bot token across jobs', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.enqueue({ id: 'job-token-1', to: { conversationId }, text: 'a' });
    await e.drain();
    const issued = e.entra.tokensIssued();
    await e.enqueue({ id: 'job-token-2', to: { conversationId }, text: 'b' });
    await e.enqueue({ id: 'job-token-3', to: { conversationId }, text: 'c' });
    await e.drain();
    expect(e.entra.tokensIssued()).toBe(issued);
  });
});

describe('rate limits', () => {
  it('stays under the per-conversation limit instead of drawing 429s', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    const throttledBefore = e.connector.stats.throttled;
    for (let i = 0; i < 12; i += 1) await e.enqueue({ id: `job-burst-${i}`, to: { conversationId }, text: `#${i}` });
    const results = await e.drain({ timeoutMs: 30_000 });
    expect(deliveriesTo(conversationId)).toHaveLength(12);
    expect(e.connector.stats.throttled).toBe(throttledBefore);
    expect(results.filter((r) => r.status === 'sent')).toHaveLength(12);
  });

  it('a storage hiccup right after Teams accepted does not cause a second send', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    let failures = 2;
    const deliveries = {
      ...e.deliveries,
      finish: async (...args: Parameters<typeof e.deliveries.finish>) => {
        if (args[2].status === 'sent' && failures > 0) {
          failures -= 1;
          throw new StorageUnavailableError('Table Storage unavailable during updateEntity (test)');
        }
        return e.deliveries.finish(...args);
      },
    };
    const result = await processJobMessage(
      { id: 'job-hiccup', to: { conversationId }, text: 'once' },
      { messageId: 'm', dequeueCount: 1 },
      e.deps({ deliveries, sleep: async () => undefined }),
    );
    expect(result).toMatchObject({ status: 'sent' });
    expect(failures).toBe(0);
    expect(await e.deliveries.get('job-hiccup')).toMatchObject({ status: 'sent' });
    expect(deliveriesTo(conversationId)).toHaveLength(1);
  });

  it('a job processed while another worker holds its lease is put back, not sent', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.deliveries.claim('job-leased', { now: new Date(), leaseMs: 60_000 });
    const result = await processJobMessage(
      { id: 'job-leased', to: { conversationId }, text: 'x' },
      { messageId: 'm', dequeueCount: 1 },
      e.deps(),
    );
    expect(result).toMatchObject({ status: 'deferred', why: 'lease held' });
    expect(deliveriesTo(conversationId)).toHaveLength(0);
  });
});

// The two things a 429 does are checked apart: each alone would delay a second POST to the same
// chat, so a test that only times that POST cannot tell whether both happen.
describe('a 429 from Teams', () => {
  it('puts the job back for exactly its Retry-After, and the record says when it is due', async () => {
    const e = env();
    const { conversationId } = await personalChat('amer', 'tenant-retry-after-delay');
    const { queue, count, visible } = await ownQueue('retry-after-delay');
    const now = new Date();
    e.connector.injectFault(Faults.throttle(30), { match: { conversationId }, times: 1 });
    // Backoff would say 250 ms here (base 500 ms, no jitter): far from the 30 s Teams asked for.
    const result = await process1(
      { id: 'job-ra-delay', to: { conversationId }, text: 'x' },
      e.deps({ queue, now: () => now }),
    );
    expect(result).toEqual({ status: 'retrying', jobId: 'job-ra-delay', code: 'Throttled', delayMs: 30_000 });
    expect(await e.deliveries.get('job-ra-delay')).toMatchObject({
      status: 'retrying',
      attempts: 1,
      lastErrorCode: 'Throttled',
      nextAttemptAt: new Date(now.getTime() + 30_000).toISOString(),
      history: [{ attempt: 1, outcome: 'retry', code: 'Throttled', status: 429 }],
    });
    // On the queue, and still invisible when a backoff-length delay would have passed.
    expect(await count()).toBe(1);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await visible()).toBe(0);
  });

  it('without Retry-After, the job backs off instead', async () => {
    const e = env();
    const { conversationId } = await personalChat('amer', 'tenant-retry-after-none');
    const { queue } = await ownQueue('retry-after-none');
    const now = new Date();
    e.connector.injectFault(Faults.throttleWithoutRetryAfter(), { match: { conversationId }, times: 1 });
    const result = await process1(
      { id: 'job-ra-none', to: { conversationId }, text: 'x' },
      e.deps({ queue, now: () => now }),
    );
    expect(result).toEqual({ status: 'retrying', jobId: 'job-ra-none', code: 'Throttled', delayMs: 250 });
    expect(await e.deliveries.get('job-ra-none')).toMatchObject({
      nextAttemptAt: new Date(now.getTime() + 250).toISOString(),
    });
  });

  it('pauses the chat for Retry-After on every instance: the next job to it waits, another chat does not', async () => {
    const e = env();
    const tenantId = 'tenant-retry-after-pause';
    const chat = await personalChat('amer', tenantId);
    const other = await personalChat('amer', tenantId);
    const { queue, count } = await ownQueue('retry-after-pause');
    const deps = e.deps({ queue });
    // Two sends to the chat just before: a 429 now is the chat's own limit (after a quiet chat, the
    // tenant's, which would pause the other chat too).
    for (const i of [1, 2])
      expect(
        await process1(
          { id: `job-pause-warm-${i}`, to: { conversationId: chat.conversationId }, text: `warm ${i}` },
          deps,
        ),
      ).toMatchObject({ status: 'sent' });
    e.connector.injectFault(Faults.throttle(20), { match: { conversationId: chat.conversationId }, times: 1 });
    expect(
      await process1({ id: 'job-pause-429', to: { conversationId: chat.conversationId }, text: 'throttled' }, deps),
    ).toMatchObject({ status: 'retrying', code: 'Throttled', delayMs: 20_000 });
    const requestsToChat = e.connector.requests.filter((r) => r.conversationId === chat.conversationId).length;

    // The next job to the chat is put back for about the pause, without a request and without an attempt.
    const next = await process1(
      { id: 'job-pause-next', to: { conversationId: chat.conversationId }, text: 'next' },
      deps,
    );
    expect(next).toMatchObject({ status: 'deferred', why: 'rate limit' });
    expect((next as { delayMs: number }).delayMs).toBeGreaterThan(15_000);
    expect(e.connector.requests.filter((r) => r.conversationId === chat.conversationId)).toHaveLength(requestsToChat);
    expect(await e.deliveries.get('job-pause-next')).toBeUndefined();
    expect(await count()).toBe(2);

    // Another chat of the tenant is not held up.
    expect(
      await process1({ id: 'job-pause-other', to: { conversationId: other.conversationId }, text: 'other' }, deps),
    ).toMatchObject({ status: 'sent' });

    // Another instance (its own budget, the shared roster) waits for the chat too, and not for the other chat.
    const instance2 = createSendBudget({
      roster: createBudgetRoster(e.storage.table(TABLES.budget)),
      ratePerSecond: e.config.tenantRatePerSecond,
    });
    try {
      expect(await instance2.acquire(chat.conversationId, tenantId)).toBeGreaterThan(15_000);
      // (A new member of a roster others send to waits a few seconds before its first send anyway.)
      expect(await instance2.acquire(other.conversationId, tenantId)).toBeLessThan(6_000);
    } finally {
      await instance2.close();
    }
  });
});

// The claim is what keeps a job id at one send when the queue hands it out twice. Only the first
// claim creates the record; these are claims of a record that exists already.
describe('two redeliveries of one job at the same moment', () => {
  it.each(['pending', 'retrying'] as const)('a %s job: one worker sends, the other puts it back', async (state) => {
    const e = env();
    const { conversationId } = await personalChat();
    const { queue, count } = await ownQueue(`claim-race-${state}`);
    const jobId = `job-claim-race-${state}`;
    const body = { id: jobId, to: { conversationId }, text: `once (${state})` };
    if (state === 'pending') {
      // What POST /api/notify writes before it queues the job.
      await e.deliveries.createPending(jobId, { kind: 'message' }, new Date());
    } else {
      e.connector.injectFault(Faults.status(503), { match: { conversationId }, times: 1 });
      expect(await process1(body, e.deps({ queue }))).toMatchObject({ status: 'retrying' });
    }
    const queuedBefore = await count();
    const deps = e.deps({ queue, deliveries: claimsTogether(e.deliveries, 2) });
    const results = await Promise.all([process1(body, deps, 'copy-1'), process1(body, deps, 'copy-2')]);
    const [winner, loser] = results[0]!.status === 'sent' ? results : [results[1]!, results[0]!];
    expect(winner).toMatchObject({ status: 'sent', jobId });
    // The loser reads again after its write is refused: it finds the winner's lease (and puts the
    // job back), or, when the winner was quick, the job already sent.
    if (loser!.status === 'deferred') {
      expect(loser).toMatchObject({ why: 'lease held' });
      expect(await count()).toBe(queuedBefore + 1);
      expect(await process1(body, e.deps({ queue }), 'copy-2')).toMatchObject({ status: 'skipped', existing: 'sent' });
    } else {
      expect(loser).toMatchObject({ status: 'skipped', existing: 'sent' });
      expect(await count()).toBe(queuedBefore);
    }
    expect(deliveriesTo(conversationId).filter((d) => d.activity?.text === body.text)).toHaveLength(1);
    expect(await e.deliveries.get(jobId)).toMatchObject({ status: 'sent', attempts: state === 'pending' ? 1 : 2 });
  });
});
