import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { admitJob, isReservedJobId } from '../../src/core/admission';
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
    expect(samples.sort()).toEqual([
      'batch-channels.json',
      'batch-team.json',
      'batch-tenant.json',
      'batch-users.json',
      'broadcast-all.json',
      'broadcast-users.json',
      'card.json',
      'channel.json',
      'conversation.json',
      'delete.json',
      'raw-activity.json',
      'scheduled.json',
      'thread-reply.json',
      'update.json',
      'user.json',
    ]);
  });

  it.each(samples)('accepts samples/jobs/%s, and so does the sender', (file) => {
    const job = JSON.parse(readFileSync(path.join(samplesDir, file), 'utf8')) as unknown;
    expect(validate(job), JSON.stringify(validate.errors)).toBe(true);
    expect(() => parseJob(job, 'queue-message-id')).not.toThrow();
  });

  // Examples of the agreement the generated test below checks rule by rule: what the sender
  // refuses, Parse JSON refuses too (except what JSON Schema cannot say: SCHEMA_CANNOT_SAY).
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
    [
      'mentions with a card and no text',
      {
        to: { conversationId: 'a:1' },
        adaptiveCard: { type: 'AdaptiveCard' },
        mentions: [{ id: '29:a', name: 'Ana' }],
      },
    ],
    ['blank text', { to: { conversationId: 'a:1' }, text: '  ' }],
    ['a blank conversation id', { to: { conversationId: ' ' }, text: 'x' }],
    ['a month 13', { to: { conversationId: 'a:1' }, text: 'x', notBefore: '2026-13-01T08:00:00Z' }],
    ['update with a target', { update: 'j1', to: { conversationId: 'a:1' }, text: 'x' }],
    ['update without content', { update: 'j1' }],
    ['delete with content', { delete: 'j1', text: 'x' }],
    ['a date without a time', { to: { conversationId: 'a:1' }, text: 'x', notBefore: '2026-12-01' }],
    ['an empty recipient list', { to: { aadObjectIds: [] }, text: 'x' }],
    ['allInstalled false', { to: { allInstalled: false }, text: 'x' }],
    ['a dot-dot conversation id', { to: { conversationId: '..' }, text: 'x' }],
    ['a dot-dot thread id', { to: { channelId: '19:c', threadId: '..' }, text: 'x' }],
    ['activity.from', { to: { conversationId: 'a:1' }, text: 'x', activity: { from: { id: '28:other' } } }],
    [
      'activity.channelData.onBehalfOf',
      { to: { conversationId: 'a:1' }, text: 'x', activity: { channelData: { onBehalfOf: [] } } },
    ],
    [
      'a non-mention entity',
      { to: { conversationId: 'a:1' }, text: 'x', activity: { entities: [{ type: 'clientInfo' }] } },
    ],
    [
      'a raw activity with an envelope key',
      { type: 'message', conversation: { id: 'a:1' }, text: 'x', teamsCourier: { jobId: 'v' } },
    ],
    ['a raw activity with no content', { type: 'message', conversation: { id: 'a:1' } }],
    ['a raw activity with an unknown field', { type: 'message', conversation: { id: 'a:1' }, text: 'x', value: 1 }],
    ['a batch of 4 users', { to: { batch: 'users', users: ['a', 'b', 'c', 'd'], tenantId: 't' }, text: 'x' }],
    ['a batch of users without a tenant', { to: { batch: 'users', users: ['a', 'b', 'c', 'd', 'e'] }, text: 'x' }],
    ['an unknown batch form', { to: { batch: 'everyone', tenantId: 't' }, text: 'x' }],
    ['a batch with another target', { to: { batch: 'tenant', tenantId: 't', conversationId: 'a:1' }, text: 'x' }],
    ['a tenant batch with a user list', { to: { batch: 'tenant', tenantId: 't', users: ['a'] }, text: 'x' }],
    ['a team batch without the team', { to: { batch: 'team', tenantId: 't' }, text: 'x' }],
    [
      'a batch to a thread',
      { to: { batch: 'channels', channelIds: ['19:a', '19:b', '19:c', '19:d', '19:e;messageid=1'] }, text: 'x' },
    ],
    [
      'a batch with a mention',
      {
        to: { batch: 'tenant', tenantId: 't' },
        text: '<at>Ana</at>, hello',
        mentions: [{ id: '29:a', name: 'Ana' }],
      },
    ],
    [
      'a batch with a mention entity',
      {
        to: { batch: 'tenant', tenantId: 't' },
        text: 'hello',
        activity: { entities: [{ type: 'mention', text: '<at>A</at>', mentioned: { id: '29:a', name: 'A' } }] },
      },
    ],
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

// ---- Agreement by construction of the test: every rule, every field ------------------------------
//
// Valid jobs of every form, each changed one field at a time in every way that breaks a rule of the
// sender (type, null, empty, blank, length limits, "." and "..", unknown and misplaced keys, list
// sizes, reserved ids, dates) or that removes a field some other field needs. For every variant
// the schema and the sender (parseJob, and the reserved ids admission refuses) must agree, except
// for the rules listed below, which say why.

type Json = Record<string, unknown>;
interface Variant {
  readonly label: string;
  readonly job: unknown;
}

const MENTION = { id: '29:1zAna', name: 'Ana' };
const CARD = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'x' }] };
const ACTIVITY_FIELDS = {
  type: 'message',
  text: 'raw text',
  textFormat: 'xml',
  attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: CARD }],
  attachmentLayout: 'carousel',
  summary: 's',
  importance: 'high',
  speak: 'say',
  inputHint: 'ignoringInput',
  locale: 'en-GB',
  suggestedActions: { actions: [] },
  channelData: { notification: { alert: true, alertInFeed: false } },
  entities: [{ type: 'mention', text: '<at>Ana</at>', mentioned: { id: '29:1zAna', name: 'Ana' } }],
};

/** One valid job of each form, with every field it may carry. */
const BASES: Record<string, Json> = {
  conversation: {
    id: 'job-1',
    to: { conversationId: 'a:1' },
    text: 'Hi <at>Ana</at>',
    textFormat: 'plain',
    summary: 'Hi',
    mentions: [MENTION],
    notBefore: '2026-12-01T08:00:00Z',
  },
  'text and card': {
    to: { conversationId: '19:chat@thread.v2' },
    text: 'See the card, <at>Ana</at>',
    adaptiveCard: CARD,
    mentions: [MENTION],
  },
  'card only': { to: { conversationId: 'a:1' }, adaptiveCard: CARD },
  'activity content': { to: { conversationId: 'a:1' }, activity: ACTIVITY_FIELDS },
  user: {
    to: { aadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1', tenantId: '72f988bf-0000-4000-8000-00000000c0de' },
    text: 'x',
  },
  channel: { to: { channelId: '19:ops@thread.tacv2', threadId: '1763660000000' }, text: 'x' },
  users: { id: 'bc-1', to: { aadObjectIds: ['u-1', 'u-2'], tenantId: 't-1' }, text: 'x' },
  'all installed': { to: { allInstalled: true, tenantId: 't-1', conversationType: 'channel' }, text: 'x' },
  'batch users': {
    id: 'tb-1',
    to: { batch: 'users', users: ['u-1', 'u-2', 'u-3', 'u-4', '29:u-5'], tenantId: 't-1' },
    text: 'x',
    summary: 's',
    notBefore: '2026-12-01T08:00:00Z',
  },
  'batch tenant': { to: { batch: 'tenant', tenantId: 't-1' }, adaptiveCard: CARD, mentions: [] },
  'batch team': { to: { batch: 'team', teamId: '19:team@thread.tacv2', tenantId: 't-1' }, text: 'x' },
  'batch channels': {
    to: { batch: 'channels', channelIds: ['19:a', '19:b', '19:c', '19:d', '19:e'], tenantId: 't-1' },
    activity: { ...ACTIVITY_FIELDS, entities: [] },
  },
  update: {
    id: 'job-1-u',
    update: 'job-1',
    text: 'Now <at>Ana</at>',
    adaptiveCard: CARD,
    mentions: [MENTION],
    summary: 'Now',
    textFormat: 'markdown',
    notBefore: '2026-12-01T08:00:00+01:00',
  },
  delete: { id: 'job-1-d', delete: 'job-1', notBefore: '2026-12-01T08:00:00.5-05:30' },
  raw: {
    ...ACTIVITY_FIELDS,
    id: 'raw-1',
    conversation: { id: 'a:1', conversationType: 'personal' },
    from: { id: '28:bot' },
    recipient: { id: '29:user' },
    serviceUrl: 'https://smba.trafficmanager.net/amer/',
    channelId: 'msteams',
    replyToId: '1',
    notBefore: '2026-12-01T08:00Z',
  },
};

const EDGE_STRINGS: readonly (readonly [string, string])[] = [
  ['empty', ''],
  ['blank', ' \t'],
  ['"."', '.'],
  ['".."', '..'],
  ['with ;messageid=', '19:c;messageid=1'],
  ['reserved welcome- id', 'welcome-123'],
  ['reserved ~n id', 'job~7'],
  ['an id-like ~ text', 'a~b'],
  ...[64, 128, 200, 400, 1000].flatMap(
    (n) =>
      [
        [`${n} characters`, 'x'.repeat(n)],
        [`${n + 1} characters`, 'x'.repeat(n + 1)],
      ] as const,
  ),
  ['128 characters escaped three times each', '%'.repeat(128)],
  ...[
    '2026-12-01',
    '2026-12-01T08:00:00',
    '2026-13-01T00:00Z',
    '2026-12-00T00:00Z',
    '2026-02-31T00:00Z',
    '2026-12-01T24:00Z',
    '2026-12-01T24:00:01Z',
    '2026-12-01T23:60Z',
    '2026-12-01T23:59:60Z',
    '2026-12-01T08:00:00+24:00',
    '2026-12-01T08:00:00+05:60',
    '2026-12-01T08:00:00.Z',
    'Tuesday',
  ].map((d) => [`date ${d}`, d] as const),
];
const OTHER_VALUES: readonly (readonly [string, unknown])[] = [
  ['null', null],
  ['a number', 5],
  ['true', true],
  ['false', false],
  ['an empty object', {}],
  ['an empty array', []],
  ['an array of a string', ['x']],
  ['"message"', 'message'],
  ['"AdaptiveCard"', 'AdaptiveCard'],
  ['"mention"', 'mention'],
  ['"personal"', 'personal'],
  ['"markdown"', 'markdown'],
];
/** Keys that belong to some form, with a valid value: put where they do not belong, they must be refused. */
const MISPLACED: readonly (readonly [string, unknown])[] = [
  ['to', { conversationId: 'a:2' }],
  ['update', 'job-0'],
  ['delete', 'job-0'],
  ['type', 'message'],
  ['conversation', { id: 'a:2' }],
  ['text', 'x'],
  ['textFormat', 'plain'],
  ['adaptiveCard', CARD],
  ['summary', 's'],
  ['mentions', [MENTION]],
  ['activity', { text: 'x' }],
  ['attachments', [{}]],
  ['notBefore', '2026-12-01T08:00:00Z'],
  ['id', 'other-id'],
  ['teamsCourier', { jobId: 'victim' }],
  ['job', { to: { conversationId: 'a:1' }, text: 'x' }],
  ['colour', 'red'],
];

const clone = <T>(value: T): T => structuredClone(value);

function setAt(root: unknown, at: readonly (string | number)[], value: unknown | typeof REMOVE): unknown {
  const copy = clone(root);
  let node = copy as Record<string | number, unknown>;
  for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = at.at(-1)!;
  if (value === REMOVE) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}
const REMOVE = Symbol('remove');

/** Every variant of every base: each node changed alone. */
function* variants(): Generator<Variant> {
  for (const [form, base] of Object.entries(BASES)) {
    yield { label: `${form}: as it is`, job: base };
    const walk = function* (node: unknown, at: (string | number)[]): Generator<Variant> {
      const where = `${form}: ${at.length === 0 ? '(job)' : at.join('.')}`;
      if (at.length > 0) {
        yield { label: `${where} removed`, job: setAt(base, at, REMOVE) };
        for (const [name, value] of [...OTHER_VALUES, ...EDGE_STRINGS])
          yield { label: `${where} = ${name}`, job: setAt(base, at, value) };
      }
      if (Array.isArray(node)) {
        const item = node[0];
        for (const count of [0, 2, 50, 51, 1000, 1001])
          yield {
            label: `${where} with ${count} entries`,
            job:
              at.length === 0
                ? node
                : setAt(
                    base,
                    at,
                    Array.from({ length: count }, (_, i) => (typeof item === 'string' ? `${item}-${i}` : clone(item))),
                  ),
          };
        for (const [i, child] of node.entries()) yield* walk(child, [...at, i]);
      } else if (typeof node === 'object' && node !== null) {
        for (const [key, value] of MISPLACED)
          if (!(key in node))
            yield {
              label: `${where} + ${key}`,
              job: at.length === 0 ? { ...node, [key]: value } : setAt(base, [...at, key], value),
            };
        for (const [key, child] of Object.entries(node)) yield* walk(child, [...at, key]);
      }
    };
    yield* walk(base, []);
  }
  // Rules between two fields.
  yield { label: 'update: names itself', job: { ...BASES.update, id: 'job-1' } };
  yield { label: 'delete: names itself', job: { ...BASES.delete, id: 'job-1' } };
  yield { label: 'update: and delete', job: { ...BASES.update, delete: 'job-1' } };
  yield {
    label: 'text and card: an empty mention list, no text',
    job: { ...BASES['text and card'], text: undefined, mentions: [] },
  };
  yield {
    label: 'conversation: mentions with activity.text only',
    job: { to: { conversationId: 'a:1' }, activity: { text: '<at>Ana</at>' }, mentions: [MENTION] },
  };
  // A batch list counts different users: repeats count once (the sender), items (JSON Schema).
  yield {
    label: 'batch users: 5 entries, 2 of them the same',
    job: { ...BASES['batch users'], to: { batch: 'users', users: ['u-1', 'u-1', 'u-2', 'u-3', 'u-4'], tenantId: 't' } },
  };
  // Lengths counted in UTF-16 code units (the sender) or code points (JSON Schema).
  yield {
    label: 'conversation: id of 65 emoji (130 UTF-16 code units)',
    job: { ...BASES.conversation, id: '😀'.repeat(65) },
  };
  yield {
    label: 'conversation: id of 64 emoji (128 UTF-16 code units)',
    job: { ...BASES.conversation, id: '😀'.repeat(64) },
  };
  yield {
    label: 'conversation: summary of 600 emoji (1200 UTF-16 code units)',
    job: { ...BASES.conversation, summary: '😀'.repeat(600) },
  };
  // Table keys: an unpaired surrogate in an id takes six characters once escaped.
  yield {
    label: 'conversation: id of 70 unpaired surrogates',
    job: { ...BASES.conversation, id: '\ud800'.repeat(70) },
  };
}

/**
 * What JSON Schema cannot say, each a way a job can pass *Parse JSON* and still be refused by the
 * sender (with InvalidJob and a reason naming the field).
 */
const SCHEMA_CANNOT_SAY: readonly (readonly [RegExp, string])[] = [
  [/^(update|delete): names itself$/, 'an update or delete naming its own id: a schema cannot compare two values'],
  [
    /UTF-16 code units\)$/,
    'lengths: JSON Schema counts code points, the sender UTF-16 code units, so characters outside the BMP count twice there',
  ],
  [/unpaired surrogates$/, 'an id with unpaired surrogates may not fit a table key once escaped'],
  [
    /^batch users: 5 entries, 2 of them the same$/,
    'a batch list needs 5 different ids: JSON Schema counts items (uniqueItems would refuse repeats the sender folds)',
  ],
];

/** Where the schema is stricter than the sender, on purpose: it refuses what the sender would take. */
const SCHEMA_STRICTER: readonly (readonly [RegExp, string])[] = [
  [
    /^raw: (from|recipient|serviceUrl|channelId|replyToId) /,
    "a raw activity's routing fields: the schema types them as the Bot Framework does; the sender ignores them, whatever they hold",
  ],
  [/: mentions\.0 \+ /, 'an unknown key in a mention: the schema catches the typo; the sender reads id and name only'],
];

function senderAccepts(job: unknown): boolean {
  try {
    return !isReservedJobId(parseJob(job, 'queue-message-id').id);
  } catch (err) {
    if (err instanceof JobValidationError) return false;
    throw err;
  }
}

describe('schemas/job.schema.json and the sender agree on every rule', () => {
  it('for every field of every job form, changed in every way that matters', () => {
    const disagreements: string[] = [];
    const unexpressible = new Set<string>();
    let count = 0;
    for (const { label, job } of variants()) {
      count += 1;
      const schema = validate(job) === true;
      const sender = senderAccepts(job);
      if (schema === sender) continue;
      const known = (schema ? SCHEMA_CANNOT_SAY : SCHEMA_STRICTER).find(([pattern]) => pattern.test(label));
      if (known === undefined)
        disagreements.push(
          `${label}: the schema ${schema ? 'accepts' : 'refuses'} it, the sender ${sender ? 'accepts' : 'refuses'} it`,
        );
      else unexpressible.add(known[1]);
    }
    expect(count).toBeGreaterThan(3_000);
    expect(disagreements, `${disagreements.length} disagreements:\n${disagreements.join('\n')}`).toEqual([]);
    // Each listed exception is real (still a disagreement): a fixed one must leave the list.
    expect([...unexpressible].sort()).toEqual([...SCHEMA_CANNOT_SAY, ...SCHEMA_STRICTER].map(([, why]) => why).sort());
  });
});
