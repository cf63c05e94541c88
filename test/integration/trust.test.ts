/**
 * The holes an outside review found in the flow API and the sender (issue 9), each tried the way an
 * attacker or an unlucky flow would, through the real stores (Azurite) and the Connector stub.
 */
import { describe, expect, it } from 'vitest';
import { Faults, fixtureActivity } from '../../host/emulator';
import type { Submitter } from '../../src/core/admission';
import { StorageUnavailableError } from '../../src/errors';
import { handleNotify, type NotifyDeps } from '../../src/flows/notifyApi';
import { createLogger } from '../../src/log';
import type { SenderDeps } from '../../src/outbound/processJob';
import { USER_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();
const log = createLogger(() => undefined);
const OTHER_TENANT = '0ther000-0000-4000-8000-00000000beef';

let n = 0;
async function personalChat(tenantId = USER_TENANT): Promise<string> {
  n += 1;
  const conversationId = `a:trust-${n}`;
  const activity = fixtureActivity('message.personal', {
    serviceUrl: env().connector.serviceUrl('amer'),
    conversationId,
    tenantId,
  });
  (activity.from as Record<string, string>).aadObjectId = `20000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  await env().capture(activity);
  return conversationId;
}

async function channel(): Promise<string> {
  n += 1;
  const channelId = `19:trust-${n}@thread.tacv2`;
  await env().capture(
    fixtureActivity('conversationUpdate.channel.botAdded', {
      serviceUrl: env().connector.serviceUrl('amer'),
      conversationId: channelId,
    }),
  );
  return channelId;
}

interface CallOptions {
  readonly submitter?: Submitter;
  readonly url?: string;
  readonly queue?: NotifyDeps['queue'];
}

function call(method: 'GET' | 'POST', id: string | undefined, body: unknown, options: CallOptions = {}) {
  const e = env();
  const url = options.url ?? `https://courier.example/api/notify${id === undefined ? '' : `/${id}`}`;
  return handleNotify(
    {
      method,
      url,
      headers: new Headers({ 'content-type': 'application/json' }),
      body: body === undefined ? null : (new Blob([JSON.stringify(body)]).stream() as ReadableStream<Uint8Array>),
    },
    id,
    {
      deliveries: e.deliveries,
      queue: options.queue ?? e.deps().queue,
      now: () => new Date(),
      log,
      authenticate: async () => options.submitter,
    },
  );
}
const post = (body: unknown, options?: CallOptions) => call('POST', undefined, body, options);
const status = (id: string, options?: CallOptions) => call('GET', id, undefined, options);

const BILLING: Submitter = { name: 'billing' };
const HR: Submitter = { name: 'hr', tenants: [USER_TENANT] };
/** The sender knows the callers from FLOW_CALLERS. */
const withCallers = (): Partial<SenderDeps> => ({
  config: {
    ...env().config,
    callerTenants: new Map([
      ['billing', null],
      ['hr', [USER_TENANT]],
    ]),
  },
});

describe('a job can never name its own envelope', () => {
  it('a raw activity carrying teamsCourier/job keys is refused, and the job it aimed at is delivered untouched', async () => {
    const e = env();
    const victimChat = await personalChat();
    const attackerChat = await personalChat();
    expect((await post({ id: 'victim-1', to: { conversationId: victimChat }, text: 'the real message' })).status).toBe(
      202,
    );

    const attack = await post({
      type: 'message',
      conversation: { id: attackerChat },
      text: 'hijacked',
      teamsCourier: { jobId: 'victim-1', deferrals: 0 },
      job: { to: { conversationId: attackerChat }, text: 'hijacked' },
    });
    expect(attack.status).toBe(400);
    const paths = (attack.jsonBody as { problems: { path: string }[] }).problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['teamsCourier', 'job']));

    await e.drain();
    expect(
      e.connector.delivered
        .filter((d) => d.conversationId === victimChat)
        .map((d) => (d.activity as { text?: string }).text),
    ).toEqual(['the real message']);
    expect(e.connector.delivered.some((d) => d.conversationId === attackerChat)).toBe(false);
    expect(await e.deliveries.get('victim-1')).toMatchObject({ status: 'sent', conversationId: victimChat });
  });

  it('a raw activity queued through the API is wrapped: its own keys never become the envelope', async () => {
    const e = env();
    const chat = await personalChat();
    const accepted = await post({ id: 'raw-1', type: 'message', conversation: { id: chat }, text: 'raw form' });
    expect(accepted.status).toBe(202);
    await e.drain();
    expect(await e.deliveries.get('raw-1')).toMatchObject({ status: 'sent', conversationId: chat });
  });
});

describe('the function key is never echoed', () => {
  it('Location and statusUrl carry no ?code=, for one job and for a batch', async () => {
    const chat = await personalChat();
    const url = 'https://courier.example/api/notify?code=SECRET-FUNCTION-KEY';
    const one = await post({ id: 'key-1', to: { conversationId: chat }, text: 'x' }, { url });
    const batch = await post([{ id: 'key-2', to: { conversationId: chat }, text: 'y' }], { url });
    for (const response of [one, batch]) {
      expect(response.status).toBe(202);
      expect(JSON.stringify(response)).not.toContain('SECRET-FUNCTION-KEY');
      expect(response.headers?.Location).toMatch(/^https:\/\/courier\.example\/api\/notify\/[^?]+$/);
    }
    await env().drain();
  });

  it('one function answers both POST /api/notify and GET /api/notify/{id}, so one function-scoped key does both', async () => {
    expect((await call('GET', undefined, undefined)).status).toBe(405);
    expect((await call('POST', 'some-id', {})).status).toBe(405);
    expect((await status('never-submitted')).status).toBe(404);
  });
});

describe('ids', () => {
  it('"id": null twice gives two jobs with ids of their own, and both are delivered', async () => {
    const e = env();
    const chat = await personalChat();
    const first = await post({ id: null, to: { conversationId: chat }, text: 'one' });
    const second = await post({ id: null, to: { conversationId: chat }, text: 'two' });
    const ids = [first, second].map((r) => (r.jsonBody as { id: string }).id);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids).not.toContain('null');
    await e.drain();
    expect(e.connector.delivered.filter((d) => d.conversationId === chat)).toHaveLength(2);
  });

  it('an id too long for a table key once escaped is a 400 naming the field, not a 500', async () => {
    const chat = await personalChat();
    // 100 characters, but an unpaired surrogate takes six once escaped (%uD800): 600 > 512.
    const response = await post({ id: '\uD800'.repeat(100), to: { conversationId: chat }, text: 'x' });
    expect(response.status).toBe(400);
    expect(response.jsonBody).toMatchObject({
      problems: [{ path: 'id', message: expect.stringContaining('too long once escaped') }],
    });
  });

  it('such an id written straight to the queue is failed with a record under the message id, never a poison without a record', async () => {
    const e = env();
    const chat = await personalChat();
    await e.enqueue({ id: '\uDC00'.repeat(100), to: { conversationId: chat }, text: 'x' });
    const [result] = await e.drain();
    expect(result).toMatchObject({ status: 'failed', code: 'InvalidJob' });
    expect(await e.deliveries.get(result!.jobId)).toMatchObject({ status: 'failed', lastErrorCode: 'InvalidJob' });
  });

  it.each(['welcome-123', 'some-broadcast~4'])(
    'refuses the reserved id %s (ours: install welcomes and broadcast children)',
    async (id) => {
      const chat = await personalChat();
      const response = await post({ id, to: { conversationId: chat }, text: 'squatting' });
      expect(response.status).toBe(400);
      expect(response.jsonBody).toMatchObject({
        problems: [{ path: 'id', message: expect.stringContaining('reserved') }],
      });
    },
  );

  it('a reserved id written straight to the queue is refused by the sender and leaves the real record alone', async () => {
    const e = env();
    const chat = await personalChat();
    await e.enqueue({ id: 'welcome-squat', to: { conversationId: chat }, text: 'squatting' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'InvalidJob' })]);
    expect(await e.deliveries.get('welcome-squat')).toBeUndefined();
    expect(e.connector.delivered.some((d) => d.conversationId === chat)).toBe(false);
  });

  it('".." as a conversation id is refused before any request', async () => {
    const response = await post({ to: { conversationId: '..' }, text: 'x' });
    expect(response.status).toBe(400);
    expect(response.jsonBody).toMatchObject({
      problems: [{ path: 'to.conversationId', message: expect.stringContaining('..') }],
    });
  });
});

describe('a submission that could not be queued is not lost', () => {
  it('a repeat of a still-pending id queues it again after a failed enqueue (503), and it is delivered once', async () => {
    const e = env();
    const chat = await personalChat();
    const real = e.deps().queue;
    let failures = 1;
    const flaky: NotifyDeps['queue'] = {
      requeue: async (text, delayMs) => {
        if (failures > 0) {
          failures -= 1;
          throw new StorageUnavailableError('queue down');
        }
        return real.requeue(text, delayMs);
      },
    };
    const job = { id: 'lost-on-retry', to: { conversationId: chat }, text: 'eventually' };
    expect((await post(job, { queue: flaky })).status).toBe(503);
    expect(await e.deliveries.get('lost-on-retry')).toMatchObject({ status: 'pending' });
    expect((await post(job, { queue: flaky })).status).toBe(202);
    // A third repeat while the first queued copy is still on the queue: harmless, still one send.
    expect((await post(job)).status).toBe(202);
    await e.drain();
    expect(e.connector.delivered.filter((d) => d.conversationId === chat)).toHaveLength(1);
    expect(await e.deliveries.get('lost-on-retry')).toMatchObject({ status: 'sent' });
  });
});

describe('callers authenticated with Entra ID', () => {
  it("each caller sees only its own jobs: status, update and delete of another caller's id find nothing", async () => {
    const e = env();
    const chat = await personalChat();
    expect(
      (await post({ id: 'inv-1', to: { conversationId: chat }, text: 'billing says hi' }, { submitter: BILLING }))
        .status,
    ).toBe(202);
    await e.drain({ deps: withCallers() });

    const own = await status('inv-1', { submitter: BILLING });
    expect(own).toMatchObject({ status: 200, jsonBody: { id: 'inv-1', status: 'sent' } });
    expect((await status('inv-1', { submitter: HR })).status).toBe(404);
    expect((await status('inv-1')).status).toBe(404); // the full-trust namespace is not billing's either

    expect((await post({ id: 'hr-update', update: 'inv-1', text: 'defaced' }, { submitter: HR })).status).toBe(202);
    expect((await post({ id: 'hr-delete', delete: 'inv-1' }, { submitter: HR })).status).toBe(202);
    const results = await e.drain({ deps: withCallers() });
    expect(results).toEqual(
      expect.arrayContaining([expect.objectContaining({ status: 'failed', code: 'TargetJobUnknown' })]),
    );
    expect(e.connector.requests.filter((r) => r.conversationId === chat && r.method !== 'POST')).toEqual([]);

    // Billing can change its own message.
    expect(
      (await post({ id: 'inv-1-fix', update: 'inv-1', text: 'billing fixed it' }, { submitter: BILLING })).status,
    ).toBe(202);
    await e.drain({ deps: withCallers() });
    expect(await status('inv-1-fix', { submitter: BILLING })).toMatchObject({
      status: 200,
      jsonBody: { status: 'sent' },
    });
  });

  it('a caller limited to tenants cannot name another tenant, nor reach one through a conversation id', async () => {
    const e = env();
    const foreign = await personalChat(OTHER_TENANT);
    const named = await post(
      { to: { aadObjectId: '20000000-0000-4000-8000-00000000ffff', tenantId: OTHER_TENANT }, text: 'x' },
      { submitter: HR },
    );
    expect(named.status).toBe(400);
    expect(named.jsonBody).toMatchObject({ problems: [{ path: 'to.tenantId' }] });
    const everyone = await post({ to: { allInstalled: true }, text: 'x' }, { submitter: HR });
    expect(everyone.jsonBody).toMatchObject({
      problems: [{ path: 'to.tenantId', message: expect.stringContaining('required') }],
    });

    expect((await post({ id: 'sneaky', to: { conversationId: foreign }, text: 'x' }, { submitter: HR })).status).toBe(
      202,
    );
    expect(await e.drain({ deps: withCallers() })).toEqual([
      expect.objectContaining({ status: 'failed', code: 'TenantNotAllowed' }),
    ]);
    expect(e.connector.delivered.some((d) => d.conversationId === foreign)).toBe(false);
  });

  it("a caller's broadcast children stay in its namespace and its tenant limits", async () => {
    const e = env();
    const chats = [await personalChat(), await personalChat()];
    const response = await post(
      {
        id: 'hr-all',
        to: { allInstalled: true, tenantId: USER_TENANT, conversationType: 'personal' },
        text: 'all hands',
      },
      { submitter: HR },
    );
    expect(response.status).toBe(202);
    await e.drain({ deps: withCallers() });
    const view = await status('hr-all', { submitter: HR });
    expect(view.status).toBe(200);
    expect(view.jsonBody).toMatchObject({ id: 'hr-all', failed: 0 });
    for (const chat of chats) expect(e.connector.delivered.some((d) => d.conversationId === chat)).toBe(true);
    expect(await e.deliveries.get('hr:hr-all~0')).toMatchObject({ status: 'sent' });
    const counts = await e.deliveries.countChildren('hr:hr-all');
    expect(counts).toMatchObject({ pending: 0, failed: 0, sent: counts.total });
  });
});

describe('only conversation-level refusals mark a conversation', () => {
  it('a 403 on a reply to one thread leaves the channel deliverable', async () => {
    const e = env();
    const channelId = await channel();
    e.connector.injectFault(Faults.error('ConversationBlockedByUser'), {
      match: { conversationId: `${channelId};messageid=111` },
      times: 1,
    });
    await e.enqueue({ id: 'thread-reply-403', to: { channelId, threadId: '111' }, text: 'reply' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'ConversationBlockedByUser' })]);
    expect((await e.conversations.get(channelId))?.undeliverableReason).toBeUndefined();

    await e.enqueue({ id: 'channel-post-after', to: { channelId }, text: 'post' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent' })]);
  });

  it('a 403 that refuses one activity (NotEnoughPermissions) fails that job only', async () => {
    const e = env();
    const chat = await personalChat();
    e.connector.injectFault(Faults.error('NotEnoughPermissions'), { match: { conversationId: chat }, times: 1 });
    await e.enqueue({ id: 'activity-403', to: { conversationId: chat }, text: 'x' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'NotEnoughPermissions' })]);
    expect((await e.conversations.get(chat))?.undeliverableReason).toBeUndefined();
    await e.enqueue({ id: 'activity-403-next', to: { conversationId: chat }, text: 'y' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent' })]);
  });
});

describe('clouds', () => {
  it('without a GCC host (US gov clouds), InvalidBotApiHost fails; the token goes nowhere else', async () => {
    const e = env();
    const chat = await personalChat();
    const { gccServiceUrl: _unused, ...config } = e.config;
    e.connector.injectFault(Faults.error('InvalidBotApiHost'), { match: { conversationId: chat }, times: 1 });
    await e.enqueue({ id: 'gov-invalid-host', to: { conversationId: chat }, text: 'x' });
    expect(await e.drain({ deps: { config } })).toEqual([
      expect.objectContaining({ status: 'failed', code: 'InvalidBotApiHost' }),
    ]);
    expect(e.connector.requests.filter((r) => r.conversationId === chat)).toHaveLength(1);
  });
});
