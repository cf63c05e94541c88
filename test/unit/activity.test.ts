import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseActivity, toCapturePlan, toChannelConversationId } from '../../src/core/activity';
import { BadRequestError } from '../../src/errors';

const FIXTURES = path.resolve(__dirname, '../fixtures/activities');
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
const plan = (name: string) => toCapturePlan(parseActivity(fixture(name)));

const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
const BOT = '28:00000000-0000-4000-8000-0000000000b0';
const GENERAL = '19:generalChannelIdForFixturesOnly0001@thread.tacv2';
const OPS = '19:opsChannelIdForFixturesOnly0002@thread.tacv2';
const PERSONAL = 'a:1xyzPersonalConversationIdForFixturesOnly0001';

describe('parseActivity', () => {
  it.each([
    [null, 'JSON object'],
    [[], 'JSON object'],
    ['text', 'JSON object'],
    [{}, '"type"'],
    [{ type: 'message' }, '"serviceUrl"'],
    [{ type: 'message', serviceUrl: 'https://x/' }, '"conversation.id"'],
    [{ type: 'message', serviceUrl: 'https://x/', conversation: { id: '' } }, '"conversation.id"'],
    [
      { type: 'message', serviceUrl: 'https://x/', conversation: { id: 'x'.repeat(600) } },
      '"conversation.id" is too long',
    ],
  ])('rejects %j naming the problem', (body, message) => {
    expect(() => parseActivity(body)).toThrow(BadRequestError);
    expect(() => parseActivity(body)).toThrow(message);
  });

  it('refuses ids that are not well-formed or too long, naming the field; cuts long names', () => {
    const base = { type: 'message', serviceUrl: 'https://s/', conversation: { id: 'a:1' } };
    expect(() => parseActivity({ ...base, from: { id: '29:u', aadObjectId: 'x\uD800' } })).toThrow(
      '"from.aadObjectId" is not well-formed Unicode.',
    );
    expect(() => parseActivity({ ...base, serviceUrl: `https://s/${'x'.repeat(2000)}` })).toThrow(
      '"serviceUrl" is too long.',
    );
    const activity = parseActivity({
      ...base,
      from: { id: '29:u', name: `${'n'.repeat(300)}\uD800` },
      locale: 'x'.repeat(100),
    });
    expect(activity.from?.name).toHaveLength(256);
    expect(activity.locale).toBeUndefined();
  });

  it('ignores fields it does not know, and does not trip on __proto__ keys', () => {
    const body = JSON.parse(
      '{"type":"message","serviceUrl":"https://s/","conversation":{"id":"a:1","__proto__":{"polluted":1}},"__proto__":{"x":1},"somethingNew":[1,2]}',
    );
    const activity = parseActivity(body);
    expect(activity.conversation.id).toBe('a:1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('toCapturePlan over the Teams fixtures', () => {
  it('message in a personal chat: the user, tenant, serviceUrl and locale', () => {
    expect(plan('message.personal')).toEqual({
      kind: 'capture',
      reference: {
        conversationId: PERSONAL,
        conversationType: 'personal',
        tenantId: TENANT,
        serviceUrl: 'https://smba.trafficmanager.net/amer/',
        botId: BOT,
        botName: 'Courier',
        userId: '29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001',
        userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
        userName: 'Brandon Martinez',
        locale: 'en-US',
        installed: true,
      },
    });
  });

  it('message in a group chat: no user on the reference', () => {
    const p = plan('message.groupChat');
    expect(p).toMatchObject({
      kind: 'capture',
      reference: {
        conversationId: '19:meeting_groupChatIdForFixturesOnly0001@thread.v2',
        conversationType: 'groupChat',
        serviceUrl: 'https://smba.trafficmanager.net/apac/',
        locale: 'ja-JP',
        installed: true,
      },
    });
    expect(p.kind === 'capture' && p.reference.userId).toBeUndefined();
  });

  it('a channel thread reply is recorded against its channel, with team and channel names', () => {
    expect(plan('message.channel.threadReply')).toEqual({
      kind: 'capture',
      reference: {
        conversationId: OPS,
        conversationType: 'channel',
        tenantId: TENANT,
        serviceUrl: 'https://smba.trafficmanager.net/emea/',
        botId: BOT,
        botName: 'Courier',
        teamId: GENERAL,
        teamName: 'Finance Ops',
        teamAadGroupId: 'c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1',
        channelId: OPS,
        channelName: 'Ops',
        locale: 'de-DE',
        installed: true,
      },
    });
  });

  it('conversationUpdate adding the bot to a personal chat marks it installed with the user', () => {
    expect(plan('conversationUpdate.personal.membersAdded')).toMatchObject({
      kind: 'capture',
      reference: { conversationId: PERSONAL, installed: true, userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1' },
    });
  });

  it('the bot added to a team installs the General channel, team-wide', () => {
    expect(plan('conversationUpdate.channel.botAdded')).toMatchObject({
      kind: 'capture',
      reference: {
        conversationId: GENERAL,
        channelId: GENERAL,
        channelName: 'General',
        teamName: 'Finance Ops',
        installed: true,
      },
      team: { teamId: GENERAL, installed: true },
    });
  });

  it('teamDeleted uninstalls the whole team', () => {
    expect(plan('conversationUpdate.channel.teamDeleted')).toMatchObject({
      kind: 'capture',
      reference: { conversationId: GENERAL, installed: false },
      team: { teamId: GENERAL, installed: false },
    });
  });

  it('teamRestored installs it again', () => {
    const body = fixture('conversationUpdate.channel.teamDeleted');
    (body.channelData as Record<string, unknown>).eventType = 'teamRestored';
    expect(toCapturePlan(parseActivity(body))).toMatchObject({
      reference: { installed: true },
      team: { installed: true },
    });
  });

  it('installationUpdate add (channel, personal) and remove (personal)', () => {
    expect(plan('installationUpdate.add.channel')).toMatchObject({
      reference: { conversationId: GENERAL, installed: true, locale: 'en-GB' },
      team: { teamId: GENERAL, installed: true },
    });
    expect(plan('installationUpdate.add.personal')).toMatchObject({
      reference: { conversationType: 'personal', installed: true },
    });
    expect(plan('installationUpdate.remove.personal')).toMatchObject({
      reference: {
        conversationId: PERSONAL,
        installed: false,
        userAadObjectId: '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1',
      },
    });
  });

  it.each(['add-upgrade', 'remove-upgrade'])('installationUpdate %s counts like its base action', (action) => {
    const body = { ...fixture('installationUpdate.add.personal'), action };
    expect(toCapturePlan(parseActivity(body))).toMatchObject({ reference: { installed: action === 'add-upgrade' } });
  });

  it('the bot in membersRemoved uninstalls', () => {
    const body = {
      ...fixture('conversationUpdate.personal.membersAdded'),
      membersAdded: [],
      membersRemoved: [{ id: BOT }],
    };
    expect(toCapturePlan(parseActivity(body))).toMatchObject({ reference: { installed: false } });
  });

  it('another member joining says nothing about installation', () => {
    const body = { ...fixture('message.groupChat'), type: 'conversationUpdate', membersAdded: [{ id: '29:someone' }] };
    const p = toCapturePlan(parseActivity(body));
    // Captured (the conversation is refreshed), with no opinion on the install state.
    expect(p.kind).toBe('capture');
    if (p.kind !== 'capture') return;
    expect(p.reference).toMatchObject({
      conversationId: '19:meeting_groupChatIdForFixturesOnly0001@thread.v2',
      conversationType: 'groupChat',
    });
    expect(p.reference).not.toHaveProperty('installed');
  });

  it('channelCreated and channelDeleted describe the channel in channelData', () => {
    const body = fixture('conversationUpdate.channel.teamDeleted');
    const channelData = body.channelData as Record<string, unknown>;
    channelData.eventType = 'channelCreated';
    channelData.channel = { id: OPS, name: 'Ops' };
    expect(toCapturePlan(parseActivity(body))).toMatchObject({
      reference: { conversationId: OPS, channelName: 'Ops', installed: true },
    });
    channelData.eventType = 'channelDeleted';
    const deleted = toCapturePlan(parseActivity(body));
    expect(deleted).toMatchObject({ reference: { conversationId: OPS, installed: false } });
    expect(deleted.kind === 'capture' && deleted.team).toBeUndefined();
  });

  it.each([
    ['typing', { type: 'typing' }],
    ['messageReaction', { type: 'messageReaction' }],
    ['invoke', { type: 'invoke' }],
    ['another channel', { channelId: 'webchat' }],
  ])('ignores %s', (_label, patch) => {
    expect(toCapturePlan(parseActivity({ ...fixture('message.personal'), ...patch })).kind).toBe('ignore');
  });

  it('takes the tenant from channelData when conversation.tenantId is absent', () => {
    const body = fixture('message.personal');
    delete (body.conversation as Record<string, unknown>).tenantId;
    expect(toCapturePlan(parseActivity(body))).toMatchObject({ reference: { tenantId: TENANT } });
  });

  it('strips only a trailing ;messageid= part', () => {
    expect(toChannelConversationId('19:a@thread.tacv2;messageid=42')).toBe('19:a@thread.tacv2');
    expect(toChannelConversationId('a:1')).toBe('a:1');
  });
});
