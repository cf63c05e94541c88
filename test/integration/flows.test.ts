/**
 * Issue-5 features through the real delivery path: update and delete by job id, broadcasts with
 * exact counts, scheduling, the HTTP API (validation, 202 + Location, status), and the welcome.
 */
import { describe, expect, it } from 'vitest';
import { ChannelTokenIssuer, fixtureActivity } from '../../host/emulator';
import { handleNotifyGet, handleNotifyPost } from '../../src/flows/notifyApi';
import { handleMessages, toWelcomeJob } from '../../src/inbound/handleMessages';
import { parseActivity } from '../../src/core/activity';
import { createLogger } from '../../src/log';
import { processJobMessage, type JobResult } from '../../src/outbound/processJob';
import { createJobQueue, type JobQueue } from '../../src/store/jobQueue';
import { USER_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();
const log = createLogger(() => undefined);

let n = 0;
async function chats(
  count: number,
  tenantId = USER_TENANT,
): Promise<{ conversationId: string; aadObjectId: string }[]> {
  const e = env();
  const out: { conversationId: string; aadObjectId: string }[] = [];
  for (let i = 0; i < count; i += 1) {
    n += 1;
    const conversationId = `a:flows-${n}`;
    const aadObjectId = `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    const activity = fixtureActivity('message.personal', {
      serviceUrl: e.connector.serviceUrl('amer'),
      conversationId,
    });
    (activity.from as Record<string, string>).aadObjectId = aadObjectId;
    (activity.from as Record<string, string>).id = `29:flows-${n}`;
    (activity.conversation as Record<string, string>).tenantId = tenantId;
    await e.capture(activity);
    out.push({ conversationId, aadObjectId });
  }
  return out;
}

function post(
  body: unknown,
  url = 'https://courier.example/api/notify?code=func-key',
  queue: JobQueue = env().deps().queue,
) {
  const e = env();
  return handleNotifyPost(
    {
      method: 'POST',
      url,
      headers: new Headers({ 'content-type': 'application/json' }),
      body: new Blob([JSON.stringify(body)]).stream() as ReadableStream<Uint8Array>,
    },
    { deliveries: e.deliveries, queue, now: () => new Date(), log, authenticate: fullTrust },
  );
}

/** A job queue of the test's own: its messages can be counted exactly, and taken one at a time. */
async function ownQueue(name: string) {
  const e = env();
  const jobs = e.storage.queue(name);
  await jobs.createIfNotExists();
  const poison = e.storage.queue(`${name}-poison`);
  await poison.createIfNotExists();
  const queue = createJobQueue({ jobs, poison });
  return {
    queue,
    /** Messages on the queue, visible or not. */
    count: async () => (await jobs.getProperties()).approximateMessagesCount ?? 0,
    /** Plays the host for the messages there now, one after the other. */
    async process(): Promise<JobResult[]> {
      const results: JobResult[] = [];
      const { receivedMessageItems } = await jobs.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
      for (const m of receivedMessageItems) {
        results.push(
          await processJobMessage(
            JSON.parse(m.messageText),
            { messageId: m.messageId, dequeueCount: m.dequeueCount },
            e.deps({ queue }),
          ),
        );
        await jobs.deleteMessage(m.messageId, m.popReceipt);
      }
      return results;
    },
  };
}
const fullTrust = async (): Promise<undefined> => undefined;
const getRequest = { method: 'GET', headers: new Headers(), body: null };
const get = (id: string) =>
  handleNotifyGet(getRequest, id, {
    deliveries: env().deliveries,
    now: () => new Date(),
    log,
    authenticate: fullTrust,
  });

describe('update and delete by job id', () => {
  it('replaces and removes what an earlier job sent (PUT and DELETE on its activity)', async () => {
    const e = env();
    const [chat] = await chats(1);
    await e.enqueue({ id: 'deploy-77', to: { conversationId: chat!.conversationId }, text: 'Deploy 77: step 1 of 5' });
    await e.drain();
    const activityId = (await e.deliveries.get('deploy-77'))!.activityId!;

    await e.enqueue({ id: 'deploy-77-u3', update: 'deploy-77', text: 'Deploy 77: step 3 of 5' });
    await e.drain();
    const put = e.connector.requests.find((r) => r.method === 'PUT' && r.conversationId === chat!.conversationId)!;
    expect(put).toMatchObject({ activityId, status: 200 });
    expect(put.body).toMatchObject({ type: 'message', id: activityId, text: 'Deploy 77: step 3 of 5' });
    expect(await e.deliveries.get('deploy-77-u3')).toMatchObject({
      status: 'sent',
      activityId,
      conversationId: chat!.conversationId,
    });

    await e.enqueue({ id: 'deploy-77-del', delete: 'deploy-77' });
    await e.drain();
    expect(
      e.connector.requests.find((r) => r.method === 'DELETE' && r.conversationId === chat!.conversationId),
    ).toMatchObject({ activityId, status: 200 });
    expect(await e.deliveries.get('deploy-77-del')).toMatchObject({ status: 'sent' });
  });

  it('waits for an earlier job that is not delivered yet, and fails for one that failed or is unknown', async () => {
    const e = env();
    const [chat] = await chats(1);
    await e.deliveries.createPending('slow-1', { kind: 'message' }, new Date());
    const early = await processJobMessage(
      { id: 'slow-1-u', update: 'slow-1', text: 'x' },
      { messageId: 'm', dequeueCount: 1 },
      e.deps(),
    );
    expect(early).toMatchObject({ status: 'retrying', code: 'TargetJobNotSent' });

    await e.enqueue({ id: 'upd-unknown', update: 'never-existed', text: 'x' });
    await e.enqueue({ id: 'gone', to: { conversationId: 'a:unknown-for-update' }, text: 'x' });
    await e.drain();
    await e.enqueue({ id: 'upd-failed', update: 'gone', text: 'x' });
    const results = await e.drain();
    expect(await e.deliveries.get('upd-unknown')).toMatchObject({
      status: 'failed',
      lastErrorCode: 'TargetJobUnknown',
    });
    expect(results).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ jobId: 'upd-failed', status: 'failed', code: 'TargetJobFailed' }),
      ]),
    );
    expect(chat).toBeDefined();
  });
});

describe('broadcasts', () => {
  it('fans out to a list of users, one message each, with exact counts', async () => {
    const e = env();
    const recipients = await chats(30, 'tenant-broadcast-users');
    await e.enqueue({
      id: 'bc-users',
      to: { aadObjectIds: recipients.map((r) => r.aadObjectId), tenantId: 'tenant-broadcast-users' },
      text: 'Training due',
    });
    await e.drain({ timeoutMs: 60_000 });
    for (const r of recipients)
      expect(e.connector.delivered.filter((d) => d.conversationId === r.conversationId)).toHaveLength(1);
    expect(await e.deliveries.countChildren('bc-users')).toEqual({ total: 30, pending: 0, sent: 30, failed: 0 });
    const status = await get('bc-users');
    expect(status).toMatchObject({
      status: 200,
      jsonBody: { status: 'sent', total: 30, sent: 30, failed: 0, pending: 0 },
    });
  });

  it('fans out to every installed conversation of a tenant, in chunks, skipping uninstalled ones', async () => {
    const e = env();
    const recipients = await chats(8, 'tenant-broadcast-all');
    // One uninstalls: it must not be messaged.
    await e.capture({
      ...fixtureActivity('installationUpdate.remove.personal', {
        serviceUrl: e.connector.serviceUrl('amer'),
        conversationId: recipients[0]!.conversationId,
      }),
      conversation: {
        id: recipients[0]!.conversationId,
        conversationType: 'personal',
        tenantId: 'tenant-broadcast-all',
      },
    });
    await e.enqueue({
      id: 'bc-all',
      to: { allInstalled: true, tenantId: 'tenant-broadcast-all' },
      text: 'Maintenance Saturday',
    });
    await e.drain({ timeoutMs: 60_000 });
    expect(
      e.connector.delivered.filter(
        (d) => d.conversationId === recipients[0]!.conversationId && d.activity?.text === 'Maintenance Saturday',
      ),
    ).toHaveLength(0);
    for (const r of recipients.slice(1))
      expect(
        e.connector.delivered.filter(
          (d) => d.conversationId === r.conversationId && d.activity?.text === 'Maintenance Saturday',
        ),
      ).toHaveLength(1);
    expect(await e.deliveries.countChildren('bc-all')).toEqual({ total: 7, pending: 0, sent: 7, failed: 0 });
  });

  it('a broadcast message delivered twice to the queue still reaches each recipient once', async () => {
    const e = env();
    const recipients = await chats(5, 'tenant-broadcast-dup');
    const job = { id: 'bc-dup', to: { aadObjectIds: recipients.map((r) => r.aadObjectId) }, text: 'once' };
    await e.enqueue(job);
    await e.enqueue(job);
    await e.drain({ timeoutMs: 60_000 });
    for (const r of recipients)
      expect(
        e.connector.delivered.filter((d) => d.conversationId === r.conversationId && d.activity?.text === 'once'),
      ).toHaveLength(1);
    expect(await e.deliveries.countChildren('bc-dup')).toMatchObject({ total: 5, sent: 5 });
  });
});

describe('scheduling', () => {
  it('does not deliver before notBefore, and delivers after', async () => {
    const e = env();
    const [chat] = await chats(1);
    const notBefore = new Date(Date.now() + 2_500);
    await e.enqueue({
      id: 'sched-1',
      to: { conversationId: chat!.conversationId },
      text: 'later',
      notBefore: notBefore.toISOString(),
    });
    await e.drain({ timeoutMs: 20_000 });
    const delivered = e.connector.delivered.filter((d) => d.conversationId === chat!.conversationId);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.time).toBeGreaterThanOrEqual(notBefore.getTime());
  });

  it('a notBefore more than 7 days ahead fails with a clear reason', async () => {
    const e = env();
    const [chat] = await chats(1);
    await e.enqueue({
      id: 'sched-far',
      to: { conversationId: chat!.conversationId },
      text: 'x',
      notBefore: new Date(Date.now() + 8 * 86_400_000).toISOString(),
    });
    expect(await e.drain()).toEqual([
      expect.objectContaining({
        status: 'failed',
        code: 'ScheduleTooFar',
        reason: expect.stringContaining('more than 7 days ahead'),
      }),
    ]);
  });
});

describe('POST /api/notify and GET /api/notify/{id}', () => {
  it('accepts a job with 202 and a Location to poll until it is sent', async () => {
    const e = env();
    const [chat] = await chats(1);
    const accepted = await post({ id: 'api-1', to: { conversationId: chat!.conversationId }, text: 'via HTTP' });
    expect(accepted).toMatchObject({
      status: 202,
      headers: { Location: 'https://courier.example/api/notify/api-1', 'Retry-After': '2' },
      jsonBody: { id: 'api-1', status: 'pending' },
    });
    expect(await get('api-1')).toMatchObject({
      status: 202,
      headers: { 'Retry-After': expect.any(String) },
      jsonBody: { status: 'pending' },
    });
    await e.drain();
    expect(await get('api-1')).toMatchObject({
      status: 200,
      jsonBody: { id: 'api-1', status: 'sent', attempts: 1, activityId: expect.any(String) },
    });
    expect(await get('no-such-job')).toMatchObject({ status: 404 });
  });

  it('gives a job without an id one of its own', async () => {
    const e = env();
    const [chat] = await chats(1);
    const own = await ownQueue('notify-generated-id');
    const first = await post(
      { to: { conversationId: chat!.conversationId }, text: 'generated id' },
      undefined,
      own.queue,
    );
    const id = (first.jsonBody as { id: string }).id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await own.count()).toBe(1);
    expect(await own.process()).toEqual([expect.objectContaining({ status: 'sent', jobId: id })]);
    expect(await e.deliveries.get(id)).toMatchObject({ status: 'sent' });
  });

  // A repeat of a pending id is queued again on purpose: the first submission may have recorded
  // the job and then failed to queue it (503). Once a worker has claimed the job, or sent it, a
  // repeat queues nothing.
  it('a repeated id is queued again while still pending, never once claimed or sent, and Teams gets one message', async () => {
    const e = env();
    const [chat] = await chats(1);
    const own = await ownQueue('notify-repeat');
    const job = { id: `repeat-${n}`, to: { conversationId: chat!.conversationId }, text: 'a repeated id' };
    expect(await post(job, undefined, own.queue)).toMatchObject({ status: 202, jsonBody: { id: job.id } });
    expect(await own.count()).toBe(1);
    expect(await post(job, undefined, own.queue)).toMatchObject({ status: 202, jsonBody: { id: job.id } });
    expect(await own.count()).toBe(2);
    // The sender takes both messages: the first sends, the second finds the job sent.
    expect((await own.process()).map((r) => r.status)).toEqual(['sent', 'skipped']);
    expect(await own.count()).toBe(0);
    // Sent: a repeat is answered, and queues nothing.
    expect(await post(job, undefined, own.queue)).toMatchObject({ status: 202, jsonBody: { id: job.id } });
    expect(await own.count()).toBe(0);
    expect(e.connector.delivered.filter((d) => d.conversationId === chat!.conversationId)).toHaveLength(1);
    expect(await e.deliveries.get(job.id)).toMatchObject({ status: 'sent', attempts: 1 });

    // Claimed by a worker (sending): a repeat queues nothing either.
    const claimedJob = { ...job, id: `repeat-claimed-${n}` };
    await post(claimedJob, undefined, own.queue);
    expect(await own.count()).toBe(1);
    expect(await e.deliveries.claim(claimedJob.id, { now: new Date(), leaseMs: 60_000 })).toMatchObject({
      kind: 'claimed',
    });
    expect(await post(claimedJob, undefined, own.queue)).toMatchObject({ status: 202 });
    expect(await own.count()).toBe(1);
    // And a failed id: nothing.
    const failedJob = { ...job, id: `repeat-failed-${n}` };
    await e.deliveries.recordRejected(failedJob.id, 'InvalidJob', 'x', new Date());
    expect(await post(failedJob, undefined, own.queue)).toMatchObject({ status: 202 });
    expect(await own.count()).toBe(1);
  });

  it('takes an array of up to 100 jobs as a batch whose status counts them', async () => {
    const e = env();
    const targets = await chats(3);
    const accepted = await post(
      targets.map((t, i) => ({
        id: `batch-job-${n}-${i}`,
        to: { conversationId: t.conversationId },
        text: `batch ${i}`,
      })),
    );
    expect(accepted.status).toBe(202);
    const body = accepted.jsonBody as { id: string; jobs: { id: string; statusUrl: string }[] };
    expect(body.jobs).toHaveLength(3);
    expect(await get(body.id)).toMatchObject({
      status: 202,
      jsonBody: { kind: 'batch', status: 'pending', total: 3, pending: 3 },
    });
    await e.drain();
    expect(await get(body.id)).toMatchObject({
      status: 200,
      jsonBody: { status: 'sent', total: 3, sent: 3, pending: 0 },
    });
  });

  it('answers 400 listing every problem of every job, and queues nothing', async () => {
    const e = env();
    const before = (await e.jobs.getProperties()).approximateMessagesCount ?? 0;
    const response = await post([
      { id: 'ok', to: { conversationId: 'a:1' }, text: 'fine' },
      { to: { conversationId: 'a:1', aadObjectId: 'u' }, textFormat: 'html' },
      {
        id: 'ok',
        to: { channelId: '19:c' },
        text: 'x',
        notBefore: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      },
      'not a job',
    ]);
    expect(response.status).toBe(400);
    const problems = (response.jsonBody as { problems: { path: string; message: string }[] }).problems.map(
      (p) => `${p.path}: ${p.message}`,
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[1\]\.to: has conflicting targets/),
        '[1].textFormat: must be one of markdown, plain, xml',
        '[2].notBefore: is more than 7 days ahead; a queue cannot hold a message that long',
        '[2].id: "ok" appears more than once in this request',
        '[3]: must be a JSON object',
      ]),
    );
    expect((await e.jobs.getProperties()).approximateMessagesCount ?? 0).toBe(before);
    expect(await post(Array.from({ length: 101 }, () => ({ to: { conversationId: 'a:1' }, text: 'x' })))).toMatchObject(
      { status: 400 },
    );
    expect(await post([])).toMatchObject({ status: 400 });
  });
});

describe('welcome message', () => {
  it('an install queues one welcome job, with an id from the install activity', async () => {
    const e = env();
    const issuer = await ChannelTokenIssuer.create();
    const activity = fixtureActivity('installationUpdate.add.personal', { serviceUrl: e.connector.serviceUrl('amer') });
    expect(toWelcomeJob(parseActivity(activity), 'a:x', { text: 'Hi' })).toMatchObject({
      id: `welcome-${String(activity.id)}`,
      to: { conversationId: 'a:x' },
      text: 'Hi',
    });
    expect(toWelcomeJob(parseActivity({ ...activity, action: 'add-upgrade' }), 'a:x', { text: 'Hi' })).toBeUndefined();
    expect(
      toWelcomeJob(parseActivity({ ...activity, type: 'conversationUpdate' }), 'a:x', { text: 'Hi' }),
    ).toBeUndefined();

    const queued: Record<string, unknown>[] = [];
    const response = await handleMessages(
      {
        method: 'POST',
        headers: new Headers({
          'content-type': 'application/json',
          authorization: `Bearer ${await issuer.mintChannelToken({ appId: '00000000-0000-4000-8000-0000000000b0', serviceUrl: String(activity.serviceUrl) })}`,
        }),
        body: new Blob([JSON.stringify(activity)]).stream() as ReadableStream<Uint8Array>,
      },
      {
        verifier: {
          verify: async () => ({
            claims: { serviceurl: String(activity.serviceUrl) },
            header: { alg: 'RS256' },
            key: { kty: 'RSA', endorsements: ['msteams'] },
          }),
        },
        store: e.conversations,
        now: () => new Date(),
        log,
        welcome: { content: { text: 'I send your invoice reminders.' }, enqueue: async (job) => void queued.push(job) },
      },
    );
    expect(response.status).toBe(200);
    expect(queued).toEqual([
      expect.objectContaining({
        text: 'I send your invoice reminders.',
        to: { conversationId: (activity.conversation as { id: string }).id },
      }),
    ]);
  });
});
