/**
 * The operator CLI, run in-process (runCli) against a real Azurite: what `send` puts on the queue
 * for each target, that invalid input is refused before anything is queued, how `status` renders
 * records written by the delivery store, `--wait` / `--watch`, and `conversations list`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_ACCOUNT_KEY } from '../../host/azurite';
import { loadCliSettings } from '../../src/cli/settings';
import { loadConfig, type StorageConfig } from '../../src/config';
import { parseActivity, toCapturePlan, type CapturePlan } from '../../src/core/activity';
import { parseJob } from '../../src/core/job';
import { storesFor, useAzurite } from '../helpers/storage';
import { delay, emptyDir, removeTempDirs, run, uniqueQueue } from './helpers';

const storage = useAzurite();
afterAll(removeTempDirs);
const USER = '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1';
const TENANT = '72f988bf-0000-4000-8000-00000000c0de';

function envFor(queue: string): Record<string, string> {
  return { AzureWebJobsStorage: storage().azurite.connectionString, OUTBOUND_QUEUE: queue };
}

/** Every message on the queue (visible ones), parsed; the queue is left as it was. */
async function queued(queue: string): Promise<unknown[]> {
  const client = storage().queue(queue);
  if (!(await client.exists())) return [];
  const peeked = await client.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => JSON.parse(m.messageText) as unknown);
}

async function messageCount(queue: string): Promise<number> {
  const client = storage().queue(queue);
  if (!(await client.exists())) return 0;
  return (await client.getProperties()).approximateMessagesCount ?? 0;
}

function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

describe('teams-courier send', () => {
  const cases: { name: string; argv: string[]; job: Record<string, unknown> }[] = [
    {
      name: '--to with --tenant, --format',
      argv: [
        '--to',
        USER,
        '--tenant',
        TENANT,
        '--text',
        'Invoice **4711** is overdue.',
        '--format',
        'plain',
        '--id',
        'cli-user-1',
      ],
      job: {
        id: 'cli-user-1',
        to: { aadObjectId: USER, tenantId: TENANT },
        text: 'Invoice **4711** is overdue.',
        textFormat: 'plain',
      },
    },
    {
      name: '--to twice (a broadcast to users)',
      argv: ['--to', USER, '--to', 'second-user', '--text', 'Training is due', '--id', 'cli-users-1'],
      job: { id: 'cli-users-1', to: { aadObjectIds: [USER, 'second-user'] }, text: 'Training is due' },
    },
    {
      name: '--conversation with --summary',
      argv: [
        '--conversation',
        '19:meeting_abc@thread.v2',
        '--text',
        'Build 2231 passed',
        '--summary',
        'Build passed',
        '--id=cli-conv-1',
      ],
      job: {
        id: 'cli-conv-1',
        to: { conversationId: '19:meeting_abc@thread.v2' },
        text: 'Build 2231 passed',
        summary: 'Build passed',
      },
    },
    {
      name: '--channel with --thread',
      argv: [
        '--channel',
        '19:ops@thread.tacv2',
        '--thread',
        '1763660000000',
        '--text',
        'Fixed.',
        '--id',
        'cli-thread-1',
      ],
      job: { id: 'cli-thread-1', to: { channelId: '19:ops@thread.tacv2', threadId: '1763660000000' }, text: 'Fixed.' },
    },
    {
      name: '--all-installed with --tenant and --type',
      argv: [
        '--all-installed',
        '--tenant',
        TENANT,
        '--type',
        'personal',
        '--text',
        'Maintenance on Saturday',
        '--id',
        'cli-all-1',
      ],
      job: {
        id: 'cli-all-1',
        to: { allInstalled: true, tenantId: TENANT, conversationType: 'personal' },
        text: 'Maintenance on Saturday',
      },
    },
    {
      name: '--update',
      argv: ['--update', 'cli-user-1', '--text', 'Invoice 4711 was paid.', '--id', 'cli-update-1'],
      job: { id: 'cli-update-1', update: 'cli-user-1', text: 'Invoice 4711 was paid.' },
    },
    {
      name: '--delete',
      argv: ['--delete', 'cli-user-1', '--id', 'cli-delete-1'],
      job: { id: 'cli-delete-1', delete: 'cli-user-1' },
    },
    {
      name: '--batch-to five times with --tenant (a Teams batch to users)',
      argv: [
        ...['u1', 'u2', 'u3', 'u4', '29:u5'].flatMap((u) => ['--batch-to', u]),
        '--tenant',
        TENANT,
        '--text',
        'Enrolment closes Friday',
        '--id',
        'cli-batch-users',
      ],
      job: {
        id: 'cli-batch-users',
        to: { batch: 'users', users: ['u1', 'u2', 'u3', 'u4', '29:u5'], tenantId: TENANT },
        text: 'Enrolment closes Friday',
      },
    },
    {
      name: '--batch-tenant',
      argv: ['--batch-tenant', TENANT, '--text', 'Maintenance tonight', '--id', 'cli-batch-tenant'],
      job: { id: 'cli-batch-tenant', to: { batch: 'tenant', tenantId: TENANT }, text: 'Maintenance tonight' },
    },
    {
      name: '--batch-team with --tenant',
      argv: [
        '--batch-team',
        '19:team@thread.tacv2',
        '--tenant',
        TENANT,
        '--text',
        'Handover',
        '--id',
        'cli-batch-team',
      ],
      job: {
        id: 'cli-batch-team',
        to: { batch: 'team', teamId: '19:team@thread.tacv2', tenantId: TENANT },
        text: 'Handover',
      },
    },
    {
      name: '--batch-channel five times',
      argv: [
        ...[1, 2, 3, 4, 5].flatMap((n) => ['--batch-channel', `19:c${n}`]),
        '--text',
        'Live',
        '--id',
        'cli-batch-ch',
      ],
      job: {
        id: 'cli-batch-ch',
        to: { batch: 'channels', channelIds: ['19:c1', '19:c2', '19:c3', '19:c4', '19:c5'] },
        text: 'Live',
      },
    },
  ];

  for (const c of cases) {
    it(`puts a valid plain-JSON job on the queue: ${c.name}`, async () => {
      const queue = uniqueQueue();
      const result = await run(['send', ...c.argv], { env: envFor(queue) });
      expect(result.stderr).toContain(`job ${String(c.job.id)} on ${queue}`);
      expect(result).toMatchObject({ code: 0, stdout: `${String(c.job.id)}\n` });
      const messages = await queued(queue);
      expect(messages).toEqual([c.job]);
      expect(() => parseJob(messages[0], 'queue-message-id')).not.toThrow();
    });
  }

  it('reads an Adaptive Card from --card and gives a job without --id a UUID', async () => {
    const dir = emptyDir();
    const card = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'Expense report 5521' }] };
    writeJson(dir, 'card.json', card);
    const queue = uniqueQueue();
    const result = await run(['send', '--to', USER, '--card', 'card.json', '--summary', 'Needs approval'], {
      env: envFor(queue),
      cwd: dir,
    });
    expect(result.code).toBe(0);
    const id = result.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await queued(queue)).toEqual([
      { id, to: { aadObjectId: USER }, summary: 'Needs approval', adaptiveCard: card },
    ]);
  });

  it('holds a --not-before job invisible on the queue until then', async () => {
    const queue = uniqueQueue();
    const notBefore = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const result = await run(
      [
        'send',
        '--channel',
        '19:ops@thread.tacv2',
        '--text',
        'Stand-up in 10 minutes',
        '--not-before',
        notBefore,
        '--id',
        'cli-later-1',
      ],
      { env: envFor(queue) },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`for ${new Date(notBefore).toISOString()}`);
    expect(await messageCount(queue)).toBe(1);
    expect(await queued(queue)).toEqual([]);
  });

  it('lists every problem of an invalid job, naming the options, and queues nothing (exit 2)', async () => {
    const queue = uniqueQueue();
    const result = await run(
      [
        'send',
        '--channel',
        '19:ops@thread.tacv2;messageid=17',
        '--format',
        'html',
        '--not-before',
        'tomorrow',
        '--summary',
        'x',
      ],
      { env: envFor(queue) },
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('invalid job: 4 problems; nothing was queued');
    expect(result.stderr).toContain('to.channelId (--channel): must be the channel id without ";messageid="');
    expect(result.stderr).toContain('textFormat (--format): must be one of markdown, plain, xml');
    expect(result.stderr).toContain('notBefore (--not-before): must be an ISO 8601 date-time');
    expect(result.stderr).toContain('text (--text): a job needs content');
    expect(await messageCount(queue)).toBe(0);
  });

  it('refuses a schedule more than 7 days ahead', async () => {
    const queue = uniqueQueue();
    const far = new Date(Date.now() + 8 * 86_400_000).toISOString();
    const result = await run(['send', '--to', USER, '--text', 'x', '--not-before', far], { env: envFor(queue) });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('notBefore (--not-before): is more than 7 days ahead');
    expect(await messageCount(queue)).toBe(0);
  });

  it.each([
    [['send', '--text', 'hi'], 'say where the message goes'],
    [['send', '--to', USER, '--conversation', 'a:1', '--text', 'hi'], 'choose one target, not --to and --conversation'],
    [['send', '--conversation', 'a:1', '--thread', '1', '--text', 'hi'], '--thread goes with --channel'],
    [
      ['send', '--conversation', 'a:1', '--tenant', TENANT, '--text', 'hi'],
      '--tenant goes with --to, --all-installed, --batch-to, --batch-team or --batch-channel',
    ],
    [
      ['send', '--batch-tenant', TENANT, '--tenant', TENANT, '--text', 'hi'],
      '--tenant goes with --to, --all-installed, --batch-to, --batch-team or --batch-channel',
    ],
    [['send', '--batch-tenant', TENANT, '--batch-team', '19:t', '--text', 'hi'], 'choose one target'],
    [['cancel'], 'which job? teams-courier cancel <jobId>'],
    [['cancel', 'a', 'b'], 'one job id at a time'],
    [['send', '--delete', 'x', '--text', 'hi'], 'cannot be combined with --delete'],
    [['send', '--to', USER, '--text', 'hi', '--colour', 'red'], 'unknown option --colour'],
    [['send', '--to', USER, '--text'], '--text needs a value'],
    [['send', '--to', USER, 'hello'], 'unexpected argument "hello"'],
    [['send', '--to', USER, '--text', 'hi', '--timeout', '5'], '--timeout goes with --wait'],
    [['send', '--to', USER, '--text', 'hi', '--wait', '--timeout', 'soon'], '--timeout must be a number of seconds'],
    [['send', '--to', USER, '--card', 'missing-card.json'], '--card: cannot read'],
    [['frobnicate'], 'unknown command "frobnicate"'],
  ])('usage error %j exits 2 and queues nothing', async (argv, message) => {
    const queue = uniqueQueue();
    const result = await run(argv, { env: envFor(queue) });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
    expect(await messageCount(queue)).toBe(0);
  });

  it('--dry-run checks and prints the job without settings or storage', async () => {
    const result = await run(['send', '--conversation', 'a:1', '--text', 'hi', '--id', 'dry-1', '--dry-run'], {
      env: {},
    });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ id: 'dry-1', to: { conversationId: 'a:1' }, text: 'hi' });
    expect(result.stderr).toContain('nothing was queued (--dry-run)');
  });

  it('--file queues a job or an array of jobs one by one, with progress', async () => {
    const dir = emptyDir();
    const jobs = [
      { id: 'file-1', to: { aadObjectId: USER }, text: 'one' },
      { to: { conversationId: 'a:2' }, text: 'two (no id)' },
      { id: 'file-3', to: { aadObjectIds: [USER, 'u2'], tenantId: TENANT }, text: 'three' },
    ];
    writeJson(dir, 'jobs.json', jobs);
    const queue = uniqueQueue();
    const result = await run(['send', '--file', 'jobs.json'], { env: envFor(queue), cwd: dir });
    expect(result.code).toBe(0);
    const ids = result.stdout.trim().split('\n');
    expect(ids).toHaveLength(3);
    expect(ids[0]).toBe('file-1');
    expect(ids[2]).toBe('file-3');
    expect(result.stderr).toContain(`queued 3/3 on ${queue}`);
    const messages = (await queued(queue)) as Record<string, unknown>[];
    expect(messages.map((m) => m.id)).toEqual(ids);
    expect(messages[1]).toEqual({ ...jobs[1], id: ids[1] });

    const single = writeJson(dir, 'one.json', { id: 'file-single', to: { channelId: '19:c@thread.tacv2' }, text: 'x' });
    const queue2 = uniqueQueue();
    const one = await run(['send', '--file', single, '--json'], { env: envFor(queue2) });
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual({ queue: queue2, id: 'file-single', kind: 'message', status: 'queued' });
  });

  it('--file with problems lists them per job and queues none of them', async () => {
    const dir = emptyDir();
    writeJson(dir, 'jobs.json', [
      { id: 'ok-1', to: { aadObjectId: USER }, text: 'fine' },
      { id: 'bad-1', to: {}, text: 'x' },
      { id: 'bad-2', to: { conversationId: 'a:1' }, text: 'x', textFormat: 'rtf' },
      'not a job',
      { id: 'ok-1', to: { conversationId: 'a:1' }, text: 'again' },
    ]);
    const queue = uniqueQueue();
    const result = await run(['send', '--file', 'jobs.json'], { env: envFor(queue), cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid jobs: 4 problems; nothing was queued');
    expect(result.stderr).toContain('  [1].to: has no target');
    expect(result.stderr).toContain('  [2].textFormat: must be one of markdown, plain, xml');
    expect(result.stderr).toContain('  [3]: must be a JSON object');
    expect(result.stderr).toContain('  [4].id: "ok-1" appears more than once');
    expect(await messageCount(queue)).toBe(0);

    writeFileSync(path.join(dir, 'broken.json'), '{"id": ');
    const broken = await run(['send', '--file', 'broken.json'], { env: envFor(queue), cwd: dir });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('is not valid JSON');
  });

  it('--wait follows the delivery record until it is sent and prints the outcome', async () => {
    const queue = uniqueQueue();
    const { deliveries } = storesFor(storage());
    const id = `wait-sent-${Date.now()}`;
    const sender = (async () => {
      await delay(300);
      const claim = await deliveries.claim(id, { now: new Date(), leaseMs: 60_000 });
      if (claim.kind !== 'claimed') throw new Error('expected to claim');
      await delay(400);
      await deliveries.finish(
        id,
        claim.etag,
        { status: 'sent', conversationId: 'a:1xyz', activityId: '1:activity-42', httpStatus: 201 },
        new Date(),
      );
    })();
    const result = await run(['send', '--to', USER, '--text', 'hello', '--id', id, '--wait', '--timeout', '20'], {
      env: envFor(queue),
      tty: true,
    });
    await sender;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status\s+sent$/m);
    expect(result.stdout).toMatch(/^activity\s+1:activity-42$/m);
    expect(result.stdout).toMatch(/^conversation\s+a:1xyz$/m);
    // Progress rewrote one line on the terminal: not picked up, then sending.
    expect(result.stderr).toContain(`\r\x1b[2K${id}: queued; the sender has not picked it up yet`);
    expect(result.stderr).toContain(`${id}: sending (attempt 1)`);
  });

  it('--wait reports a failed job with its code and reason (exit 1), and gives up after --timeout', async () => {
    const queue = uniqueQueue();
    const { deliveries } = storesFor(storage());
    const id = `wait-failed-${Date.now()}`;
    const sender = (async () => {
      await delay(150);
      const claim = await deliveries.claim(id, { now: new Date(), leaseMs: 60_000 });
      if (claim.kind !== 'claimed') throw new Error('expected to claim');
      await deliveries.finish(
        id,
        claim.etag,
        {
          status: 'failed',
          code: 'ConversationBlockedByUser',
          reason: 'HTTP 403 ConversationBlockedByUser: User blocked the conversation with the bot.',
          httpStatus: 403,
        },
        new Date(),
      );
    })();
    const failed = await run(['send', '--to', USER, '--text', 'hello', '--id', id, '--wait', '--json'], {
      env: envFor(queue),
    });
    await sender;
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({
      id,
      status: 'failed',
      error: { code: 'ConversationBlockedByUser' },
    });

    const never = await run(
      ['send', '--to', USER, '--text', 'hello', '--id', `wait-never-${Date.now()}`, '--wait', '--timeout', '0.3'],
      { env: envFor(queue) },
    );
    expect(never.code).toBe(1);
    expect(never.stderr).toContain('gave up waiting after 0.3 s');
    expect(never.stderr).toContain('the sender has not picked it up yet');
  });
});

describe('teams-courier status', () => {
  it('renders pending, sent and failed records, and --json is the status JSON', async () => {
    const queue = uniqueQueue();
    const { deliveries } = storesFor(storage());
    const now = new Date();
    await deliveries.createPending('st-pending', { kind: 'message' }, now);
    const pending = await run(['status', 'st-pending'], { env: envFor(queue) });
    expect(pending.code).toBe(0);
    expect(pending.stdout).toMatch(/^job\s+st-pending \(message\)$/m);
    expect(pending.stdout).toMatch(/^status\s+pending$/m);
    expect(pending.stdout).toMatch(/^look again\s+in about 2 s/m);

    const claim = await deliveries.claim('st-sent', { now, leaseMs: 60_000 });
    if (claim.kind !== 'claimed') throw new Error('expected to claim');
    await deliveries.finish(
      'st-sent',
      claim.etag,
      { status: 'sent', conversationId: 'a:1', activityId: '1:abc', httpStatus: 201 },
      now,
    );
    const sent = await run(['status', 'st-sent'], { env: envFor(queue) });
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^status\s+sent$/m);
    expect(sent.stdout).toMatch(/^activity\s+1:abc$/m);
    expect(sent.stdout).toMatch(/^history\s+#1 \S+ sent HTTP 201$/m);
    const json = await run(['status', 'st-sent', '--json'], { env: envFor(queue) });
    expect(JSON.parse(json.stdout)).toMatchObject({
      id: 'st-sent',
      kind: 'message',
      status: 'sent',
      attempts: 1,
      activityId: '1:abc',
      conversationId: 'a:1',
    });

    await deliveries.recordRejected('st-failed', 'InvalidJob', 'Invalid job: to: is required', now);
    const failed = await run(['status', 'st-failed'], { env: envFor(queue) });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^status\s+failed$/m);
    expect(failed.stdout).toMatch(/^error\s+InvalidJob: Invalid job: to: is required$/m);

    const unknown = await run(['status', 'st-never-heard-of'], { env: envFor(queue) });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no job "st-never-heard-of" is known');
  });

  it('shows broadcast counts, and --watch follows a broadcast until every child is done', async () => {
    const queue = uniqueQueue();
    const { deliveries } = storesFor(storage());
    const id = `bc-${Date.now()}`;
    const now = new Date();
    await deliveries.createPending(id, { kind: 'broadcast' }, now);
    const children = [1, 2, 3, 4].map((n) => `${id}~${n}`);
    await deliveries.addChildren(id, children);
    await deliveries.setChildOutcome(id, children[0]!, 'sent');
    await deliveries.updateParent(id, { total: 4, fanOutComplete: true, status: 'sent' }, now);
    await deliveries.setChildOutcome(id, children[1]!, 'sent');
    await deliveries.setChildOutcome(id, children[2]!, 'failed');

    const once = await run(['status', id], { env: envFor(queue) });
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^status\s+pending$/m);
    expect(once.stdout).toMatch(/^progress\s+sent 2\/4, failed 1, pending 1$/m);

    const finisher = (async () => {
      await delay(300);
      await deliveries.setChildOutcome(id, children[3]!, 'sent');
    })();
    const watched = await run(['status', id, '--watch', '--timeout', '20'], { env: envFor(queue) });
    await finisher;
    expect(watched.stderr).toContain(`${id}: sent 2/4, failed 1, pending 1`);
    expect(watched.stdout).toMatch(/^status\s+partial$/m);
    expect(watched.stdout).toMatch(/^progress\s+sent 3\/4, failed 1, pending 0$/m);
    expect(watched.code).toBe(1);

    const json = await run(['status', id, '--json'], { env: envFor(queue) });
    expect(JSON.parse(json.stdout)).toMatchObject({
      id,
      kind: 'broadcast',
      status: 'partial',
      total: 4,
      sent: 3,
      failed: 1,
      pending: 0,
    });
  });

  it('--watch waits for a job that is not known yet', async () => {
    const queue = uniqueQueue();
    const { deliveries } = storesFor(storage());
    const id = `late-${Date.now()}`;
    const sender = (async () => {
      await delay(250);
      const claim = await deliveries.claim(id, { now: new Date(), leaseMs: 60_000 });
      if (claim.kind !== 'claimed') throw new Error('expected to claim');
      await deliveries.finish(id, claim.etag, { status: 'sent', activityId: '1:late' }, new Date());
    })();
    const result = await run(['status', id, '--watch'], { env: envFor(queue) });
    await sender;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`${id}: queued; the sender has not picked it up yet`);
    expect(result.stdout).toMatch(/^activity\s+1:late$/m);
  });
});

describe('teams-courier status and cancel of a Teams batch job', () => {
  const batchRecord = async (id: string, pollSeq?: number) => {
    const { deliveries } = storesFor(storage());
    const now = new Date();
    await deliveries.createPending(id, { kind: 'teamsBatch' }, now);
    const known = await deliveries.read(id);
    await deliveries.write(
      {
        ...known!.record,
        status: 'sent',
        batch: {
          target: 'users',
          tenantId: TENANT,
          serviceUrl: 'https://smba.trafficmanager.net/amer/',
          perRequest: 100,
          startedAt: now.toISOString(),
          chunks: [
            { members: 100, status: 'running', operationId: 'op-1', state: 'Ongoing', counts: [100, 60, 2, 1, 37, 0] },
            { members: 50, status: 'done', operationId: 'op-2', state: 'Completed', counts: [50, 50, 0, 0, 0, 0] },
          ],
          ...(pollSeq === undefined ? {} : { pollSeq, nextPollAt: new Date(now.getTime() + 10_000).toISOString() }),
        },
      },
      known!.etag,
    );
    return deliveries;
  };

  it('status shows the counts and each request; --watch follows it until every operation finished', async () => {
    const queue = uniqueQueue();
    const id = `tb-status-${Date.now()}`;
    const deliveries = await batchRecord(id, 3);
    const once = await run(['status', id], { env: envFor(queue) });
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^job\s+.* \(teamsBatch\)$/m);
    expect(once.stdout).toMatch(/^progress\s+sent 110\/150, failed 2, throttled 1, pending 37 \(2 requests\)$/m);
    expect(once.stdout).toMatch(/^requests\s+op-1 {2}Ongoing {2}sent 60\/100, failed 2$/m);
    expect(once.stdout).toMatch(/^\s+op-2 {2}Completed {2}sent 50\/50, failed 0$/m);

    const finisher = (async () => {
      await delay(300);
      await deliveries.modify(id, (r) => ({
        ...r!,
        batch: {
          ...r!.batch!,
          finishedAt: new Date().toISOString(),
          chunks: r!.batch!.chunks.map((c) => ({
            ...c,
            status: 'done' as const,
            failedStored: true,
            counts: [c.members!, c.members!, 0, 0, 0, 0] as const,
          })),
        },
      }));
    })();
    const watched = await run(['status', id, '--watch', '--timeout', '20'], { env: envFor(queue) });
    await finisher;
    expect(watched.stderr).toContain(`${id}: sent 110/150, failed 2, throttled 1, pending 37 (2 requests)`);
    expect(watched.stdout).toMatch(/^status\s+sent$/m);
    expect(watched.code).toBe(0);
  });

  it('cancel flags the job and queues a poll that cancels its operations; other jobs cannot be cancelled', async () => {
    const queue = uniqueQueue();
    const id = `tb-cancel-${Date.now()}`;
    const deliveries = await batchRecord(id, 4);
    const result = await run(['cancel', id], { env: envFor(queue) });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`cancelled job ${id}`);
    expect(result.stdout).toMatch(/^cancelled\s+\d{4}-/m);
    expect((await deliveries.get(id))?.cancelRequestedAt).toBeDefined();
    expect(await queued(queue)).toEqual([{ teamsCourier: { jobId: id, deferrals: 0, poll: 4 }, job: {} }]);
    const again = await run(['cancel', id, '--json'], { env: envFor(queue) });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('was already being cancelled');
    expect(JSON.parse(again.stdout)).toMatchObject({ id, kind: 'teamsBatch', status: 'pending' });

    await deliveries.createPending(`${id}-message`, { kind: 'message' }, new Date());
    const other = await run(['cancel', `${id}-message`], { env: envFor(queue) });
    expect(other).toMatchObject({ code: 1, stderr: expect.stringContaining('is not a batch job') });
    const unknown = await run(['cancel', `${id}-never`], { env: envFor(queue) });
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining('is known') });
  });

  it('cancel ends a batch job no worker has picked up yet at once', async () => {
    const queue = uniqueQueue();
    const id = `tb-cancel-early-${Date.now()}`;
    const { deliveries } = storesFor(storage());
    await deliveries.createPending(id, { kind: 'teamsBatch' }, new Date());
    const result = await run(['cancel', id], { env: envFor(queue) });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status\s+cancelled$/m);
    expect(await deliveries.get(id)).toMatchObject({ status: 'failed', lastErrorCode: 'BatchCancelled' });
    expect(await messageCount(queue)).toBe(0);
  });
});

describe('teams-courier conversations list', () => {
  const fixture = (name: string): Record<string, unknown> =>
    JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/activities', `${name}.json`), 'utf8')) as Record<
      string,
      unknown
    >;
  const captureOf = (body: unknown) => toCapturePlan(parseActivity(body)) as Extract<CapturePlan, { kind: 'capture' }>;

  it('pages through the stored references and renders them, filtered', async () => {
    const { conversations } = storesFor(storage());
    const seen = new Date('2026-11-20T10:00:00.000Z');
    const personal = fixture('message.personal');
    const group = fixture('message.groupChat');
    const channel = fixture('installationUpdate.add.channel');
    for (const body of [personal, group, channel]) await conversations.capture(captureOf(body), seen);
    const uninstalled = fixture('installationUpdate.remove.personal');
    (uninstalled.conversation as Record<string, string>).id = 'a:1cliUninstalledPersonalChat';
    await conversations.capture(captureOf(uninstalled), seen);
    const idOf = (body: Record<string, unknown>): string => (body.conversation as { id: string }).id;

    const all = await run(['conversations', 'list'], { env: envFor(uniqueQueue()) });
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TYPE\s+TENANT\s+INSTALLED\s+NAME\s+LAST SEEN$/);
    expect(lines).toHaveLength(5);
    const personalLine = lines.find((l) => l.startsWith(idOf(personal)))!;
    expect(personalLine).toMatch(
      new RegExp(`personal\\s+${TENANT}\\s+yes\\s+Brandon Martinez\\s+2026-11-20T10:00:00.000Z$`),
    );
    expect(lines.find((l) => l.startsWith('a:1cliUninstalledPersonalChat'))).toMatch(/personal\s+\S+\s+no\s/);
    expect(all.stderr).toContain('4 conversations');

    const installed = await run(['conversations', 'list', '--installed', '--type', 'personal', '--json'], {
      env: envFor(uniqueQueue()),
    });
    expect(installed.code).toBe(0);
    const listed = JSON.parse(installed.stdout) as { conversationId: string; installed: boolean }[];
    expect(listed.map((c) => c.conversationId)).toEqual([idOf(personal)]);
    expect(listed[0]).toMatchObject({
      conversationType: 'personal',
      tenantId: TENANT,
      installed: true,
      name: 'Brandon Martinez',
    });

    const limited = await run(['conversations', 'list', '--limit', '2'], { env: envFor(uniqueQueue()) });
    expect(limited.stdout.trim().split('\n')).toHaveLength(3);
    expect(limited.stderr).toContain('2 conversations (stopped at --limit 2; there are more)');

    const none = await run(['conversations', 'list', '--tenant', 'no-such-tenant'], { env: envFor(uniqueQueue()) });
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain('no matching conversations');

    const bad = await run(['conversations', 'list', '--type', 'team'], { env: envFor(uniqueQueue()) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--type must be one of personal, groupChat, channel');
  });
});

describe('settings, help and secrets', () => {
  it('reads local.settings.json Values in the working directory; the environment wins', async () => {
    const dir = emptyDir();
    const queue = uniqueQueue();
    writeFileSync(
      path.join(dir, 'local.settings.json'),
      JSON.stringify({
        IsEncrypted: false,
        Values: { AzureWebJobsStorage: storage().azurite.connectionString, OUTBOUND_QUEUE: queue },
      }),
    );
    const fromFile = await run(['send', '--conversation', 'a:1', '--text', 'from file', '--id', 'settings-1'], {
      env: {},
      cwd: dir,
    });
    expect(fromFile.code).toBe(0);
    expect(await queued(queue)).toEqual([{ id: 'settings-1', to: { conversationId: 'a:1' }, text: 'from file' }]);

    const other = uniqueQueue();
    const fromEnv = await run(['send', '--conversation', 'a:1', '--text', 'env wins', '--id', 'settings-2'], {
      env: { OUTBOUND_QUEUE: other },
      cwd: dir,
    });
    expect(fromEnv.code).toBe(0);
    expect(await queued(other)).toHaveLength(1);
    expect(await queued(queue)).toHaveLength(1);
  });

  it('names missing or bad settings (exit 1) and never prints the connection string or key', async () => {
    const missing = await run(['status', 'x'], { env: {} });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('AzureWebJobsStorage: is not set');

    const badQueue = await run(['status', 'x'], {
      env: { AzureWebJobsStorage: storage().azurite.connectionString, OUTBOUND_QUEUE: 'Bad_Queue' },
    });
    expect(badQueue.code).toBe(1);
    expect(badQueue.stderr).toContain('OUTBOUND_QUEUE: must be 3-56 lower-case letters');
    expect(badQueue.stderr).not.toContain(DEV_ACCOUNT_KEY);

    // Nothing listens on port 9: the table client gives up quickly.
    const unreachable = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${DEV_ACCOUNT_KEY};TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1`;
    const down = await run(['status', 'x'], { env: { AzureWebJobsStorage: unreachable } });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/storage|Storage/);
    expect(down.stderr).not.toContain(DEV_ACCOUNT_KEY);
    expect(down.stdout).toBe('');

    const encryptedDir = emptyDir();
    writeFileSync(path.join(encryptedDir, 'local.settings.json'), JSON.stringify({ IsEncrypted: true, Values: {} }));
    const encrypted = await run(['status', 'x'], { env: {}, cwd: encryptedDir });
    expect(encrypted.code).toBe(1);
    expect(encrypted.stderr).toContain('is encrypted');
  });

  // The CLI and the app must read AzureWebJobsStorage the way the Functions host does. Both are
  // checked against the answers written out here, not against each other: they share the code.
  it('reads the storage settings as the Functions host does, from the environment or local.settings.json', () => {
    const bot = {
      MicrosoftAppId: '00000000-0000-4000-8000-0000000000b0',
      MicrosoftAppType: 'UserAssignedMSI',
      MicrosoftAppTenantId: TENANT,
    };
    const cases: [string, Record<string, string>, StorageConfig, string][] = [
      [
        'the emulator shorthand',
        { AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
        { kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' },
        'outbound-messages',
      ],
      [
        'a connection string (trimmed) wins over the identity settings',
        {
          AzureWebJobsStorage:
            ' DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;EndpointSuffix=core.windows.net ',
          AzureWebJobsStorage__accountName: 'ignored',
        },
        {
          kind: 'connectionString',
          connectionString:
            'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;EndpointSuffix=core.windows.net',
        },
        'outbound-messages',
      ],
      [
        'an empty connection string counts as unset',
        { AzureWebJobsStorage: '', AzureWebJobsStorage__accountName: 'courierstore' },
        {
          kind: 'identity',
          tableServiceUri: 'https://courierstore.table.core.windows.net',
          queueServiceUri: 'https://courierstore.queue.core.windows.net',
          credential: 'default',
        },
        'outbound-messages',
      ],
      [
        'a user-assigned managed identity and another queue',
        {
          AzureWebJobsStorage__accountName: 'courierstore',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__clientId: 'client-1',
          OUTBOUND_QUEUE: 'my-jobs',
        },
        {
          kind: 'identity',
          tableServiceUri: 'https://courierstore.table.core.windows.net',
          queueServiceUri: 'https://courierstore.queue.core.windows.net',
          credential: 'managedidentity',
          clientId: 'client-1',
        },
        'my-jobs',
      ],
      [
        'explicit endpoints, without an account name',
        {
          AzureWebJobsStorage__tableServiceUri: 'https://t.example.net/',
          AzureWebJobsStorage__queueServiceUri: 'https://q.example.net',
        },
        {
          kind: 'identity',
          tableServiceUri: 'https://t.example.net/',
          queueServiceUri: 'https://q.example.net/',
          credential: 'default',
        },
        'outbound-messages',
      ],
    ];
    for (const [label, values, storage, queueName] of cases) {
      // From the environment, with no local.settings.json.
      expect(loadCliSettings(values, emptyDir()), label).toMatchObject({ storage, queueName });
      // From local.settings.json, with nothing in the environment.
      const dir = emptyDir();
      writeFileSync(path.join(dir, 'local.settings.json'), JSON.stringify({ IsEncrypted: false, Values: values }));
      expect(loadCliSettings({}, dir), `${label} (local.settings.json)`).toMatchObject({
        storage,
        queueName,
        sources: { localSettingsPath: path.join(dir, 'local.settings.json') },
      });
      // And the app reads the same.
      const config = loadConfig({ ...bot, ...values });
      expect(config.storage, `${label} (app)`).toEqual(storage);
      expect(config.outbound.queueName, `${label} (app)`).toBe(queueName);
    }
    // The environment wins over local.settings.json, setting by setting.
    const dir = emptyDir();
    writeFileSync(
      path.join(dir, 'local.settings.json'),
      JSON.stringify({ Values: { AzureWebJobsStorage: 'UseDevelopmentStorage=true', OUTBOUND_QUEUE: 'from-file' } }),
    );
    expect(loadCliSettings({ OUTBOUND_QUEUE: 'from-env' }, dir)).toMatchObject({
      storage: { kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' },
      queueName: 'from-env',
    });

    for (const [values, setting] of [
      [{}, 'AzureWebJobsStorage'],
      [{ AzureWebJobsStorage__accountName: 'Bad-Name' }, 'AzureWebJobsStorage__accountName'],
      [
        { AzureWebJobsStorage__accountName: 'ok123', AzureWebJobsStorage__credential: 'password' },
        'AzureWebJobsStorage__credential',
      ],
      [{ AzureWebJobsStorage: 'UseDevelopmentStorage=true', OUTBOUND_QUEUE: 'Bad_Queue' }, 'OUTBOUND_QUEUE'],
    ] as const) {
      expect(() => loadCliSettings(values, emptyDir()), setting).toThrow(`${setting}: `);
      expect(() => loadConfig({ ...bot, ...values }), setting).toThrow(setting);
    }
  });

  it('prints usage for --help of each command (exit 0) and without a command (exit 2)', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('usage: teams-courier <command> [options]');
    for (const [argv, text] of [
      [['send', '--help'], 'usage: teams-courier send <target>'],
      [['send', '--to', 'x', '-h'], 'usage: teams-courier send <target>'],
      [['status', '--help'], 'usage: teams-courier status <jobId>'],
      [['cancel', '--help'], 'usage: teams-courier cancel <jobId>'],
      [['conversations', 'list', '--help'], 'usage: teams-courier conversations list'],
      [['conversations', '--help'], 'usage: teams-courier conversations list'],
      [['help', 'send'], 'usage: teams-courier send <target>'],
    ] as const) {
      const result = await run(argv);
      expect(result.code, argv.join(' ')).toBe(0);
      expect(result.stdout).toContain(text);
    }
    const bare = await run([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('usage: teams-courier');
    // The compiled entry (package.json "bin") must start with the shebang; tsc keeps it.
    expect(readFileSync(path.resolve(__dirname, '../../src/cli/main.ts'), 'utf8').split('\n')[0]).toBe(
      '#!/usr/bin/env node',
    );
  });
});
