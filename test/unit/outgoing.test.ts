import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJob as parseAnyJob, type MessageJob } from '../../src/core/job';

const parseJob = (body: unknown, id: string) => parseAnyJob(body, id) as MessageJob;
import { ADAPTIVE_CARD_CONTENT_TYPE, toOutgoingActivity, utf16Size } from '../../src/core/outgoing';

const context = { botId: '28:bot', botName: 'Courier', conversationId: 'a:1', tenantId: 't1' };
const swagger = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/ConnectorAPI.swagger.json'), 'utf8')) as {
  definitions: Record<string, { properties: Record<string, unknown> }>;
};

describe('toOutgoingActivity', () => {
  it('builds a markdown message from the bot to the conversation', () => {
    expect(
      toOutgoingActivity(parseJob({ to: { conversationId: 'a:1' }, text: 'Invoice **4711**' }, 'j'), context),
    ).toEqual({
      type: 'message',
      from: { id: '28:bot', name: 'Courier' },
      conversation: { id: 'a:1', tenantId: 't1' },
      text: 'Invoice **4711**',
      textFormat: 'markdown',
    });
  });

  it('sends an Adaptive Card as an attachment of the adaptive content type', () => {
    const card = { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'Hi' }] };
    const activity = toOutgoingActivity(
      parseJob({ to: { conversationId: 'a:1' }, adaptiveCard: card, summary: 'Hi' }, 'j'),
      context,
    );
    expect(activity.attachments).toEqual([{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: card }]);
    expect(activity.summary).toBe('Hi');
    expect(activity.text).toBeUndefined();
  });

  it('turns mentions into entities whose text appears in the message text', () => {
    const written = toOutgoingActivity(
      parseJob(
        { to: { conversationId: 'a:1' }, text: 'Ping <at>Ana</at>', mentions: [{ id: '29:ana', name: 'Ana' }] },
        'j',
      ),
      context,
    );
    expect(written.text).toBe('Ping <at>Ana</at>');
    expect(written.entities).toEqual([
      { type: 'mention', mentioned: { id: '29:ana', name: 'Ana' }, text: '<at>Ana</at>' },
    ]);
    const added = toOutgoingActivity(
      parseJob({ to: { conversationId: 'a:1' }, text: 'Deploy done', mentions: [{ id: '29:b', name: 'B & C' }] }, 'j'),
      context,
    );
    expect(added.text).toBe('<at>B &amp; C</at> Deploy done');
    const entities = added.entities as { text: string }[];
    expect(added.text as string).toContain(entities[0]!.text);
  });

  it('merges raw activity fields last', () => {
    const activity = toOutgoingActivity(
      parseJob(
        {
          to: { conversationId: 'a:1' },
          text: 'x',
          activity: { textFormat: 'plain', channelData: { notification: { alert: true } } },
        },
        'j',
      ),
      context,
    );
    expect(activity).toMatchObject({
      textFormat: 'plain',
      channelData: { notification: { alert: true } },
      conversation: { id: 'a:1' },
      from: { id: context.botId },
    });
  });

  it.each([
    ['conversation', { conversation: { id: 'evil' } }],
    ['from', { from: { id: '28:other-bot' } }],
    ['recipient', { recipient: { id: '29:someone' } }],
    [
      'channelData.onBehalfOf',
      { channelData: { onBehalfOf: [{ itemId: 0, mentionType: 'person', mri: '29:boss', displayName: 'Boss' }] } },
    ],
    ['entities[0]', { entities: [{ type: 'clientInfo', locale: 'en' }] }],
    ['serviceUrl', { serviceUrl: 'https://evil.example/' }],
  ])("refuses activity.%s: routing and identity are never the job's to set", (path, fields) => {
    expect(() => parseJob({ to: { conversationId: 'a:1' }, text: 'x', activity: fields }, 'j')).toThrow(
      `activity.${path}`,
    );
  });

  it('uses only fields the Bot Connector Activity schema defines', () => {
    const activity = toOutgoingActivity(
      parseJob(
        {
          to: { conversationId: 'a:1' },
          text: 'x <at>A</at>',
          summary: 's',
          adaptiveCard: { type: 'AdaptiveCard' },
          mentions: [{ id: '29:a', name: 'A' }],
        },
        'j',
      ),
      context,
    );
    const allowed = Object.keys(swagger.definitions.Activity!.properties);
    for (const key of Object.keys(activity)) expect(allowed).toContain(key);
  });

  it('measures size as UTF-16, as Teams does', () => {
    expect(utf16Size({ a: 'é' })).toBe(JSON.stringify({ a: 'é' }).length * 2);
  });
});
