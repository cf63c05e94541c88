/** What a message, update or broadcast job says: text, card, summary, mentions, activity fields. */
import type { Problem } from '../../errors';
import { isObject, type Json } from '../json';
import { parseActivityFields } from './activityFields';
import { checkString } from './fields';
import { TEXT_FORMATS, type Mention, type MessageContent, type TextFormat } from './types';

/** The job fields parseContent reads. */
export const CONTENT_FIELDS = ['text', 'textFormat', 'adaptiveCard', 'summary', 'mentions', 'activity'] as const;

/** A job's content. It needs something to show: text, a card, or activity text or attachments. */
export function parseContent(body: Json, problems: Problem[]): MessageContent {
  const text = checkString(body, 'text', 'text', problems);
  let textFormat: TextFormat = 'markdown';
  if (body.textFormat !== undefined) {
    if (typeof body.textFormat === 'string' && (TEXT_FORMATS as readonly string[]).includes(body.textFormat))
      textFormat = body.textFormat as TextFormat;
    else problems.push({ path: 'textFormat', message: `must be one of ${TEXT_FORMATS.join(', ')}` });
  }
  let adaptiveCard: Json | undefined;
  if (body.adaptiveCard !== undefined) {
    if (!isObject(body.adaptiveCard))
      problems.push({ path: 'adaptiveCard', message: 'must be an Adaptive Card JSON object' });
    else if (body.adaptiveCard.type !== 'AdaptiveCard')
      problems.push({ path: 'adaptiveCard.type', message: 'must be "AdaptiveCard"' });
    else adaptiveCard = body.adaptiveCard;
  }
  const summary = checkString(body, 'summary', 'summary', problems, { max: 1000 });
  const mentions = parseMentions(body.mentions, problems);
  let activity: Json | undefined;
  if (body.activity !== undefined) {
    if (!isObject(body.activity))
      problems.push({ path: 'activity', message: 'must be an object of Bot Framework activity fields' });
    else activity = parseActivityFields(body.activity, (key) => `activity.${key}`, problems);
  }
  const activityHasContent =
    activity !== undefined && (activity.text !== undefined || activity.attachments !== undefined);
  if (
    text === undefined &&
    adaptiveCard === undefined &&
    !activityHasContent &&
    !problems.some((p) => p.path === 'text' || p.path.startsWith('adaptiveCard'))
  ) {
    problems.push({
      path: 'text',
      message: 'a job needs content: text and/or adaptiveCard (or activity.text / activity.attachments)',
    });
  }
  if (mentions.length > 0 && text === undefined)
    problems.push({ path: 'mentions', message: 'need text to place the <at> tags in' });
  return {
    textFormat,
    mentions,
    ...(text === undefined ? {} : { text }),
    ...(adaptiveCard === undefined ? {} : { adaptiveCard }),
    ...(summary === undefined ? {} : { summary }),
    ...(activity === undefined ? {} : { activity }),
  };
}

function parseMentions(value: unknown, problems: Problem[]): Mention[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push({ path: 'mentions', message: 'must be an array of {id, name}' });
    return [];
  }
  if (value.length > 50)
    problems.push({ path: 'mentions', message: `must have at most 50 entries (got ${value.length})` });
  const mentions: Mention[] = [];
  value.slice(0, 50).forEach((entry, i) => {
    if (!isObject(entry)) {
      problems.push({ path: `mentions[${i}]`, message: 'must be an object {id, name}' });
      return;
    }
    const id = checkString(entry, 'id', `mentions[${i}].id`, problems, { required: true, max: 200 });
    const name = checkString(entry, 'name', `mentions[${i}].name`, problems, { required: true, max: 200 });
    if (id && name) mentions.push({ id, name });
  });
  return mentions;
}
