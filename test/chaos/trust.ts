/**
 * Part 4, leaks and trust.
 *
 * a) A conversation reference whose serviceUrl is not a trusted Bot Connector origin, written
 *    straight into the table (as an attacker with table access, or a bug, would): the job fails
 *    with a reason and the foreign host receives nothing (no request, so no bot token).
 * b) Conversation ids with characters Table Storage and URLs treat specially round-trip from
 *    capture to delivery: stored under the exact id, delivered to the exact id.
 * c) Every line the app and the stubs logged during the whole suite is searched for the bot's
 *    tokens, the channel tokens the suite minted, the app password and the storage account key.
 */
import { expect } from 'vitest';
import { fixtureActivity, personalMessage, type Activity } from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';
import { APP_ID, SEED, mapLimit, printTable, waitFor, type ChaosRig } from './harness';

const TENANT = '7c0a0000-0000-4000-8000-00000000a004';

async function waitForOutcome(rig: ChaosRig, jobId: string): Promise<Record<string, unknown>> {
  return waitFor(
    `job ${jobId} to finish`,
    90_000,
    async () => {
      const record = await rig.deliveryRecord(jobId);
      return record?.status === 'sent' || record?.status === 'failed' ? record : undefined;
    },
    250,
  );
}

export async function foreignServiceUrl(rig: ChaosRig): Promise<void> {
  const connectorPort = rig.connector.port;
  const variants: { label: string; serviceUrl: string }[] = [
    { label: 'another HTTPS host (not a trusted origin)', serviceUrl: rig.foreign.serviceUrl('amer') },
    { label: 'the foreign host, tenant-suffixed path', serviceUrl: `${rig.foreign.origin}/amer/${TENANT}/` },
    { label: 'the trusted host over http', serviceUrl: `http://127.0.0.1:${connectorPort}/amer/` },
    {
      label: 'the trusted host with credentials in the URL',
      serviceUrl: `https://evil:pw@127.0.0.1:${connectorPort}/amer/`,
    },
    {
      label: 'the foreign port hidden as credentials',
      serviceUrl: `https://127.0.0.1:${rig.foreign.port}@127.0.0.1:${connectorPort}/`,
    },
    { label: 'not a URL', serviceUrl: `https://127.0.0.1:${connectorPort}.evil/amer/` },
    { label: 'file: URL', serviceUrl: 'file:///etc/passwd' },
  ];
  const foreignBefore = rig.foreign.requests.length;
  const connectorBefore = rig.connector.requests.length;
  const now = new Date().toISOString();
  const conversations = rig.storage.table('conversations');
  const userChats = rig.storage.table('userchats');
  for (const table of [conversations, userChats]) await table.createTable().catch(() => undefined);
  const cases = variants.map((v, i) => ({
    ...v,
    conversationId: `a:chaos-foreign-${SEED}-${i}`,
    aadObjectId: `a4000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  }));
  for (const c of cases) {
    await conversations.upsertEntity(
      {
        partitionKey: toTableKey(c.conversationId),
        rowKey: 'ref',
        conversationId: c.conversationId,
        conversationType: 'personal',
        tenantId: TENANT,
        serviceUrl: c.serviceUrl,
        botId: `28:${APP_ID}`,
        userAadObjectId: c.aadObjectId,
        installed: true,
        installedChangedAt: now,
        firstSeenAt: now,
        lastSeenAt: now,
      },
      'Replace',
    );
    await userChats.upsertEntity(
      { partitionKey: toTableKey(c.aadObjectId), rowKey: toTableKey(TENANT), conversationId: c.conversationId },
      'Replace',
    );
  }
  const jobs = cases.flatMap((c, i) => [
    {
      case: c,
      id: `p4-${SEED}-foreign-${i}`,
      body: {
        id: `p4-${SEED}-foreign-${i}`,
        to: { conversationId: c.conversationId },
        text: `[job:p4-${SEED}-foreign-${i}] secret`,
      },
    },
    {
      case: c,
      id: `p4-${SEED}-foreign-user-${i}`,
      body: {
        id: `p4-${SEED}-foreign-user-${i}`,
        to: { aadObjectId: c.aadObjectId, tenantId: TENANT },
        text: `[job:p4-${SEED}-foreign-user-${i}] secret`,
      },
    },
  ]);
  // One job per conversation first (a refusal marks the reference undeliverable), then the rest.
  await rig.enqueue(jobs.filter((_, k) => k % 2 === 0).map((j) => JSON.stringify(j.body)));
  const first = await mapLimit(
    jobs.filter((_, k) => k % 2 === 0),
    8,
    (j) => waitForOutcome(rig, j.id),
  );
  await rig.enqueue(jobs.filter((_, k) => k % 2 === 1).map((j) => JSON.stringify(j.body)));
  const second = await mapLimit(
    jobs.filter((_, k) => k % 2 === 1),
    8,
    (j) => waitForOutcome(rig, j.id),
  );
  await rig.readPoison();
  const records = [...first, ...second];
  const ids = new Set(cases.map((c) => c.conversationId));
  const reachedConnector = rig.connector.requests
    .slice(connectorBefore)
    .filter((r) => r.conversationId !== undefined && ids.has(r.conversationId));
  const foreignRequests = rig.foreign.requests.length - foreignBefore;
  const byCode = new Map<string, number>();
  for (const r of records) byCode.set(String(r.lastErrorCode), (byCode.get(String(r.lastErrorCode)) ?? 0) + 1);

  printTable('4a. A foreign serviceUrl written into the table', [
    ['serviceUrl variants', cases.map((c) => c.label).join('; ')],
    ['jobs (by conversationId, then by aadObjectId)', jobs.length],
    [
      'failed / sent',
      `${records.filter((r) => r.status === 'failed').length} / ${records.filter((r) => r.status === 'sent').length}`,
    ],
    ['failure codes', [...byCode].map(([c, n]) => `${c}: ${n}`).join(', ')],
    [
      'in the poison queue with the reason',
      jobs.filter((j) => rig.poison.some((p) => p.teamsCourier?.jobId === j.id && p.teamsCourier.reason !== '')).length,
    ],
    ['**requests that reached the foreign host**', foreignRequests],
    ['requests for these conversations at the trusted stub', reachedConnector.length],
  ]);

  for (const [k, record] of records.entries()) {
    const job = k < first.length ? jobs[k * 2]! : jobs[(k - first.length) * 2 + 1]!;
    expect(record.status, `${job.id} (${job.case.label})`).toBe('failed');
    // The first job names the untrusted host; a later one names the refusal that was recorded on the reference.
    expect(String(record.lastErrorCode), job.id).toMatch(
      k < first.length ? /^UntrustedServiceUrl$/ : /^(UntrustedServiceUrl|Undeliverable)$/,
    );
    expect(String(record.lastErrorReason), job.id).toMatch(
      /not a trusted Bot Connector host|not a valid URL|UntrustedServiceUrl/,
    );
    expect(
      rig.poison.some((p) => p.teamsCourier?.jobId === job.id),
      `${job.id} in the poison queue`,
    ).toBe(true);
  }
  expect(foreignRequests).toBe(0);
  expect(reachedConnector).toHaveLength(0);
}

export async function specialConversationIds(rig: ChaosRig): Promise<void> {
  const raw = [
    `a:chaos/slash/${SEED}`,
    'a:chaos\\back\\slash',
    'a:chaos#hash#',
    'a:chaos?query=1&x=2',
    'a:chaos%25percent%2F%',
    'a:chaos;semi;colon;',
    'a:chaos-ünïcödé-日本語-😀',
    'a:chaos%uD800-looks-escaped',
    'a:chaos/..%2e%2e/../x',
    'a:chaos\ttab and space ',
    'a:/\\#?%;ü-all-of-them',
  ];
  const serviceUrl = rig.connector.serviceUrl('emea');
  const personal = raw.map((id, i) => ({
    id: `${id}-${SEED}`,
    activity: personalMessage({
      appId: APP_ID,
      tenantId: TENANT,
      serviceUrl,
      conversationId: `${id}-${SEED}`,
      user: {
        id: `29:chaos-special-${i}`,
        name: `Spécial ${i}`,
        aadObjectId: `a4100000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      },
      text: 'hi',
    }),
    aadObjectId: `a4100000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  }));
  const groupId = `19:chaos/\\#?%;ü-group-${SEED}@thread.v2`;
  const channelId = `19:chaos/\\#?%;ü-channel-${SEED}@thread.tacv2`;
  const group = fixtureActivity('message.groupChat', {
    appId: APP_ID,
    tenantId: TENANT,
    serviceUrl,
    conversationId: groupId,
  });
  const channel = fixtureActivity('conversationUpdate.channel.botAdded', {
    appId: APP_ID,
    tenantId: TENANT,
    serviceUrl,
    conversationId: channelId,
  });
  channel.channelData = { ...(channel.channelData ?? {}), channel: { id: channelId, name: 'Spécial #1' } };
  const activities: Activity[] = [...personal.map((p) => p.activity), group, channel];
  for (const activity of activities) {
    const answer = await rig.postSigned(activity);
    expect(answer.status, `capture of ${JSON.stringify(activity.conversation?.id)}: ${answer.body}`).toBe(200);
  }
  const storedOk: string[] = [];
  for (const id of [...personal.map((p) => p.id), groupId, channelId]) {
    const entity = await rig.conversation(id);
    if (entity?.conversationId === id) storedOk.push(id);
  }

  const threadId = '1763660000000/#?;x';
  const jobs = [
    ...personal.map((p, i) => ({
      id: `p4-${SEED}-special-${i}`,
      expect: p.id,
      body: { to: { conversationId: p.id } },
    })),
    ...personal.map((p, i) => ({
      id: `p4-${SEED}-special-user-${i}`,
      expect: p.id,
      body: { to: { aadObjectId: p.aadObjectId, tenantId: TENANT } },
    })),
    { id: `p4-${SEED}-special-group`, expect: groupId, body: { to: { conversationId: groupId } } },
    { id: `p4-${SEED}-special-channel`, expect: channelId, body: { to: { channelId } } },
    {
      id: `p4-${SEED}-special-thread`,
      expect: `${channelId};messageid=${threadId}`,
      body: { to: { channelId, threadId } },
    },
  ];
  const before = rig.connector.delivered.length;
  await rig.enqueue(jobs.map((j) => JSON.stringify({ id: j.id, ...j.body, text: `[job:${j.id}] spécial` })));
  const outcomes = await mapLimit(jobs, 8, (j) => waitForOutcome(rig, j.id));
  const delivered = rig.connector.delivered.slice(before);
  const wrong: string[] = [];
  for (const [k, j] of jobs.entries()) {
    const got = delivered.filter(
      (d) => typeof d.activity?.text === 'string' && d.activity.text.startsWith(`[job:${j.id}]`),
    );
    if (outcomes[k]!.status !== 'sent')
      wrong.push(`${j.id}: ${String(outcomes[k]!.status)} ${String(outcomes[k]!.lastErrorReason ?? '')}`);
    else if (got.length !== 1 || got[0]!.conversationId !== j.expect)
      wrong.push(
        `${j.id}: delivered to ${JSON.stringify(got.map((d) => d.conversationId))}, expected ${JSON.stringify(j.expect)}`,
      );
  }
  const paths = rig.connector.requests.filter((r) => r.delivered && delivered.some((d) => d.seq === r.seq));
  const pathProblems = paths.filter(
    (r) =>
      r.conversationId !== undefined &&
      !r.path.includes(`/v3/conversations/${encodeURIComponent(r.conversationId)}/activities`),
  );

  printTable('4b. Special characters in conversation ids', [
    [
      'ids (personal, group chat, channel)',
      `${personal.length + 2}: ${[...raw, groupId, channelId].map((id) => JSON.stringify(id)).join(' ')}`,
    ],
    ['stored under the exact id', `${storedOk.length} of ${personal.length + 2}`],
    ['jobs (by conversationId, by aadObjectId, group, channel, thread reply)', jobs.length],
    ['delivered to the exact id', `${jobs.length - wrong.length} of ${jobs.length}`],
    ['request paths not encoded segment by segment', pathProblems.length],
  ]);
  expect(storedOk).toHaveLength(personal.length + 2);
  expect(wrong, wrong.join('\n')).toEqual([]);
  expect(pathProblems.map((r) => r.path)).toEqual([]);
}

export async function logLeakSearch(rig: ChaosRig): Promise<void> {
  const { secrets, botTokens, channelTokens } = rig.secrets();
  const patterns = new Map<string, RegExp>([
    ['anything shaped like a JWT', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
    ['AccountKey=<value>', /AccountKey=(?!\[redacted\])[^;\s"\\]+/i],
    ['Bearer <credential>', /Bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{20,}/],
    ['client_secret=<value>', /client_secret=(?!\[redacted\])[^&\s"\\]+/i],
    ['SharedAccessSignature / sig=<value>', /(SharedAccessSignature|[?&]sig)=(?!\[redacted\])[^&;\s"\\]{10,}/i],
  ]);
  const hits = await rig.log.search(secrets, patterns);
  printTable('4c. Secrets in the logs of the whole suite', [
    ['log lines searched (app and stubs, every part)', rig.log.lines],
    ['bot tokens searched (every token the app sent to the stub)', botTokens],
    ['channel tokens searched (every token the suite minted, valid or not)', channelTokens],
    ['also searched', `the app password, the storage account key, ${patterns.size} secret shapes`],
    ['**lines with a secret**', hits.reduce((a, h) => a + h.lines, 0)],
    ...hits.map((h) => [`  ${h.name}`, `${h.lines} (e.g. ${h.example.slice(0, 160)})`] as const),
  ]);
  if (rig.connector.requests.length > 0) expect(botTokens).toBeGreaterThan(0);
  expect(channelTokens).toBeGreaterThan(0);
  expect(hits.map((h) => `${h.name}: ${h.lines} lines, e.g. ${h.example}`)).toEqual([]);
}
