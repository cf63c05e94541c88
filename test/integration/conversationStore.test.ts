import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseActivity, toCapturePlan, type CapturePlan } from '../../src/core/activity';
import { toTableKey } from '../../src/core/tableKeys';
import { TABLES } from '../../src/store/tables';
import { storesFor, useAzurite } from '../helpers/storage';

const storage = useAzurite();
const FIXTURES = path.resolve(__dirname, '../fixtures/activities');
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
const captureOf = (body: unknown) => {
  const plan = toCapturePlan(parseActivity(body));
  if (plan.kind !== 'capture') throw new Error(`expected a capture plan, got ${plan.reason}`);
  return plan as Extract<CapturePlan, { kind: 'capture' }>;
};
/** A fixture with its conversation (and user) ids made unique to one test. */
function unique(name: string, suffix: string): Record<string, unknown> {
  const body = fixture(name);
  const conversation = body.conversation as Record<string, string>;
  conversation.id = `${conversation.id}-${suffix}`;
  const from = body.from as Record<string, string> | undefined;
  if (from?.aadObjectId) from.aadObjectId = `${from.aadObjectId}-${suffix}`;
  return body;
}
const t0 = new Date('2026-11-20T10:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('conversation store against Azurite', () => {
  it("keeps each tenant's serviceUrl in a row of its own: a point read, and rows stored before it are found once", async () => {
    const s = storage();
    const { conversations } = storesFor(s);
    const tenantId = 'tenant-row-test';
    const body = unique('message.groupChat', 'tenant-row');
    (body.conversation as Record<string, string>).tenantId = tenantId;
    (body.channelData as Record<string, unknown>).tenant = { id: tenantId };
    body.serviceUrl = 'https://smba.trafficmanager.net/emea/';
    await conversations.capture(captureOf(body), t0);
    const table = s.table(TABLES.conversations);
    expect(await table.getEntity('%tenants', toTableKey(tenantId))).toMatchObject({
      serviceUrl: 'https://smba.trafficmanager.net/emea/',
    });
    expect(await conversations.findServiceUrlForTenant(tenantId)).toBe('https://smba.trafficmanager.net/emea/');

    // As if the reference had been stored by an older version: the row is rebuilt on first use.
    await table.deleteEntity('%tenants', toTableKey(tenantId));
    expect(await conversations.findServiceUrlForTenant(tenantId)).toBe('https://smba.trafficmanager.net/emea/');
    expect(await table.getEntity('%tenants', toTableKey(tenantId))).toMatchObject({
      serviceUrl: 'https://smba.trafficmanager.net/emea/',
    });
    expect(await conversations.findServiceUrlForTenant('tenant-never-seen')).toBeUndefined();
  });

  it("writes a tenant's row once per serviceUrl and instance, not for every new chat, and again after 10 minutes", async () => {
    const s = storage();
    const { conversations } = storesFor(s);
    const table = s.table(TABLES.conversations);
    const tenantId = 'tenant-row-memory';
    const emea = 'https://smba.trafficmanager.net/emea/';
    const amer = 'https://smba.trafficmanager.net/amer/';
    const MARKER = 'https://marker.invalid/';
    const tenantRow = async () => (await table.getEntity('%tenants', toTableKey(tenantId))).serviceUrl;
    const overwrite = () =>
      table.upsertEntity({ partitionKey: '%tenants', rowKey: toTableKey(tenantId), serviceUrl: MARKER }, 'Replace');
    const newChat = (suffix: string, serviceUrl: string) => {
      const body = unique('message.groupChat', `tenant-memory-${suffix}`);
      (body.conversation as Record<string, string>).tenantId = tenantId;
      (body.channelData as Record<string, unknown>).tenant = { id: tenantId };
      body.serviceUrl = serviceUrl;
      return captureOf(body);
    };

    await conversations.capture(newChat('a', emea), t0);
    expect(await tenantRow()).toBe(emea);
    // Another writer's value stands: this instance wrote emea a second ago and does not write it again.
    await overwrite();
    expect((await conversations.capture(newChat('b', emea), at(1_000))).outcome).toBe('created');
    expect(await tenantRow()).toBe(MARKER);
    // A serviceUrl this instance has not written is written at once.
    await conversations.capture(newChat('c', amer), at(2_000));
    expect(await tenantRow()).toBe(amer);
    // After 10 minutes the row is written again, even for a serviceUrl it wrote before.
    await overwrite();
    await conversations.capture(newChat('d', amer), at(2_000 + 9 * 60_000));
    expect(await tenantRow()).toBe(MARKER);
    await conversations.capture(newChat('e', amer), at(2_000 + 10 * 60_000));
    expect(await tenantRow()).toBe(amer);
  });

  it('captures every Teams fixture', async () => {
    const { conversations } = storesFor(storage());
    const names = [
      'message.personal',
      'message.groupChat',
      'message.channel.threadReply',
      'installationUpdate.add.channel',
      'installationUpdate.add.personal',
      'conversationUpdate.personal.membersAdded',
      'conversationUpdate.channel.botAdded',
    ];
    for (const name of names) await conversations.capture(captureOf(fixture(name)), t0);

    expect(await conversations.get('a:1xyzPersonalConversationIdForFixturesOnly0001')).toMatchObject({
      conversationType: 'personal',
      tenantId: '72f988bf-0000-4000-8000-00000000c0de',
      serviceUrl: 'https://smba.trafficmanager.net/amer/',
      botId: '28:00000000-0000-4000-8000-0000000000b0',
      userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
      userName: 'Brandon Martinez',
      installed: true,
      firstSeenAt: t0.toISOString(),
    });
    expect(await conversations.get('19:meeting_groupChatIdForFixturesOnly0001@thread.v2')).toMatchObject({
      conversationType: 'groupChat',
      locale: 'ja-JP',
    });
    expect(await conversations.get('19:opsChannelIdForFixturesOnly0002@thread.tacv2')).toMatchObject({
      conversationType: 'channel',
      channelName: 'Ops',
      teamName: 'Finance Ops',
    });
    expect(await conversations.get('19:generalChannelIdForFixturesOnly0001@thread.tacv2')).toMatchObject({
      channelName: 'General',
      installed: true,
    });
    // A thread is never stored as its own conversation.
    expect(
      await conversations.get('19:opsChannelIdForFixturesOnly0002@thread.tacv2;messageid=1763660000000'),
    ).toBeUndefined();
  });

  it('finds a personal chat by aadObjectId and tenant with a point lookup, and by aadObjectId alone', async () => {
    const { conversations } = storesFor(storage());
    const body = unique('message.personal', 'lookup');
    await conversations.capture(captureOf(body), t0);
    const aad = (body.from as Record<string, string>).aadObjectId!;
    const found = await conversations.findPersonalChat(aad, '72f988bf-0000-4000-8000-00000000c0de');
    expect(found).toMatchObject({
      kind: 'found',
      reference: { conversationId: 'a:1xyzPersonalConversationIdForFixturesOnly0001-lookup' },
    });
    expect(await conversations.findPersonalChat(aad)).toMatchObject({ kind: 'found' });
    expect(await conversations.findPersonalChat(aad, 'other-tenant')).toEqual({ kind: 'none', tenantIds: [] });

    // The same person in a second tenant makes a tenant-less lookup ambiguous.
    const other = unique('message.personal', 'lookup2');
    (other.from as Record<string, string>).aadObjectId = aad;
    (other.conversation as Record<string, string>).tenantId = 'second-tenant';
    await conversations.capture(captureOf(other), t0);
    expect(await conversations.findPersonalChat(aad)).toMatchObject({
      kind: 'ambiguous',
      tenantIds: expect.arrayContaining(['72f988bf-0000-4000-8000-00000000c0de', 'second-tenant']),
    });
  });

  it('does not rewrite an unchanged row for an identical repeat, and refreshes serviceUrl at once', async () => {
    const s = storage();
    const { conversations } = storesFor(s);
    const body = unique('message.personal', 'repeat');
    const id = (body.conversation as Record<string, string>).id!;
    expect((await conversations.capture(captureOf(body), t0)).outcome).toBe('created');
    const table = s.table(TABLES.conversations);
    const etag1 = (await table.getEntity(toTableKey(id), 'ref')).etag;
    expect((await conversations.capture(captureOf(body), at(60_000))).outcome).toBe('unchanged');
    expect((await table.getEntity(toTableKey(id), 'ref')).etag).toBe(etag1);

    const moved = { ...body, serviceUrl: 'https://smba.trafficmanager.net/emea/72f988bf-0000-4000-8000-00000000c0de/' };
    expect((await conversations.capture(captureOf(moved), at(120_000))).outcome).toBe('updated');
    expect((await conversations.get(id))?.serviceUrl).toBe(
      'https://smba.trafficmanager.net/emea/72f988bf-0000-4000-8000-00000000c0de/',
    );
  });

  it('uninstall keeps the reference, marked; reinstall marks it installed again', async () => {
    const { conversations } = storesFor(storage());
    const add = unique('installationUpdate.add.personal', 'inst');
    await conversations.capture(captureOf(add), t0);
    const id = (add.conversation as Record<string, string>).id!;
    await conversations.capture(captureOf({ ...add, action: 'remove' }), at(1000));
    expect(await conversations.get(id)).toMatchObject({
      installed: false,
      installedChangedAt: at(1000).toISOString(),
      serviceUrl: add.serviceUrl,
    });
    await conversations.capture(captureOf({ ...add, action: 'add-upgrade' }), at(2000));
    expect(await conversations.get(id)).toMatchObject({ installed: true, installedChangedAt: at(2000).toISOString() });
  });

  it('teamDeleted uninstalls every stored channel of the team; teamRestored reinstalls them', async () => {
    const { conversations } = storesFor(storage());
    const teamId = '19:teamForDeleteTest@thread.tacv2';
    const channelMessage = fixture('message.channel.threadReply');
    const channelData = channelMessage.channelData as Record<string, Record<string, string>>;
    channelData.team!.id = teamId;
    (channelMessage.conversation as Record<string, string>).id = '19:deleteTestOps@thread.tacv2;messageid=1';
    channelData.channel!.id = '19:deleteTestOps@thread.tacv2';
    await conversations.capture(captureOf(channelMessage), t0);

    const deleted = fixture('conversationUpdate.channel.teamDeleted');
    (deleted.conversation as Record<string, string>).id = teamId;
    (deleted.channelData as Record<string, Record<string, string>>).team!.id = teamId;
    const result = await conversations.capture(captureOf(deleted), at(1000));
    expect(result.teamUpdated).toBe(1);
    expect(await conversations.get('19:deleteTestOps@thread.tacv2')).toMatchObject({ installed: false });
    expect(await conversations.get(teamId)).toMatchObject({ installed: false });

    (deleted.channelData as Record<string, string>).eventType = 'teamRestored';
    await conversations.capture(captureOf(deleted), at(2000));
    expect(await conversations.get('19:deleteTestOps@thread.tacv2')).toMatchObject({ installed: true });
  });

  it('concurrent activities for one conversation lose nothing', async () => {
    const { conversations } = storesFor(storage());
    const base = unique('message.personal', 'race');
    const id = (base.conversation as Record<string, string>).id!;
    await conversations.capture(captureOf(base), t0);
    // Each activity carries a different change; a lost update would drop one of them.
    const { locale: _locale, ...noLocale } = base;
    const bot = { id: '28:00000000-0000-4000-8000-0000000000b0' };
    const user = {
      id: (base.from as Record<string, string>).id,
      aadObjectId: (base.from as Record<string, string>).aadObjectId,
    };
    await Promise.all([
      conversations.capture(captureOf({ ...base, from: user, recipient: bot, locale: 'fr-FR' }), at(1000)),
      conversations.capture(
        captureOf({ ...noLocale, from: user, recipient: { ...bot, name: 'Courier v2' } }),
        at(1000),
      ),
      conversations.capture(
        captureOf({ ...noLocale, from: { ...user, name: 'B. Martinez' }, recipient: bot }),
        at(1000),
      ),
    ]);
    expect(await conversations.get(id)).toMatchObject({
      locale: 'fr-FR',
      botName: 'Courier v2',
      userName: 'B. Martinez',
    });
  });

  it('round-trips conversation ids with characters keys and URLs treat specially', async () => {
    const { conversations } = storesFor(storage());
    for (const id of ['a:x/y\\z#q?r%s;t', '19:ünïcødé✓@thread.v2', 'a:%2F already encoded']) {
      const body = fixture('message.groupChat');
      (body.conversation as Record<string, string>).id = id;
      await conversations.capture(captureOf(body), t0);
      expect((await conversations.get(id))?.conversationId).toBe(id);
    }
  });

  it('marks a reference undeliverable and finds a tenant serviceUrl for new chats', async () => {
    const { conversations } = storesFor(storage());
    const body = unique('message.personal', 'undeliverable');
    const id = (body.conversation as Record<string, string>).id!;
    await conversations.capture(captureOf(body), t0);
    await conversations.markUndeliverable(id, 'ConversationBlockedByUser: blocked', at(1000));
    expect(await conversations.get(id)).toMatchObject({
      undeliverableReason: 'ConversationBlockedByUser: blocked',
      undeliverableAt: at(1000).toISOString(),
    });
    // The user writes again: the mark is cleared.
    await conversations.capture(captureOf(body), at(2000));
    expect((await conversations.get(id))?.undeliverableReason).toBeUndefined();
    expect(await conversations.findServiceUrlForTenant('72f988bf-0000-4000-8000-00000000c0de')).toMatch(
      /^https:\/\/smba\.trafficmanager\.net\//,
    );
    expect(await conversations.findServiceUrlForTenant('unknown-tenant')).toBeUndefined();
  });
});
