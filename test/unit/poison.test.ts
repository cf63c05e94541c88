import { describe, expect, it } from 'vitest';
import { decodeQueueMessage } from '../../src/core/job';
import { HOST_POISONED, matchesFilter, parsePoisonMessage, POISON_FORMAT } from '../../src/core/poison';

const job = { to: { conversationId: 'a:1' }, text: 'Invoice 4711 is overdue' };
const senderRecord = (record: Record<string, unknown>, body: unknown = job): string =>
  JSON.stringify({
    teamsCourier: {
      code: 'Unauthorized',
      reason: 'HTTP 401',
      attempts: 2,
      failedAt: '2026-11-25T10:00:00.000Z',
      ...record,
    },
    job: body,
  });

/** What a replay would put on the job queue, as the sender decodes it. */
function replayed(text: string) {
  const entry = parsePoisonMessage(text);
  if (!entry.replay.ok) throw new Error(`not replayable: ${entry.replay.why}`);
  return decodeQueueMessage(entry.replay.text);
}

describe('poison messages the sender wrote', () => {
  it('go back under their own id, with their caller and parent, as a recorded job', () => {
    const text = senderRecord({
      jobId: 'billing:inv-1~3',
      format: POISON_FORMAT,
      caller: 'billing',
      parentId: 'billing:inv-1',
    });
    expect(parsePoisonMessage(text)).toMatchObject({
      jobId: 'billing:inv-1~3',
      code: 'Unauthorized',
      attempts: 2,
      caller: 'billing',
      parentId: 'billing:inv-1',
      source: 'sender',
    });
    expect(replayed(text)).toEqual({
      body: job,
      envelope: {
        jobId: 'billing:inv-1~3',
        deferrals: 0,
        caller: 'billing',
        parentId: 'billing:inv-1',
        recorded: true,
      },
    });
  });

  it('go back with full trust when the record names no caller', () => {
    expect(replayed(senderRecord({ jobId: 'inv-2', format: POISON_FORMAT }))).toEqual({
      body: job,
      envelope: { jobId: 'inv-2', deferrals: 0, recorded: true },
    });
  });

  it('stay when the same job would fail again', () => {
    for (const code of ['InvalidJob', 'JobTooLarge']) {
      const entry = parsePoisonMessage(senderRecord({ jobId: 'x', code, format: POISON_FORMAT }));
      expect(entry.replay).toMatchObject({ ok: false, why: expect.stringContaining('would fail again') });
    }
    const truncated = parsePoisonMessage(
      senderRecord({ jobId: 'x', format: POISON_FORMAT }, { truncated: true, bytes: 70_000, head: '{"to":' }),
    );
    expect(truncated.replay).toMatchObject({ ok: false, why: expect.stringContaining('only the beginning') });
    expect(parsePoisonMessage(senderRecord({ jobId: 'x', format: POISON_FORMAT }, 'not json {')).replay.ok).toBe(false);
    expect(
      parsePoisonMessage(senderRecord({ jobId: 'x', format: POISON_FORMAT, caller: 'not a caller!' })).replay.ok,
    ).toBe(false);
  });

  it("written before replay existed: a child finds its parent, an id that may be a caller's stays", () => {
    expect(replayed(senderRecord({ jobId: 'maint-11~7' })).envelope).toEqual({
      jobId: 'maint-11~7',
      deferrals: 0,
      parentId: 'maint-11',
      recorded: true,
    });
    expect(replayed(senderRecord({ jobId: 'plain-id' })).envelope).toEqual({
      jobId: 'plain-id',
      deferrals: 0,
      recorded: true,
    });
    // `billing:inv-9` may be caller billing's job: replaying it with full trust would lift its tenant limits.
    expect(parsePoisonMessage(senderRecord({ jobId: 'billing:inv-9' })).replay).toMatchObject({
      ok: false,
      why: expect.stringContaining('before replay existed'),
    });
  });
});

describe('messages the Functions host moved', () => {
  const insertedOn = new Date('2026-11-25T11:00:00Z');

  it('our envelope goes back as it was (deferrals reset), with its caller and parent', () => {
    const text = JSON.stringify({
      teamsCourier: { jobId: 'hr:x~1', deferrals: 4, parentId: 'hr:x', caller: 'hr', recorded: true },
      job,
    });
    const entry = parsePoisonMessage(text, { insertedOn });
    expect(entry).toMatchObject({
      jobId: 'hr:x~1',
      code: HOST_POISONED,
      caller: 'hr',
      parentId: 'hr:x',
      failedAt: insertedOn.toISOString(),
      source: 'host',
    });
    expect(replayed(text)).toEqual({
      body: job,
      envelope: { jobId: 'hr:x~1', deferrals: 0, parentId: 'hr:x', caller: 'hr', recorded: true },
    });
  });

  it("a flow's job with an id goes back as written (plain or base64)", () => {
    const body = { id: 'flow-1', ...job };
    expect(replayed(JSON.stringify(body))).toEqual({ body });
    expect(replayed(Buffer.from(JSON.stringify(body)).toString('base64'))).toEqual({ body });
    expect(parsePoisonMessage(JSON.stringify(body)).jobId).toBe('flow-1');
  });

  it("a flow's job without an id stays: its id was the lost message id", () => {
    expect(parsePoisonMessage(JSON.stringify(job)).replay).toMatchObject({
      ok: false,
      why: expect.stringContaining('no id of its own'),
    });
  });

  it('what is not a job stays, with why', () => {
    expect(parsePoisonMessage('%%% garbage').replay).toMatchObject({
      ok: false,
      why: expect.stringContaining('not a job'),
    });
    expect(parsePoisonMessage('[1,2]').replay.ok).toBe(false);
  });
});

describe('filters', () => {
  const entry = parsePoisonMessage(senderRecord({ jobId: 'inv-2', format: POISON_FORMAT }));

  it('select by id, code and time', () => {
    expect(matchesFilter(entry, {})).toBe(true);
    expect(matchesFilter(entry, { jobIds: ['inv-2'] })).toBe(true);
    expect(matchesFilter(entry, { jobIds: ['inv-3'] })).toBe(false);
    expect(matchesFilter(entry, { code: 'Unauthorized' })).toBe(true);
    expect(matchesFilter(entry, { code: 'Throttled' })).toBe(false);
    expect(matchesFilter(entry, { since: new Date('2026-11-25T09:00:00Z') })).toBe(true);
    expect(matchesFilter(entry, { since: new Date('2026-11-25T10:00:01Z') })).toBe(false);
  });
});
