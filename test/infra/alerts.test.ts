/**
 * The alerts and the workbook (infra/modules/operations.bicep, infra/monitoring/): what the compiled
 * template deploys, and that every query finds what it looks for in log lines the app really
 * writes. The lines come from the real code paths here (the sender against Azurite and the
 * Connector stub, the HTTP handlers), exactly as they reach Application Insights' `traces.message`.
 *
 * KQL is not run here. Each query is read for what it relies on: the `contains '…'` texts it
 * filters lines with, the event names it selects, and the fields (`e.<field>`) it reads; each must
 * be in the captured lines, so renaming an event or a field breaks this test, not the alert.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Faults, fixtureActivity } from '../../host/emulator';
import { createChannelTokenVerifier } from '../../src/auth/verifyChannelToken';
import { AuthError } from '../../src/errors';
import { handleNotifyPost } from '../../src/flows/notifyApi';
import { handleNotifyRetry } from '../../src/flows/retryApi';
import { handleMessages } from '../../src/inbound/handleMessages';
import { createLogger } from '../../src/log';
import { createPoisonQueue } from '../../src/store/poisonQueue';
import { USER_TENANT, useSenderEnv } from '../helpers/senderEnv';
import { allResources, mainContext, REPO_ROOT, SCENARIOS } from './arm';

const ALERTS_DIR = path.join(REPO_ROOT, 'infra/monitoring/alerts');
const WORKBOOK_PATH = path.join(REPO_ROOT, 'infra/monitoring/operations.workbook.json');
const alertFiles = fs
  .readdirSync(ALERTS_DIR)
  .filter((f) => f.endsWith('.kql'))
  .sort();
const alertQueries = new Map(
  alertFiles.map((f) => [f.replace(/\.kql$/, ''), fs.readFileSync(path.join(ALERTS_DIR, f), 'utf8')]),
);
const workbookText = fs.readFileSync(WORKBOOK_PATH, 'utf8');
const workbook = JSON.parse(workbookText) as {
  version: string;
  items: { type: number; name: string; content: { query?: string; resourceType?: string } }[];
};
const workbookQueries = new Map(workbook.items.filter((i) => i.type === 3).map((i) => [i.name, i.content.query!]));

/** Text a query filters on that the Functions host writes, not the app. */
const HOST_TEXT = new Set(['MaxDequeueCount']);
/** Events a query names that are not the app's (the host's poison move, labelled inside the query). */
const HOST_EVENTS = new Set(['host.poisoned']);

describe('the compiled template', () => {
  const operations = (params: Record<string, unknown>) =>
    allResources(mainContext({ ...SCENARIOS.userAssignedMsi, ...params })).filter(
      (r) => r.type.startsWith('Microsoft.Insights/') && r.type !== 'Microsoft.Insights/components',
    );
  const ofType = (params: Record<string, unknown>, type: string) => operations(params).filter((r) => r.type === type);

  it('deploys one log alert per query file, each on Application Insights, each with the action group', () => {
    const rules = ofType({}, 'Microsoft.Insights/scheduledQueryRules');
    expect(rules).toHaveLength(alertQueries.size);
    const group = ofType({}, 'Microsoft.Insights/actionGroups')[0]!;
    for (const rule of rules) {
      const criteria = rule.get('properties.criteria.allOf') as {
        query: string;
        timeAggregation: string;
        operator: string;
        threshold: number;
      }[];
      expect(criteria).toHaveLength(1);
      // The deployed query is the file's text, byte for byte.
      expect([...alertQueries.values()]).toContain(criteria[0]!.query);
      expect(criteria[0]).toMatchObject({ timeAggregation: 'Count', operator: 'GreaterThan', threshold: 0 });
      expect(rule.get('properties.scopes')).toEqual([expect.stringContaining('Microsoft.Insights/components')]);
      expect(rule.get('properties.actions.actionGroups')).toEqual([group.id]);
      expect(rule.get('properties.enabled')).toBe(true);
      // No window longer than the frequency leaves gaps: each rule looks at least as far back as it waits.
      const minutes = (d: string) => Number(/^PT(\d+)M$/.exec(d)?.[1] ?? Number(/^PT(\d+)H$/.exec(d)?.[1]) * 60);
      expect(minutes(String(rule.get('properties.windowSize')))).toBeGreaterThanOrEqual(
        minutes(String(rule.get('properties.evaluationFrequency'))),
      );
    }
  });

  it('e-mails the alerts to alertEmail, and to nobody without it', () => {
    expect(ofType({}, 'Microsoft.Insights/actionGroups')[0]!.get('properties.emailReceivers')).toEqual([]);
    const group = ofType({ alertEmail: 'ops@example.com' }, 'Microsoft.Insights/actionGroups')[0]!;
    expect(group.get('properties.emailReceivers')).toEqual([
      { name: 'operator', emailAddress: 'ops@example.com', useCommonAlertSchema: true },
    ]);
    expect(group.get('location')).toBe('global');
  });

  it('deploys the workbook from infra/monitoring/operations.workbook.json, on Application Insights', () => {
    const [book] = ofType({}, 'Microsoft.Insights/workbooks');
    expect(book!.get('properties.serializedData')).toBe(workbookText);
    expect(book!.get('properties.sourceId')).toEqual(expect.stringContaining('Microsoft.Insights/components'));
    expect(book!.get('kind')).toBe('shared');
    expect(workbook.version).toBe('Notebook/1.0');
    expect(workbookQueries.size).toBeGreaterThanOrEqual(6);
  });

  it('tests GET /api/health only when asked to (it is billed per run)', () => {
    expect(ofType({}, 'Microsoft.Insights/webtests')).toEqual([]);
    const [test] = ofType({ availabilityTest: true }, 'Microsoft.Insights/webtests');
    expect(String(test!.get('properties.Request.RequestUrl'))).toMatch(/^https:\/\/.+\/api\/health$/);
    expect(test!.get('properties.ValidationRules.ExpectedHttpStatusCode')).toBe(200);
    expect(ofType({ availabilityTest: true }, 'Microsoft.Insights/metricAlerts')).toHaveLength(1);
  });
});

// ---- Real log lines --------------------------------------------------------------------------

const env = useSenderEnv({ maxAttempts: 2 });
const lines: string[] = [];

/** Runs every path whose events the queries use, and keeps the log lines they write. */
async function captureLogLines(): Promise<Record<string, unknown>[]> {
  if (lines.length > 0) return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const e = env();
  const log = createLogger((_level, line) => lines.push(line));
  const chat = async (conversationId: string) => {
    const activity = fixtureActivity('message.personal', {
      serviceUrl: e.connector.serviceUrl('amer'),
      conversationId,
    });
    (activity.conversation as Record<string, string>).tenantId = USER_TENANT;
    await e.capture(activity);
  };
  await chat('a:alerts-ok');
  await chat('a:alerts-429');
  await chat('a:alerts-blocked');
  e.connector.injectFault(Faults.throttle(1), { match: { conversationId: 'a:alerts-429' }, times: 1 });
  e.connector.injectFault(Faults.error('ConversationBlockedByUser'), {
    match: { conversationId: 'a:alerts-blocked' },
    times: 1,
  });
  await e.enqueue({ id: 'alerts-ok', to: { conversationId: 'a:alerts-ok' }, text: 'x' });
  await e.enqueue({ id: 'alerts-429', to: { conversationId: 'a:alerts-429' }, text: 'x' });
  await e.enqueue({ id: 'alerts-blocked', to: { conversationId: 'a:alerts-blocked' }, text: 'x' });
  await e.enqueue({ id: 'alerts-invalid', to: { conversationId: 'a:1', channelId: '19:x' }, text: 'x' });
  await e.drain({ deps: { log, stats: { queuedAt: new Date(Date.now() - 5_000), record: () => undefined } } });

  // The flow API: a job accepted, a caller refused, a retry.
  const post = (authenticate: () => Promise<undefined>) =>
    handleNotifyPost(
      {
        method: 'POST',
        url: 'https://courier.example/api/notify',
        headers: new Headers({ 'content-type': 'application/json' }),
        body: new Blob([
          JSON.stringify({ id: 'alerts-api', to: { conversationId: 'a:alerts-ok' }, text: 'x' }),
        ]).stream() as ReadableStream<Uint8Array>,
      },
      { deliveries: e.deliveries, queue: e.deps().queue, now: () => new Date(), log, authenticate },
    );
  expect((await post(async () => undefined)).status).toBe(202);
  expect(
    (
      await post(async () => {
        throw new AuthError('AUTH_INVALID', 'token signature invalid');
      })
    ).status,
  ).toBe(401);
  await handleNotifyRetry(
    {
      method: 'POST',
      url: 'https://courier.example/api/notify/alerts-blocked/retry',
      headers: new Headers(),
      body: null,
    },
    'alerts-blocked',
    {
      deliveries: e.deliveries,
      queue: e.deps().queue,
      poison: createPoisonQueue(e.poison),
      now: () => new Date(),
      log,
      authenticate: async () => undefined,
    },
  );
  await e.drain({ deps: { log } });

  // The bot's endpoint: a request without a token.
  const verifier = createChannelTokenVerifier({
    appId: 'app',
    issuer: 'https://api.botframework.com',
    keys: {
      fetchCount: 0,
      getKey: () => Promise.reject(new Error('not reached: no token')),
    },
  });
  const refused = await handleMessages(
    {
      method: 'POST',
      headers: new Headers({ 'content-type': 'application/json' }),
      body: new Blob(['{}']).stream() as ReadableStream<Uint8Array>,
    },
    { verifier, store: e.conversations, now: () => new Date(), log },
  );
  expect(refused.status).toBe(401);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface Reliance {
  readonly texts: string[];
  readonly events: string[];
  readonly eventPrefixes: string[];
  readonly fields: string[];
}

/** What a query relies on in the app's lines. */
function reliesOn(query: string): Reliance {
  const code = query
    .split('\n')
    .filter((l) => !l.trim().startsWith('//'))
    .join('\n');
  const texts = [...code.matchAll(/contains '([^']+)'/g)].map((m) => m[1]!);
  const events = [...code.matchAll(/'([a-z]+\.[A-Za-z]+)'/g)]
    .map((m) => m[1]!)
    .filter((name) => !HOST_EVENTS.has(name));
  const eventPrefixes = [...code.matchAll(/event startswith '([a-z]+\.)'/g)].map((m) => m[1]!);
  const fields = [...code.matchAll(/\be\.([A-Za-z]+)\b/g)].map((m) => m[1]!);
  return {
    texts: [...new Set(texts)],
    events: [...new Set(events)],
    eventPrefixes,
    fields: [...new Set(fields)].filter((f) => f !== 'event'),
  };
}

const queries = [
  ...[...alertQueries].map(([name, query]) => [`alert ${name}`, query] as const),
  ...[...workbookQueries].map(([name, query]) => [`workbook ${name}`, query] as const),
];

describe.each(queries)('%s', (_name, query) => {
  it('finds the texts, events and fields it relies on in the lines the app writes', async () => {
    const parsed = await captureLogLines();
    const { texts, events, eventPrefixes, fields } = reliesOn(query);
    if (!query.trimStart().startsWith('requests'))
      expect(texts.length + events.length, "a query of the app's traces names what it reads").toBeGreaterThan(0);

    for (const text of texts) {
      if (HOST_TEXT.has(text)) continue;
      // KQL `contains` is a case-insensitive substring match on traces.message: the raw line.
      expect(
        lines.some((l) => l.toLowerCase().includes(text.toLowerCase())),
        `a line contains ${text}`,
      ).toBe(true);
    }
    for (const event of events)
      expect(
        parsed.some((l) => l.event === event),
        `event ${event}`,
      ).toBe(true);
    for (const prefix of eventPrefixes)
      expect(
        parsed.some((l) => String(l.event).startsWith(prefix)),
        `an event starting ${prefix}`,
      ).toBe(true);
    const selected = parsed.filter(
      (l) => events.includes(String(l.event)) || eventPrefixes.some((p) => String(l.event).startsWith(p)),
    );
    for (const field of fields)
      expect(
        selected.some((l) => l[field] !== undefined),
        `field ${field} on one of ${events.join(', ')}`,
      ).toBe(true);
  });
});

describe('the fields the alerts compute with', () => {
  it('have the types the queries convert them to', async () => {
    const parsed = await captureLogLines();
    const sent = parsed.filter((l) => l.event === 'job.sent');
    expect(sent.length).toBeGreaterThan(0);
    for (const l of sent) expect(l).toMatchObject({ queuedMs: expect.any(Number), tenantId: expect.any(String) });
    expect(parsed.find((l) => l.event === 'job.retrying' && l.jobId === 'alerts-429')).toMatchObject({
      throttled: true,
      httpStatus: 429,
    });
    expect(parsed.find((l) => l.event === 'job.failed' && l.jobId === 'alerts-blocked')).toMatchObject({
      code: 'ConversationBlockedByUser',
      attempts: 1,
    });
    expect(parsed.find((l) => l.event === 'messages.unauthorized')).toMatchObject({ status: 401 });
    expect(parsed.find((l) => l.event === 'notify.unauthorized')).toMatchObject({ code: 'AUTH_INVALID' });
    // Every line is one JSON object that starts with its level and event, as traces.message holds it.
    for (const line of lines) expect(line).toMatch(/^\{"level":"\w+","event":"[\w.]+"/);
  });
});
