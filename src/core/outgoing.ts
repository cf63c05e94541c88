/**
 * The activity teams-courier POSTs for a job. Pure. Shapes follow the connector's `Activity`
 * definition (../shared/reference/ConnectorAPI.swagger.json) and bot-connector.md §5.
 */
import type { MessageContent } from './job';

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
/** Teams refuses payloads over 100 KB, counted as UTF-16 (bot-connector.md §5). */
export const MAX_ACTIVITY_UTF16_BYTES = 100 * 1024;

export interface OutgoingContext {
  readonly botId: string;
  readonly botName?: string;
  readonly conversationId: string;
  readonly tenantId?: string;
}

function escapeXml(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/**
 * Teams ignores a mention entity whose `text` is not part of the message text, so each mention
 * gets an `<at>Name</at>` tag: kept where the author wrote one, prepended otherwise.
 */
function withMentions(text: string, job: MessageContent): { text: string; entities: Record<string, unknown>[] } {
  let out = text;
  const entities: Record<string, unknown>[] = [];
  const prefix: string[] = [];
  for (const mention of job.mentions) {
    const tag = `<at>${escapeXml(mention.name)}</at>`;
    if (!out.includes(tag)) prefix.push(tag);
    entities.push({ type: 'mention', mentioned: { id: mention.id, name: mention.name }, text: tag });
  }
  if (prefix.length > 0) out = `${prefix.join(' ')} ${out}`;
  return { text: out, entities };
}

export function toOutgoingActivity(job: MessageContent, context: OutgoingContext): Record<string, unknown> {
  const activity: Record<string, unknown> = {
    type: 'message',
    from: { id: context.botId, ...(context.botName === undefined ? {} : { name: context.botName }) },
    conversation: {
      id: context.conversationId,
      ...(context.tenantId === undefined ? {} : { tenantId: context.tenantId }),
    },
  };
  if (job.text !== undefined) {
    const { text, entities } = withMentions(job.text, job);
    activity.text = text;
    activity.textFormat = job.textFormat;
    if (entities.length > 0) activity.entities = entities;
  }
  if (job.adaptiveCard !== undefined) {
    activity.attachments = [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: job.adaptiveCard }];
  }
  if (job.summary !== undefined) activity.summary = job.summary;
  // Raw fields last: anything the job format does not cover (channelData.notification, importance...).
  if (job.activity !== undefined) {
    for (const [key, value] of Object.entries(job.activity)) {
      if (key === 'conversation' || key === 'from') continue; // routing stays ours
      activity[key] = value;
    }
  }
  return activity;
}

/** Approximate size as Teams counts it (UTF-16 of the JSON payload). */
export function utf16Size(activity: unknown): number {
  return JSON.stringify(activity).length * 2;
}
