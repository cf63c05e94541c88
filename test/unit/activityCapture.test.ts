/**
 * What one activity becomes, field by field: the parsed activity, the capture plan (reference,
 * team, install state) or the reason it is ignored, and the 400 a malformed one gets. One variant
 * of the Teams fixtures per rule of src/core/activity.ts; the answers are pinned word for word.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isThreadConversationId,
  MAX_ID_LENGTH,
  MAX_LOCALE_LENGTH,
  MAX_NAME_LENGTH,
  parseActivity,
  toCapturePlan,
  toChannelConversationId,
} from '../../src/core/activity';
import { BadRequestError } from '../../src/errors';

const FIXTURES = path.resolve(__dirname, '../fixtures/activities');
type Json = Record<string, unknown>;
const fixture = (name: string): Json => JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Json;
const BOT = '28:00000000-0000-4000-8000-0000000000b0';

/** The plan for a body, or the 400's message. */
function captured(body: unknown): unknown {
  try {
    return toCapturePlan(parseActivity(body));
  } catch (err) {
    if (err instanceof BadRequestError) return `400 ${err.message}`;
    throw err;
  }
}
const patch = (name: string, change: (body: Json) => void): Json => {
  const body = fixture(name);
  change(body);
  return body;
};
const personal = (change: (body: Json) => void) => patch('message.personal', change);
const conv = (body: Json) => body.conversation as Json;
const from = (body: Json) => body.from as Json;
const channelData = (body: Json) => body.channelData as Json;

describe('parseActivity and toCapturePlan, rule by rule', () => {
  it('refuses a malformed activity with a 400 naming the field', () => {
    const refused = Object.fromEntries(
      Object.entries<unknown>({
        'not an object': 'x',
        'an array': [fixture('message.personal')],
        'no type': personal((b) => delete b.type),
        'an empty type': personal((b) => (b.type = '')),
        'no serviceUrl': personal((b) => delete b.serviceUrl),
        'a serviceUrl that is not a string': personal((b) => (b.serviceUrl = 5)),
        'no conversation': personal((b) => delete b.conversation),
        'a conversation that is a string': personal((b) => (b.conversation = 'a:1')),
        'a conversation without id': personal((b) => delete conv(b).id),
        'a conversation id too long': personal((b) => (conv(b).id = 'a'.repeat(MAX_ID_LENGTH + 1))),
        'a lone surrogate in the conversation id': personal((b) => (conv(b).id = 'a:\ud800x')),
        'a lone low surrogate in the tenant': personal((b) => (conv(b).tenantId = 't\udc00')),
        'a lone surrogate in from.aadObjectId': personal((b) => (from(b).aadObjectId = '\ud83d')),
        'an aadObjectId too long for a key': personal((b) => (from(b).aadObjectId = '/'.repeat(400))),
        'a recipient id too long': personal((b) => ((b.recipient as Json).id = 'r'.repeat(MAX_ID_LENGTH + 1))),
        'a member id with a lone surrogate': personal((b) => (b.membersAdded = [{ id: '29:ok' }, { id: 'x\udbff' }])),
        'a removed member id too long': personal((b) => (b.membersRemoved = [{ id: 'm'.repeat(MAX_ID_LENGTH + 1) }])),
        'a team id with a lone surrogate': patch(
          'conversationUpdate.channel.teamDeleted',
          (b) => ((channelData(b).team as Json).id = '\udc00'),
        ),
        'a team aadGroupId too long': patch(
          'conversationUpdate.channel.teamDeleted',
          (b) => ((channelData(b).team as Json).aadGroupId = 'g'.repeat(MAX_ID_LENGTH + 1)),
        ),
        'a channel id too long': patch(
          'conversationUpdate.channel.teamDeleted',
          (b) => (channelData(b).channel = { id: 'c'.repeat(MAX_ID_LENGTH + 1) }),
        ),
        'a channelData tenant id with a lone surrogate': personal((b) => (channelData(b).tenant = { id: '\ud800' })),
        'a serviceUrl too long': personal((b) => (b.serviceUrl = `https://x/${'p'.repeat(MAX_ID_LENGTH)}`)),
      }).map(([label, body]) => [label, captured(body)]),
    );
    expect(refused).toMatchInlineSnapshot(`
      {
        "a channel id too long": "400 "channelData.channel.id" is too long.",
        "a channelData tenant id with a lone surrogate": "400 "channelData.tenant.id" is not well-formed Unicode.",
        "a conversation id too long": "400 "conversation.id" is too long.",
        "a conversation that is a string": "400 The activity has no "conversation.id".",
        "a conversation without id": "400 The activity has no "conversation.id".",
        "a lone low surrogate in the tenant": "400 "conversation.tenantId" is not well-formed Unicode.",
        "a lone surrogate in from.aadObjectId": "400 "from.aadObjectId" is not well-formed Unicode.",
        "a lone surrogate in the conversation id": "400 "conversation.id" is not well-formed Unicode.",
        "a member id with a lone surrogate": "400 "membersAdded[1].id" is not well-formed Unicode.",
        "a recipient id too long": "400 "recipient.id" is too long.",
        "a removed member id too long": "400 "membersRemoved[0].id" is too long.",
        "a serviceUrl that is not a string": "400 The activity has no "serviceUrl".",
        "a serviceUrl too long": "400 "serviceUrl" is too long.",
        "a team aadGroupId too long": "400 "channelData.team.aadGroupId" is too long.",
        "a team id with a lone surrogate": "400 "channelData.team.id" is not well-formed Unicode.",
        "an aadObjectId too long for a key": "400 "from.aadObjectId" is too long.",
        "an array": "400 The activity must be a JSON object.",
        "an empty type": "400 The activity has no "type".",
        "no conversation": "400 The activity has no "conversation.id".",
        "no serviceUrl": "400 The activity has no "serviceUrl".",
        "no type": "400 The activity has no "type".",
        "not an object": "400 The activity must be a JSON object.",
      }
    `);
  });

  it('ignores what carries no reference, saying why', () => {
    const ignored = Object.fromEntries(
      Object.entries<Json>({
        'another channel': personal((b) => (b.channelId = 'webchat')),
        'no channel': personal((b) => delete b.channelId),
        'a typing activity': personal((b) => (b.type = 'typing')),
        'an unknown conversation type': personal((b) => (conv(b).conversationType = 'meeting')),
        'no tenant anywhere': personal((b) => {
          delete conv(b).tenantId;
          delete channelData(b).tenant;
        }),
        'no recipient': personal((b) => delete b.recipient),
        'a recipient without id': personal((b) => (b.recipient = { name: 'bot' })),
      }).map(([label, body]) => [label, captured(body)]),
    );
    expect(ignored).toMatchInlineSnapshot(`
      {
        "a recipient without id": {
          "kind": "ignore",
          "reason": "no recipient (bot) account",
        },
        "a typing activity": {
          "kind": "ignore",
          "reason": "activity type "typing" carries no reference",
        },
        "an unknown conversation type": {
          "kind": "ignore",
          "reason": "unknown conversationType "meeting"",
        },
        "another channel": {
          "kind": "ignore",
          "reason": "channel "webchat" is not msteams",
        },
        "no channel": {
          "kind": "ignore",
          "reason": "channel "(none)" is not msteams",
        },
        "no recipient": {
          "kind": "ignore",
          "reason": "no recipient (bot) account",
        },
        "no tenant anywhere": {
          "kind": "ignore",
          "reason": "no tenant id in conversation.tenantId or channelData.tenant.id",
        },
      }
    `);
  });

  it('captures each field it may, and only those', () => {
    const plans = Object.fromEntries(
      Object.entries<Json>({
        'a personal message': fixture('message.personal'),
        'a group chat message': fixture('message.groupChat'),
        'a thread reply in a channel': fixture('message.channel.threadReply'),
        'a channel install': fixture('installationUpdate.add.channel'),
        'a personal uninstall': fixture('installationUpdate.remove.personal'),
        'the bot added to a team': fixture('conversationUpdate.channel.botAdded'),
        'a team deleted': fixture('conversationUpdate.channel.teamDeleted'),
        'members added to a personal chat': fixture('conversationUpdate.personal.membersAdded'),
        'no conversation type: a team in channelData': patch(
          'message.channel.threadReply',
          (b) => delete conv(b).conversationType,
        ),
        'no conversation type, isGroup': patch('message.groupChat', (b) => delete conv(b).conversationType),
        'no conversation type, not a group': personal((b) => {
          delete conv(b).conversationType;
          delete conv(b).isGroup;
        }),
        'isGroup that is not true': patch('message.groupChat', (b) => {
          delete conv(b).conversationType;
          conv(b).isGroup = 'true';
        }),
        'the tenant only in channelData': personal((b) => delete conv(b).tenantId),
        'the tenant in both, conversation first': personal((b) => (channelData(b).tenant = { id: 'other-tenant' })),
        'a bot without a name, no locale': personal((b) => {
          delete (b.recipient as Json).name;
          delete b.locale;
        }),
        'a locale that is no BCP 47 tag': personal((b) => (b.locale = 'en US')),
        'a locale of 64 characters': personal((b) => (b.locale = `a${'-b1'.repeat(21)}`)),
        'a locale of 65 characters': personal((b) => (b.locale = `ab${'-b1'.repeat(21)}`)),
        'a locale with an empty subtag': personal((b) => (b.locale = 'en--US')),
        'a locale ending in a dash': personal((b) => (b.locale = 'en-')),
        'a locale with an underscore': personal((b) => (b.locale = 'en_GB')),
        'a user name over 256 characters': personal((b) => (from(b).name = 'n'.repeat(300))),
        'a user name cut inside a surrogate pair': personal(
          (b) => (from(b).name = `${'n'.repeat(MAX_NAME_LENGTH - 1)}😀tail`),
        ),
        'a user name ending in a surrogate pair at the limit': personal(
          (b) => (from(b).name = `${'n'.repeat(MAX_NAME_LENGTH - 2)}😀`),
        ),
        'a user name with a lone surrogate': personal((b) => (from(b).name = 'A\ud800B')),
        'an empty user name': personal((b) => (from(b).name = '')),
        'a user without aadObjectId': personal((b) => delete from(b).aadObjectId),
        'a message from the bot itself': personal((b) => (from(b).id = BOT)),
        'members added, not the bot': patch('conversationUpdate.personal.membersAdded', (b) => {
          b.from = { id: BOT };
          b.membersAdded = [{ id: BOT }, { id: '29:added', aadObjectId: 'aad-added' }, 'junk', { name: 'no id' }];
        }),
        'members removed, not the bot': patch('conversationUpdate.personal.membersAdded', (b) => {
          b.from = { id: BOT };
          b.membersAdded = [];
          b.membersRemoved = [{ id: '29:removed', aadObjectId: 'aad-removed' }];
        }),
        'members not an array': patch('conversationUpdate.personal.membersAdded', (b) => {
          b.membersAdded = { id: BOT };
        }),
        'the bot removed from a team': patch('conversationUpdate.channel.botAdded', (b) => {
          b.membersRemoved = b.membersAdded;
          b.membersAdded = [];
        }),
        'remove-upgrade': patch('installationUpdate.add.channel', (b) => (b.action = 'remove-upgrade')),
        'add-upgrade in a team': patch('installationUpdate.add.channel', (b) => (b.action = 'add-upgrade')),
        'an unknown install action': patch('installationUpdate.add.channel', (b) => (b.action = 'refresh')),
        teamRestored: patch(
          'conversationUpdate.channel.teamDeleted',
          (b) => (channelData(b).eventType = 'teamRestored'),
        ),
        teamRenamed: patch('conversationUpdate.channel.teamDeleted', (b) => (channelData(b).eventType = 'teamRenamed')),
        'a team without aadGroupId or name': patch(
          'conversationUpdate.channel.teamDeleted',
          (b) => (channelData(b).team = { id: (channelData(b).team as Json).id }),
        ),
        'a team that is not an object': patch('message.channel.threadReply', (b) => (channelData(b).team = 'team')),
        'a team without id': patch('message.channel.threadReply', (b) => (channelData(b).team = { name: 'T' })),
      }).map(([label, body]) => [label, captured(body)]),
    );
    expect(plans).toMatchInlineSnapshot(`
      {
        "a bot without a name, no locale": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a channel install": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "en-GB",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": true,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "a group chat message": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "19:meeting_groupChatIdForFixturesOnly0001@thread.v2",
            "conversationType": "groupChat",
            "installed": true,
            "locale": "ja-JP",
            "serviceUrl": "https://smba.trafficmanager.net/apac/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "a locale ending in a dash": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a locale of 64 characters": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "a-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1-b1",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a locale of 65 characters": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a locale that is no BCP 47 tag": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a locale with an empty subtag": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a locale with an underscore": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en_GB",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a message from the bot itself": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "a personal message": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "a personal uninstall": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": false,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
          },
        },
        "a team deleted": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": false,
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": false,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "a team that is not an object": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "channelName": "Ops",
            "conversationId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "de-DE",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "a team without aadGroupId or name": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": false,
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": false,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "a team without id": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "channelName": "Ops",
            "conversationId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "de-DE",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "a thread reply in a channel": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "channelName": "Ops",
            "conversationId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "de-DE",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "a user name cut inside a surrogate pair": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
          },
        },
        "a user name ending in a surrogate pair at the limit": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn😀",
          },
        },
        "a user name over 256 characters": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
          },
        },
        "a user name with a lone surrogate": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "A�B",
          },
        },
        "a user without aadObjectId": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "add-upgrade in a team": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "en-GB",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": true,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "an empty user name": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
          },
        },
        "an unknown install action": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "locale": "en-GB",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "isGroup that is not true": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "19:meeting_groupChatIdForFixturesOnly0001@thread.v2",
            "conversationType": "personal",
            "installed": true,
            "locale": "ja-JP",
            "serviceUrl": "https://smba.trafficmanager.net/apac/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "9c7d5e3f-1a2b-4c3d-8e4f-0000000000a3",
            "userId": "29:1zThirdUserIdForFixturesOnly0003",
            "userName": "Aiko Tanaka",
          },
        },
        "members added to a personal chat": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
          },
        },
        "members added, not the bot": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "aad-added",
            "userId": "29:added",
          },
        },
        "members not an array": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
          },
        },
        "members removed, not the bot": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "aad-removed",
            "userId": "29:removed",
          },
        },
        "no conversation type, isGroup": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "19:meeting_groupChatIdForFixturesOnly0001@thread.v2",
            "conversationType": "groupChat",
            "installed": true,
            "locale": "ja-JP",
            "serviceUrl": "https://smba.trafficmanager.net/apac/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "no conversation type, not a group": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "no conversation type: a team in channelData": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "channelName": "Ops",
            "conversationId": "19:opsChannelIdForFixturesOnly0002@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "locale": "de-DE",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "remove-upgrade": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": false,
            "locale": "en-GB",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": false,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "teamRenamed": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
        },
        "teamRestored": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": true,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "the bot added to a team": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": true,
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": true,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "the bot removed from a team": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "channelId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "channelName": "General",
            "conversationId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "conversationType": "channel",
            "installed": false,
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "teamAadGroupId": "c5d3e1f2-7a8b-4c9d-8e0f-0000000000f1",
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
            "teamName": "Finance Ops",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
          },
          "team": {
            "installed": false,
            "teamId": "19:generalChannelIdForFixturesOnly0001@thread.tacv2",
          },
        },
        "the tenant in both, conversation first": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
        "the tenant only in channelData": {
          "kind": "capture",
          "reference": {
            "botId": "28:00000000-0000-4000-8000-0000000000b0",
            "botName": "Courier",
            "conversationId": "a:1xyzPersonalConversationIdForFixturesOnly0001",
            "conversationType": "personal",
            "installed": true,
            "locale": "en-US",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "tenantId": "72f988bf-0000-4000-8000-00000000c0de",
            "userAadObjectId": "6f2c1a4e-1b7d-4c38-9d5e-0000000000a1",
            "userId": "29:1mZd6lzAAAAexampleUserIdForFixturesOnly0001",
            "userName": "Brandon Martinez",
          },
        },
      }
    `);
  });

  it('reads the fields a request carries as it came', () => {
    const body = fixture('message.personal');
    expect(parseActivity({ ...body, action: 'add', channelId: 'msteams', id: 'act-1' })).toMatchObject({
      action: 'add',
      channelId: 'msteams',
      id: 'act-1',
    });
    const bare = parseActivity({ type: 'message', serviceUrl: 'https://x/', conversation: { id: 'a:1' } });
    expect(bare).toMatchInlineSnapshot(`
      {
        "action": undefined,
        "channelData": {
          "channel": undefined,
          "eventType": undefined,
          "team": undefined,
          "tenantId": undefined,
        },
        "channelId": "",
        "conversation": {
          "conversationType": undefined,
          "id": "a:1",
          "isGroup": false,
          "name": undefined,
          "tenantId": undefined,
        },
        "from": undefined,
        "id": undefined,
        "locale": undefined,
        "membersAdded": [],
        "membersRemoved": [],
        "recipient": undefined,
        "serviceUrl": "https://x/",
        "type": "message",
      }
    `);
    expect(MAX_LOCALE_LENGTH).toBe(64);
    expect(MAX_NAME_LENGTH).toBe(256);
  });
});

describe('thread ids', () => {
  it('a thread is a channel id with ;messageid=<root>', () => {
    expect(toChannelConversationId('19:c@thread.tacv2;messageid=42')).toBe('19:c@thread.tacv2');
    expect(toChannelConversationId('19:c@thread.tacv2;messageid=42;messageid=43')).toBe(
      '19:c@thread.tacv2;messageid=42',
    );
    expect(toChannelConversationId('19:c@thread.tacv2;messageid=42;x')).toBe('19:c@thread.tacv2;messageid=42;x');
    expect(isThreadConversationId('19:c@thread.tacv2;messageid=42')).toBe(true);
    expect(isThreadConversationId('19:c@thread.tacv2')).toBe(false);
    expect(isThreadConversationId('19:c@thread.tacv2;messageid=42;x')).toBe(false);
  });
});
