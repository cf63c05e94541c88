import { describe, expect, it } from 'vitest';
import { admitJob, admitJobs, fromInternalId, isReservedJobId, toInternalId } from '../../src/core/admission';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes } from '../../src/core/queueMessage';
import { decodeQueueMessage } from '../../src/core/job';
import { prepareJobs } from '../../src/cli/send';
import { connectorUrl } from '../../src/connector/connectorClient';
import { JobValidationError } from '../../src/errors';

const now = new Date('2026-12-07T08:00:00Z');
const newId = (): string => 'generated';
const job = { id: 'j1', to: { conversationId: 'a:1' }, text: 'hi' };

describe('admission', () => {
  it('wraps the job in our envelope with its internal id, and the queue text decodes back to it', () => {
    const admitted = admitJob(job, { now, newId, submitter: { name: 'billing' } });
    expect(admitted).toMatchObject({
      id: 'j1',
      job: { id: 'billing:j1' },
      envelope: { jobId: 'billing:j1', deferrals: 0, caller: 'billing' },
      delayMs: 0,
    });
    expect(decodeQueueMessage(JSON.parse(admitted.queueText))).toEqual({ body: job, envelope: admitted.envelope });
  });

  it('namespaces update and delete targets to the caller', () => {
    expect(admitJob({ id: 'u', update: 'j1', text: 'x' }, { now, newId, submitter: { name: 'hr' } }).job).toMatchObject(
      { id: 'hr:u', target: 'hr:j1' },
    );
    expect(admitJob({ id: 'd', delete: 'j1' }, { now, newId }).job).toMatchObject({ id: 'd', target: 'j1' });
  });

  it('maps ids in and out of a namespace', () => {
    expect(toInternalId('x', { name: 'a' })).toBe('a:x');
    expect(fromInternalId('a:x', { name: 'a' })).toBe('x');
    expect(fromInternalId('b:x', { name: 'a' })).toBeUndefined();
    expect(fromInternalId('b:x', undefined)).toBe('b:x');
  });

  it.each(['welcome-1', 'x~0', 'x~123'])('reserves %s', (id) => expect(isReservedJobId(id)).toBe(true));
  it.each(['welcome', 'x~', 'x~1a', 'my-welcome-1'])('does not reserve %s', (id) =>
    expect(isReservedJobId(id)).toBe(false),
  );

  it('null and missing ids both get a new one', () => {
    expect(admitJob({ ...job, id: null }, { now, newId }).id).toBe('generated');
    expect(admitJob({ to: job.to, text: 'x' }, { now, newId }).id).toBe('generated');
  });

  it('one size rule for the API, the CLI and the sender: a 63.5 KiB job is refused by all, at the same measure', () => {
    const big = { id: 'big', to: { conversationId: 'a:1' }, text: 'x'.repeat(63.5 * 1024) };
    expect(() => admitJob(big, { now, newId })).toThrow(JobValidationError);
    const cli = prepareJobs(big, now, newId);
    expect('problems' in cli && cli.problems[0]).toMatchObject({
      path: '(job)',
      message: expect.stringContaining(`${MAX_ENVELOPED_JOB_BYTES} bytes`),
    });
    // The largest job that passes still fits the sender's envelope.
    const fits = { ...big, text: 'x'.repeat(MAX_ENVELOPED_JOB_BYTES - 400) };
    const admitted = admitJob(fits, { now, newId });
    expect(queueMessageBytes(admitted.queueText)).toBeLessThanOrEqual(MAX_ENVELOPED_JOB_BYTES);
  });

  it('a caller limited to tenants may only name its tenants', () => {
    const submitter = { name: 'hr', tenants: ['t1'] };
    expect(() => admitJob({ to: { aadObjectId: 'u', tenantId: 't2' }, text: 'x' }, { now, newId, submitter })).toThrow(
      'to.tenantId: is not a tenant this caller may reach',
    );
    expect(() => admitJob({ to: { allInstalled: true }, text: 'x' }, { now, newId, submitter })).toThrow(
      'to.tenantId: is required',
    );
    expect(
      admitJob({ to: { aadObjectIds: ['u'], tenantId: 't1' }, text: 'x' }, { now, newId, submitter }).job.kind,
    ).toBe('broadcast');
  });

  it('a batch reports every problem with its index, duplicates included', () => {
    const result = admitJobs([job, { ...job, notBefore: '2027-01-01T00:00:00Z' }, 'nope'], {
      now,
      newId,
      maxJobs: 100,
    });
    expect('problems' in result && result.problems.map((p) => p.path)).toEqual(['[1].id', '[1].notBefore', '[2]']);
  });
});

describe('Bot Connector URLs', () => {
  const base = new URL('https://smba.trafficmanager.net/amer/');
  it.each(['..', '.', '%2e%2E', '%2E', ''])('refuses the path segment %j', (segment) => {
    expect(() => connectorUrl(base, 'conversations', segment, 'activities')).toThrow('cannot be an id');
  });
  it('encodes everything else', () => {
    expect(connectorUrl(base, 'conversations', 'a:1/..;x', 'activities').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/a%3A1%2F..%3Bx/activities',
    );
  });
});
