/**
 * Replay through the real delivery path (Azurite, the Connector stub): jobs failed by an injected
 * misconfiguration go back on the queue with `teams-courier poison replay` and
 * POST /api/notify/{id}/retry, and are delivered once; a sent job is never sent again; a broadcast
 * child counts as pending again; a caller reaches only its own jobs.
 */
import { describe, expect, it } from 'vitest';
import { Faults, fixtureActivity } from '../../host/emulator';
import type { Submitter } from '../../src/core/admission';
import { toEnvelope } from '../../src/core/job';
import { handleNotifyRetry, type RetryDeps } from '../../src/flows/retryApi';
import { createLogger } from '../../src/log';
import { createPoisonQueue } from '../../src/store/poisonQueue';
import { run } from '../cli/helpers';
import { USER_TENANT, useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();
const log = createLogger(() => undefined);

let n = 0;
async function personalChat(): Promise<{ conversationId: string; aadObjectId: string }> {
  n += 1;
  const conversationId = `a:replay-${n}`;
  const aadObjectId = `30000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const activity = fixtureActivity('message.personal', {
    serviceUrl: env().connector.serviceUrl('amer'),
    conversationId,
  });
  (activity.from as Record<string, string>).aadObjectId = aadObjectId;
  (activity.from as Record<string, string>).id = `29:replay-${n}`;
  (activity.conversation as Record<string, string>).tenantId = USER_TENANT;
  await env().capture(activity);
  return { conversationId, aadObjectId };
}

const deliveredTo = (conversationId: string) =>
  env().connector.delivered.filter((d) => d.conversationId === conversationId);

/** The CLI, in-process, on the test's Azurite and queue. */
const cli = (...argv: string[]) =>
  run(argv, {
    env: { AzureWebJobsStorage: env().storage.azurite.connectionString, OUTBOUND_QUEUE: env().config.queueName },
  });

/** Every rejection of the bot's token until cleared: what a rotated secret looks like to the sender. */
function breakCredentials(conversationId: string): void {
  env().connector.injectFault(Faults.error('BotNotRegistered'), {
    match: { conversationId },
    times: Number.POSITIVE_INFINITY,
  });
}

/** POST /api/notify/{id}/retry with full trust (a function key). */
function retryAs(id: string, submitter?: Submitter, method = 'POST') {
  const e = env();
  const deps: RetryDeps = {
    deliveries: e.deliveries,
    queue: e.deps().queue,
    poison: createPoisonQueue(e.poison),
    now: () => new Date(),
    log,
    authenticate: async () => submitter,
  };
  return handleNotifyRetry(
    { method, url: 'https://courier.example/api/notify/x/retry?code=key', headers: new Headers(), body: null },
    id,
    deps,
  );
}

describe('teams-courier poison', () => {
  it('lists a job failed by a misconfiguration, replays it once the cause is fixed, and it is delivered once', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    breakCredentials(conversationId);
    await e.enqueue({ id: 'replay-cli-1', to: { conversationId }, text: 'Invoice 4711 is overdue' });
    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'failed', code: 'BotNotRegistered' })]);

    const listed = await cli('poison', 'list', '--json');
    expect(listed.code).toBe(0);
    const entries = JSON.parse(listed.stdout) as { jobId: string; code: string; replayable: boolean }[];
    expect(entries).toContainEqual(
      expect.objectContaining({ jobId: 'replay-cli-1', code: 'BotNotRegistered', replayable: true }),
    );

    // Nothing changes in a dry run, and the listing left the queue as it was.
    const dry = await cli('poison', 'replay', 'replay-cli-1', '--dry-run');
    expect(dry.stdout).toContain('would be: requeued      replay-cli-1');
    expect((await e.deliveries.get('replay-cli-1'))?.status).toBe('failed');
    expect((await e.poisoned()).some((m) => m.teamsCourier.jobId === 'replay-cli-1')).toBe(true);

    e.connector.clearFaults();
    const replay = await cli('poison', 'replay', 'replay-cli-1');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain('requeued      replay-cli-1  (failed with BotNotRegistered; record was failed)');
    const rearmed = await e.deliveries.get('replay-cli-1');
    expect(rearmed).toMatchObject({ status: 'pending', attempts: 0 });
    expect(rearmed?.lastErrorCode).toBeUndefined();
    expect(rearmed?.history.at(-1)).toMatchObject({ outcome: 'replayed', code: 'BotNotRegistered', attempt: 1 });
    expect((await e.poisoned()).some((m) => m.teamsCourier.jobId === 'replay-cli-1')).toBe(false);

    expect(await e.drain()).toEqual([expect.objectContaining({ status: 'sent', jobId: 'replay-cli-1' })]);
    expect(deliveredTo(conversationId)).toHaveLength(1);
    const record = await e.deliveries.get('replay-cli-1');
    expect(record).toMatchObject({ status: 'sent', attempts: 1 });
    // The record shows the failed attempt, the replay and the new attempt.
    expect(record!.history.map((h) => h.outcome)).toEqual(['failed', 'replayed', 'sent']);

    // Replaying again finds nothing to replay.
    const again = await cli('poison', 'replay', 'replay-cli-1');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not in');
  });

  it('never sends a job Teams already has: a stale poison copy of a sent job is only removed', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await e.enqueue({ id: 'replay-sent-1', to: { conversationId }, text: 'once' });
    await e.drain();
    // What the Functions host leaves behind when a run threw after the send (a copy of the message).
    await e.poison.sendMessage(
      toEnvelope({ to: { conversationId }, text: 'once' }, { jobId: 'replay-sent-1', deferrals: 2, recorded: true }),
    );

    const replay = await cli('poison', 'replay', '--reason', 'HostRetriesExhausted');
    expect(replay.stdout).toContain('already sent  replay-sent-1');
    expect(await e.drain()).toEqual([]);
    expect(deliveredTo(conversationId)).toHaveLength(1);
    expect((await e.poisoned()).some((m) => m.teamsCourier.jobId === 'replay-sent-1')).toBe(false);
  });

  it('replays by reason and time, and leaves what would fail again', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    breakCredentials(conversationId);
    await e.enqueue({ id: 'replay-reason-1', to: { conversationId }, text: 'a' });
    await e.enqueue({ id: 'replay-reason-2', to: { conversationId }, text: 'b' });
    await e.enqueue({ id: 'replay-invalid', to: { conversationId, channelId: '19:x' }, text: 'c' });
    await e.drain();
    e.connector.clearFaults();

    const usage = await cli('poison', 'replay');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--all');

    const invalid = await cli('poison', 'replay', 'replay-invalid');
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toContain('not replayed  replay-invalid  (the job breaks the contract');

    const replay = await cli('poison', 'replay', '--reason', 'BotNotRegistered', '--since', '10m');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stderr).toMatch(/requeued 2, already sent 0, not replayable 0/);
    await e.drain();
    expect(
      deliveredTo(conversationId)
        .map((d) => d.activity?.text)
        .sort(),
    ).toEqual(['a', 'b']);
    expect((await e.poisoned()).some((m) => m.teamsCourier.jobId === 'replay-invalid')).toBe(true);
  });

  it('a replayed broadcast child counts as pending on its broadcast again, then as sent', async () => {
    const e = env();
    const [ok, broken] = [await personalChat(), await personalChat()];
    breakCredentials(broken.conversationId);
    await e.enqueue({
      id: 'replay-bc',
      to: { aadObjectIds: [ok.aadObjectId, broken.aadObjectId], tenantId: USER_TENANT },
      text: 'Maintenance Saturday',
    });
    await e.drain();
    expect(await e.deliveries.countChildren('replay-bc')).toEqual({ total: 2, pending: 0, sent: 1, failed: 1 });
    const child = (await e.poisoned()).find((m) => m.teamsCourier.jobId.startsWith('replay-bc~'))!
      .teamsCourier as unknown as Record<string, unknown>;
    expect(child).toMatchObject({ parentId: 'replay-bc', format: 2 });

    e.connector.clearFaults();
    // Retrying the broadcast itself says how: its recipients are jobs of their own.
    expect(await retryAs('replay-bc')).toMatchObject({
      status: 409,
      jsonBody: { error: expect.stringContaining('"replay-bc~<n>"') },
    });
    const replay = await cli('poison', 'replay', '--parent', 'replay-bc');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain(`requeued      ${String(child.jobId)}`);
    expect(await e.deliveries.countChildren('replay-bc')).toEqual({ total: 2, pending: 1, sent: 1, failed: 0 });
    await e.drain();
    expect(await e.deliveries.countChildren('replay-bc')).toEqual({ total: 2, pending: 0, sent: 2, failed: 0 });
    expect(deliveredTo(broken.conversationId)).toHaveLength(1);
    expect(deliveredTo(ok.conversationId)).toHaveLength(1);
  });

  it('show prints the poison entry and the record', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    breakCredentials(conversationId);
    await e.enqueue({ id: 'replay-show', to: { conversationId }, text: 'x' });
    await e.drain();
    e.connector.clearFaults();
    const shown = await cli('poison', 'show', 'replay-show');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/replay-show\s+BotNotRegistered/);
    expect(shown.stdout).toMatch(/status\s+failed/);
    expect(shown.stderr).toContain('teams-courier poison replay replay-show');
    expect((await cli('poison', 'show', 'no-such-job')).code).toBe(1);
  });
});

describe('POST /api/notify/{id}/retry', () => {
  const billing: Submitter = { name: 'billing' };
  const hr: Submitter = { name: 'hr' };

  const retry = retryAs;

  /** A caller's job as the HTTP API queues it, failed because FLOW_CALLERS does not list the caller yet. */
  async function failedCallerJob(caller: string, id: string, conversationId: string): Promise<void> {
    const e = env();
    const internal = `${caller}:${id}`;
    await e.deliveries.createPending(internal, { kind: 'message' }, new Date());
    await e.jobs.sendMessage(
      toEnvelope(
        { id, to: { conversationId }, text: `for ${caller}` },
        { jobId: internal, deferrals: 0, caller, recorded: true },
      ),
    );
    await e.drain();
  }
  /** The sender once FLOW_CALLERS lists billing (the misconfiguration fixed). */
  const fixedCallers = () => ({ deps: { config: { ...env().config, callerTenants: new Map([['billing', null]]) } } });

  it("puts a caller's own failed job back (202 + Location), and it is delivered once", async () => {
    const e = env();
    const { conversationId } = await personalChat();
    await failedCallerJob('billing', 'inv-1', conversationId);
    expect(await e.deliveries.get('billing:inv-1')).toMatchObject({
      status: 'failed',
      lastErrorCode: 'CallerNotAllowed',
    });

    // Another caller cannot see it, and GET on the route is not a retry.
    expect((await retry('inv-1', hr)).status).toBe(404);
    expect((await retry('inv-1', billing, 'GET')).status).toBe(405);

    const answer = await retry('inv-1', billing);
    expect(answer).toMatchObject({
      status: 202,
      headers: { Location: 'https://courier.example/api/notify/inv-1' },
      jsonBody: { id: 'inv-1', status: 'pending' },
    });
    expect(JSON.stringify(answer)).not.toContain('code=key');
    expect(await e.drain(fixedCallers())).toEqual([
      expect.objectContaining({ status: 'sent', jobId: 'billing:inv-1' }),
    ]);
    expect(deliveredTo(conversationId)).toHaveLength(1);

    // Sent now: never again.
    expect(await retry('inv-1', billing)).toMatchObject({ status: 409, jsonBody: { status: 'sent' } });
  });

  it('a caller cannot replay a full-trust job whose id looks like its namespace', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    breakCredentials(conversationId);
    // Queued with full trust under the id `billing:inv-9` (the namespaces overlap by design).
    await e.enqueue({ id: 'billing:inv-9', to: { conversationId }, text: 'full trust' });
    await e.drain();
    e.connector.clearFaults();
    expect((await retry('inv-9', billing)).status).toBe(410);
    expect((await retry('billing:inv-9')).status).toBe(202);
    await e.drain();
    expect(deliveredTo(conversationId)).toHaveLength(1);
  });

  it('answers 404, 409, 422 and 410 for what cannot be retried', async () => {
    const e = env();
    const { conversationId } = await personalChat();
    expect((await retry('never-seen')).status).toBe(404);
    await e.enqueue({ id: 'retry-invalid', to: { conversationId, channelId: '19:x' }, text: 'x' });
    await e.drain();
    expect(await retry('retry-invalid')).toMatchObject({ status: 422, jsonBody: { code: 'InvalidJob' } });

    await e.deliveries.createPending('retry-pending', { kind: 'message' }, new Date());
    expect(await retry('retry-pending')).toMatchObject({ status: 409, jsonBody: { status: 'pending' } });

    // Failed, but its poison message is gone (replayed by the CLI and failed again without one, removed by hand).
    breakCredentials(conversationId);
    await e.enqueue({ id: 'retry-gone', to: { conversationId }, text: 'x' });
    await e.drain();
    e.connector.clearFaults();
    const poison = createPoisonQueue(e.poison);
    const received = await poison.receive({ max: 100, hideSeconds: 30 });
    const gone = received.filter((m) => m.text.includes('"retry-gone"'));
    expect(gone).toHaveLength(1);
    await poison.remove(gone[0]!);
    await poison.release(received.filter((m) => !gone.includes(m)));
    expect((await retry('retry-gone')).status).toBe(410);
  });
});
