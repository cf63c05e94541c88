import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { admitJob } from '../../src/core/admission';
import { describe, expect, it } from 'vitest';
import { parseJob } from '../../src/core/job';
import { JobValidationError } from '../../src/errors';

const root = path.resolve(__dirname, '../..');
const schema = JSON.parse(readFileSync(path.join(root, 'schemas/job.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);
const samplesDir = path.join(root, 'samples/jobs');
const samples = readdirSync(samplesDir).filter((f) => f.endsWith('.json'));

describe('schemas/job.schema.json', () => {
  it('has a sample for every documented form', () => {
    expect(samples.sort()).toEqual(['broadcast-all.json', 'broadcast-users.json', 'card.json', 'channel.json', 'conversation.json', 'delete.json', 'raw-activity.json', 'scheduled.json', 'thread-reply.json', 'update.json', 'user.json']);
  });

  it.each(samples)('accepts samples/jobs/%s, and so does the sender', (file) => {
    const job = JSON.parse(readFileSync(path.join(samplesDir, file), 'utf8')) as unknown;
    expect(validate(job), JSON.stringify(validate.errors)).toBe(true);
    expect(() => parseJob(job, 'queue-message-id')).not.toThrow();
  });

  // The schema and the sender must agree on what is invalid, so a flow that validates with
  // Parse JSON never writes a job the sender rejects.
  it.each([
    ['no target', { text: 'x' }],
    ['two targets', { to: { conversationId: 'a:1', aadObjectId: 'u' }, text: 'x' }],
    ['unknown field', { to: { conversationId: 'a:1' }, text: 'x', colour: 'red' }],
    ['no content', { to: { conversationId: 'a:1' } }],
    ['bad format', { to: { conversationId: 'a:1' }, text: 'x', textFormat: 'html' }],
    ['id too long', { id: 'x'.repeat(129), to: { conversationId: 'a:1' }, text: 'x' }],
    ['thread in channel id', { to: { channelId: '19:c;messageid=1' }, text: 'x' }],
    ['not a card', { to: { conversationId: 'a:1' }, adaptiveCard: { type: 'HeroCard' } }],
    ['mention without name', { to: { conversationId: 'a:1' }, text: 'x', mentions: [{ id: '29:a' }] }],
    ['update with a target', { update: 'j1', to: { conversationId: 'a:1' }, text: 'x' }],
    ['update without content', { update: 'j1' }],
    ['delete with content', { delete: 'j1', text: 'x' }],
    ['a date without a time', { to: { conversationId: 'a:1' }, text: 'x', notBefore: '2026-12-01' }],
    ['an empty recipient list', { to: { aadObjectIds: [] }, text: 'x' }],
    ['allInstalled false', { to: { allInstalled: false }, text: 'x' }],
    ['a dot-dot conversation id', { to: { conversationId: '..' }, text: 'x' }],
    ['a dot-dot thread id', { to: { channelId: '19:c', threadId: '..' }, text: 'x' }],
    ['activity.from', { to: { conversationId: 'a:1' }, text: 'x', activity: { from: { id: '28:other' } } }],
    ['activity.channelData.onBehalfOf', { to: { conversationId: 'a:1' }, text: 'x', activity: { channelData: { onBehalfOf: [] } } }],
    ['a non-mention entity', { to: { conversationId: 'a:1' }, text: 'x', activity: { entities: [{ type: 'clientInfo' }] } }],
    ['a raw activity with an envelope key', { type: 'message', conversation: { id: 'a:1' }, text: 'x', teamsCourier: { jobId: 'v' } }],
    ['a raw activity with no content', { type: 'message', conversation: { id: 'a:1' } }],
    ['a raw activity with an unknown field', { type: 'message', conversation: { id: 'a:1' }, text: 'x', value: 1 }],
  ])('rejects %s, as the sender does', (_label, job) => {
    expect(validate(job)).toBe(false);
    expect(() => parseJob(job, 'm')).toThrow(JobValidationError);
  });

  // Reserved ids are refused at admission (the API, the CLI and the sender for queued jobs).
  it.each([['welcome-1'], ['b~3']])('rejects the reserved id %s, as admission does', (id) => {
    const job = { id, to: { conversationId: 'a:1' }, text: 'x' };
    expect(validate(job)).toBe(false);
    expect(() => admitJob(job, { now: new Date(), newId: () => 'n' })).toThrow(JobValidationError);
  });

  it('accepts "id": null, as admission does', () => {
    const job = { id: null, to: { conversationId: 'a:1' }, text: 'x' };
    expect(validate(job)).toBe(true);
    expect(admitJob(job, { now: new Date(), newId: () => 'n' }).id).toBe('n');
  });
});
