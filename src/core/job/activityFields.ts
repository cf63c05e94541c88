/**
 * Bot Framework activity fields a job may set, in `activity` or in the raw activity form: an
 * allowlist, with Teams channel data and entities narrowed to what cannot change who speaks or where.
 */
import type { Problem } from '../../errors';
import { isObject, type Json } from '../json';
import { TEXT_FORMATS } from './types';

/**
 * The Bot Framework activity fields a job may set (an allowlist: `from`, `recipient`, `conversation`,
 * `channelData.onBehalfOf` and the like would let a caller speak as someone else or elsewhere).
 * Source: the connector's `Activity` definition (../shared/reference/ConnectorAPI.swagger.json).
 */
const ACTIVITY_FIELDS = new Set([
  'type',
  'text',
  'textFormat',
  'attachments',
  'attachmentLayout',
  'summary',
  'importance',
  'speak',
  'inputHint',
  'locale',
  'suggestedActions',
  'channelData',
  'entities',
]);
/** `channelData.notification` (`alert`, `alertInFeed`) is the only Teams channel data a job may set. */
const NOTIFICATION_FIELDS = new Set(['alert', 'alertInFeed']);

/** The allowed fields that are well-formed; a problem, at `at(key)`, for each other field. */
export function parseActivityFields(fields: Json, at: (key: string) => string, problems: Problem[]): Json {
  const activity: Json = {};
  for (const [key, value] of Object.entries(fields)) {
    const path = at(key);
    if (!ACTIVITY_FIELDS.has(key)) {
      problems.push({
        path,
        message: `is not an activity field a job may set (allowed: ${[...ACTIVITY_FIELDS].join(', ')})`,
      });
      continue;
    }
    const before = problems.length;
    switch (key) {
      case 'type':
        if (value !== 'message') problems.push({ path, message: 'must be "message"' });
        break;
      case 'channelData':
        checkChannelData(value, path, problems);
        break;
      case 'entities':
        checkMentionEntities(value, path, problems);
        break;
      case 'attachments':
      case 'suggestedActions':
        if (key === 'attachments' ? !Array.isArray(value) || !value.every(isObject) : !isObject(value)) {
          problems.push({
            path,
            message: key === 'attachments' ? 'must be an array of attachment objects' : 'must be an object',
          });
        }
        break;
      case 'textFormat':
        if (!(TEXT_FORMATS as readonly unknown[]).includes(value))
          problems.push({ path, message: `must be one of ${TEXT_FORMATS.join(', ')}` });
        break;
      default:
        if (typeof value !== 'string') problems.push({ path, message: 'must be a string' });
    }
    if (problems.length === before) activity[key] = value;
  }
  return activity;
}

function checkChannelData(value: unknown, path: string, problems: Problem[]): void {
  if (!isObject(value)) {
    problems.push({ path, message: 'must be an object' });
    return;
  }
  for (const [key, inner] of Object.entries(value)) {
    if (key !== 'notification') {
      problems.push({
        path: `${path}.${key}`,
        message: 'is not allowed (a job may set channelData.notification only)',
      });
      continue;
    }
    if (
      !isObject(inner) ||
      !Object.entries(inner).every(([k, v]) => NOTIFICATION_FIELDS.has(k) && typeof v === 'boolean')
    ) {
      problems.push({
        path: `${path}.notification`,
        message: 'must be {"alert": true|false, "alertInFeed": true|false}',
      });
    }
  }
}

/** Only mention entities, shaped as Teams expects; anything else goes through `mentions`. */
function checkMentionEntities(value: unknown, path: string, problems: Problem[]): void {
  if (!Array.isArray(value)) {
    problems.push({ path, message: 'must be an array of mention entities' });
    return;
  }
  value.forEach((entity, i) => {
    const mentioned = isObject(entity) ? entity.mentioned : undefined;
    const ok =
      isObject(entity) &&
      Object.keys(entity).every((k) => k === 'type' || k === 'mentioned' || k === 'text') &&
      entity.type === 'mention' &&
      typeof entity.text === 'string' &&
      isObject(mentioned) &&
      Object.keys(mentioned).every((k) => k === 'id' || k === 'name') &&
      typeof mentioned.id === 'string' &&
      typeof mentioned.name === 'string';
    if (!ok)
      problems.push({
        path: `${path}[${i}]`,
        message: 'must be {"type": "mention", "mentioned": {"id", "name"}, "text"}',
      });
  });
}
