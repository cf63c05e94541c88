/**
 * Outbound jobs: the public contract flows write to the queue (schemas/job.schema.json).
 * `decodeQueueMessage` accepts what the queue trigger hands over (already-parsed JSON, plain JSON
 * text, or base64-encoded JSON); `parseJob` validates and reports every problem at once, each naming
 * the field. Pure.
 */
import { JobValidationError, type Problem } from '../errors';
import { toTableKey } from './tableKeys';

export type TextFormat = 'markdown' | 'plain' | 'xml';

export type JobTarget =
  | { readonly kind: 'conversation'; readonly conversationId: string }
  | { readonly kind: 'user'; readonly aadObjectId: string; readonly tenantId?: string }
  | { readonly kind: 'channel'; readonly channelId: string; readonly threadId?: string };

export interface Mention {
  readonly id: string;
  readonly name: string;
}

/** What a message says. Shared by message, update and broadcast jobs. */
export interface MessageContent {
  readonly text?: string;
  readonly textFormat: TextFormat;
  readonly adaptiveCard?: Record<string, unknown>;
  readonly summary?: string;
  readonly mentions: readonly Mention[];
  /** Raw Bot Framework activity fields, merged last. */
  readonly activity?: Record<string, unknown>;
}

export type BroadcastTarget =
  | { readonly kind: 'users'; readonly aadObjectIds: readonly string[]; readonly tenantId?: string }
  | {
      readonly kind: 'allInstalled';
      readonly tenantId?: string;
      readonly conversationType?: 'personal' | 'groupChat' | 'channel';
    };

interface JobBase {
  /** Idempotency key: a job id that was delivered is never sent again. */
  readonly id: string;
  /** Deliver no earlier than this (the queue holds a message for at most 7 days). */
  readonly notBefore?: Date;
}

/** A new message to one conversation. */
export interface MessageJob extends JobBase, MessageContent {
  readonly kind: 'message';
  readonly to: JobTarget;
}
/** Replaces what an earlier job sent (PUT on its activity). */
export interface UpdateJob extends JobBase, MessageContent {
  readonly kind: 'update';
  /** The earlier job's id. */
  readonly target: string;
}
/** Removes what an earlier job sent (DELETE on its activity). */
export interface DeleteJob extends JobBase {
  readonly kind: 'delete';
  readonly target: string;
}
/** One message to many conversations: fanned out into one child job per recipient. */
export interface BroadcastJob extends JobBase, MessageContent {
  readonly kind: 'broadcast';
  readonly to: BroadcastTarget;
}

export type Job = MessageJob | UpdateJob | DeleteJob | BroadcastJob;

/** The queue holds an invisible message for at most 7 days. */
export const MAX_SCHEDULE_MS = 7 * 24 * 60 * 60 * 1000;
/** A queue message is at most 64 KB; a recipient list must fit in one job. */
export const MAX_BROADCAST_USERS = 1000;

/** What teams-courier adds when it re-enqueues a job (retry later, rate-limit deferral, fan-out). */
export interface Envelope {
  readonly jobId: string;
  /** Times the job was put back without a send attempt (rate limit, another worker's lease). */
  readonly deferrals: number;
  /** The broadcast or batch this job belongs to. */
  readonly parentId?: string;
  /** Fan-out progress of a broadcast: where to continue. */
  readonly cursor?: string;
  /**
   * The authenticated caller whose job this is (docs/flows.md, trust model). Its update and delete
   * targets name its own jobs, and its tenant restrictions apply when the target is resolved.
   */
  readonly caller?: string;
  /**
   * The job has a delivery record already (the HTTP API wrote it pending, or an attempt claimed it):
   * the sender reads it before claiming. Without it the sender claims with an insert, one storage
   * request fewer; a wrong hint costs a request, never a second send.
   */
  readonly recorded?: boolean;
}

export interface DecodedMessage {
  readonly body: unknown;
  readonly envelope?: Envelope;
}

export const ENVELOPE_KEY = 'teamsCourier';
export const MAX_JOB_ID_LENGTH = 128;
/**
 * A job id becomes a Table Storage key (1 KiB, escaped by tableKeys.ts, where one character can take
 * six). A caller's id must leave room for a caller prefix and a broadcast child's `~<n>`.
 */
export const MAX_JOB_ID_KEY_LENGTH = 400;
/** Internal ids (caller prefix, child suffix) still fit a key. */
const MAX_INTERNAL_ID_KEY_LENGTH = 480;
/** Caller names: the prefix of a caller's internal job ids (`<caller>:<id>`). */
export const CALLER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;
const TEXT_FORMATS: readonly TextFormat[] = ['markdown', 'plain', 'xml'];
const BASE64 = /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/;

type Json = Record<string, unknown>;
function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(path: string, message: string): never {
  throw new JobValidationError([{ path, message }]);
}

/**
 * The queue trigger parses JSON text itself (so plain JSON arrives as an object); base64 arrives as a
 * string. Both encodings must work: Logic Apps and @azure/storage-queue write plain text, Functions
 * output bindings write base64.
 */
export function decodeQueueMessage(input: unknown): DecodedMessage {
  let body: unknown = input;
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) body = Buffer.from(input).toString('utf8');
  if (typeof body === 'string') {
    const text = body.trim();
    if (text === '') invalid('(message)', 'is empty');
    if (text.startsWith('{') || text.startsWith('[')) {
      body = parseJsonText(text, 'is not valid JSON');
    } else if (BASE64.test(text)) {
      const decoded = Buffer.from(text, 'base64').toString('utf8');
      body = parseJsonText(decoded.trim(), 'is base64 but does not decode to JSON');
    } else {
      invalid('(message)', 'is neither JSON nor base64-encoded JSON');
    }
  }
  if (!isObject(body))
    invalid(
      '(message)',
      `must be a JSON object (got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body})`,
    );
  return fromEnvelopeForm(body) ?? { body };
}

/**
 * Our own envelope: exactly `{teamsCourier: {...}, job: {...}}`. Anything else is a caller's job,
 * and parseJob refuses the reserved keys in it, so a job can never name its own envelope. Only
 * principals that can write the queue directly can write an envelope (docs/flows.md, trust model).
 */
function fromEnvelopeForm(body: Json): DecodedMessage | undefined {
  const keys = Object.keys(body);
  if (keys.length !== 2 || !keys.includes(ENVELOPE_KEY) || !keys.includes('job')) return undefined;
  const raw = body[ENVELOPE_KEY];
  if (!isObject(raw) || !isObject(body.job)) return undefined;
  if (typeof raw.jobId !== 'string' || !fitsKey(raw.jobId, MAX_INTERNAL_ID_KEY_LENGTH))
    invalid(`${ENVELOPE_KEY}.jobId`, 'must be a job id that fits a table key');
  const deferrals =
    typeof raw.deferrals === 'number' && Number.isInteger(raw.deferrals) && raw.deferrals >= 0 ? raw.deferrals : 0;
  const text = (key: string): string | undefined =>
    typeof raw[key] === 'string' && raw[key] !== '' ? raw[key] : undefined;
  const parentId = text('parentId');
  const cursor = text('cursor');
  const caller = text('caller');
  if (caller !== undefined && !CALLER_NAME.test(caller)) invalid(`${ENVELOPE_KEY}.caller`, 'is not a caller name');
  const recorded = raw.recorded === true;
  return {
    body: body.job,
    envelope: {
      jobId: raw.jobId,
      deferrals,
      ...(parentId === undefined ? {} : { parentId }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(caller === undefined ? {} : { caller }),
      ...(recorded ? { recorded } : {}),
    },
  };
}

/** True when `id` fits a Table Storage key of at most `max` characters once escaped. */
function fitsKey(id: string, max: number): boolean {
  if (id === '') return false;
  try {
    return toTableKey(id).length <= max;
  } catch {
    return false;
  }
}

function parseJsonText(text: string, message: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return invalid('(message)', message);
  }
}

/** Wraps a job for re-enqueueing, keeping its resolved id (the queue message id changes). */
export function toEnvelope(body: unknown, envelope: Envelope): string {
  return JSON.stringify({ [ENVELOPE_KEY]: envelope, job: body });
}

function checkString(
  body: Json,
  key: string,
  path: string,
  problems: Problem[],
  opts: { max?: number; required?: boolean; urlSegment?: boolean } = {},
): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (opts.required) problems.push({ path, message: 'is required' });
    return undefined;
  }
  if (typeof value !== 'string') {
    problems.push({ path, message: `must be a string (got ${Array.isArray(value) ? 'array' : typeof value})` });
    return undefined;
  }
  if (value.trim() === '') {
    problems.push({ path, message: 'must not be empty' });
    return undefined;
  }
  if (opts.max !== undefined && value.length > opts.max) {
    problems.push({ path, message: `must be at most ${opts.max} characters (got ${value.length})` });
    return undefined;
  }
  if (opts.urlSegment && /^\.{1,2}$/.test(value)) {
    problems.push({ path, message: 'must not be "." or ".." (it would change the Bot Connector URL)' });
    return undefined;
  }
  return value;
}

const TARGET_FORMS =
  'exactly one of {conversationId}, {aadObjectId, tenantId?}, {channelId, threadId?}, {aadObjectIds, tenantId?} or {allInstalled, tenantId?, conversationType?}';

function parseTarget(to: unknown, problems: Problem[]): JobTarget | BroadcastTarget | undefined {
  if (!isObject(to)) {
    problems.push({
      path: 'to',
      message: to === undefined ? `is required: ${TARGET_FORMS}` : `must be an object: ${TARGET_FORMS}`,
    });
    return undefined;
  }
  const forms = (['conversationId', 'aadObjectId', 'channelId', 'aadObjectIds', 'allInstalled'] as const).filter(
    (k) => to[k] !== undefined,
  );
  if (forms.length !== 1) {
    problems.push({
      path: 'to',
      message:
        forms.length === 0
          ? `has no target: ${TARGET_FORMS}`
          : `has conflicting targets (${forms.join(', ')}): ${TARGET_FORMS}`,
    });
    return undefined;
  }
  const allowed: Record<string, readonly string[]> = {
    conversationId: ['conversationId'],
    aadObjectId: ['aadObjectId', 'tenantId'],
    channelId: ['channelId', 'threadId'],
    aadObjectIds: ['aadObjectIds', 'tenantId'],
    allInstalled: ['allInstalled', 'tenantId', 'conversationType'],
  };
  for (const key of Object.keys(to)) {
    if (!allowed[forms[0]!]!.includes(key))
      problems.push({ path: `to.${key}`, message: `is not allowed with to.${forms[0]}` });
  }
  const before = problems.length;
  switch (forms[0]) {
    case 'conversationId': {
      const conversationId = checkString(to, 'conversationId', 'to.conversationId', problems, {
        max: 400,
        urlSegment: true,
      });
      return problems.length === before && conversationId ? { kind: 'conversation', conversationId } : undefined;
    }
    case 'aadObjectId': {
      const aadObjectId = checkString(to, 'aadObjectId', 'to.aadObjectId', problems, { max: 128 });
      const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
      return problems.length === before && aadObjectId
        ? { kind: 'user', aadObjectId, ...(tenantId ? { tenantId } : {}) }
        : undefined;
    }
    case 'aadObjectIds': {
      const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
      const ids = to.aadObjectIds;
      if (!Array.isArray(ids) || ids.length === 0) {
        problems.push({ path: 'to.aadObjectIds', message: 'must be a non-empty array of Entra object ids' });
        return undefined;
      }
      if (ids.length > MAX_BROADCAST_USERS)
        problems.push({
          path: 'to.aadObjectIds',
          message: `must have at most ${MAX_BROADCAST_USERS} entries (got ${ids.length}); split the list or use allInstalled`,
        });
      ids.slice(0, MAX_BROADCAST_USERS).forEach((id, i) => {
        if (typeof id !== 'string' || id.trim() === '' || id.length > 128)
          problems.push({
            path: `to.aadObjectIds[${i}]`,
            message: 'must be a non-empty string of at most 128 characters',
          });
      });
      const unique = [...new Set(ids as string[])];
      return problems.length === before
        ? { kind: 'users', aadObjectIds: unique, ...(tenantId ? { tenantId } : {}) }
        : undefined;
    }
    case 'allInstalled': {
      if (to.allInstalled !== true) problems.push({ path: 'to.allInstalled', message: 'must be true' });
      const tenantId = checkString(to, 'tenantId', 'to.tenantId', problems, { max: 128 });
      const type = to.conversationType;
      if (type !== undefined && type !== 'personal' && type !== 'groupChat' && type !== 'channel') {
        problems.push({ path: 'to.conversationType', message: 'must be personal, groupChat or channel' });
      }
      return problems.length === before
        ? {
            kind: 'allInstalled',
            ...(tenantId ? { tenantId } : {}),
            ...(type === undefined ? {} : { conversationType: type as 'personal' | 'groupChat' | 'channel' }),
          }
        : undefined;
    }
    default: {
      const channelId = checkString(to, 'channelId', 'to.channelId', problems, { max: 400, urlSegment: true });
      const threadId = checkString(to, 'threadId', 'to.threadId', problems, { max: 64, urlSegment: true });
      if (channelId !== undefined && channelId.includes(';messageid=')) {
        problems.push({
          path: 'to.channelId',
          message: 'must be the channel id without ";messageid=" (put the thread root id in to.threadId)',
        });
      }
      return problems.length === before && channelId
        ? { kind: 'channel', channelId, ...(threadId ? { threadId } : {}) }
        : undefined;
    }
  }
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

/** The tutorial's form: a raw Bot Framework message activity addressed by conversation.id. */
function isRawActivity(body: Json): boolean {
  return body.type === 'message' && isObject(body.conversation) && body.to === undefined;
}

/** Routing fields of the raw form: where to send is resolved by teams-courier, never taken from the job. */
const RAW_ACTIVITY_ROUTING = new Set([
  'id',
  'type',
  'from',
  'recipient',
  'conversation',
  'serviceUrl',
  'channelId',
  'replyToId',
  'notBefore',
]);
const CONTENT_FIELDS = ['text', 'textFormat', 'adaptiveCard', 'summary', 'mentions', 'activity'] as const;

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

function parseActivityFields(fields: Json, at: (key: string) => string, problems: Problem[]): Json {
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

function parseContent(body: Json, problems: Problem[], required: boolean): MessageContent {
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
    required &&
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

function parseNotBefore(body: Json, problems: Problem[]): Date | undefined {
  if (body.notBefore === undefined) return undefined;
  const raw = body.notBefore;
  // ISO 8601 with a date and a time zone; Date.parse alone would accept "5" or "Tuesday".
  if (
    typeof raw !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) ||
    Number.isNaN(Date.parse(raw))
  ) {
    problems.push({
      path: 'notBefore',
      message: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-11-25T08:00:00Z',
    });
    return undefined;
  }
  return new Date(raw);
}

/**
 * Validates a job. `defaultId` is the queue message id (used when the job has no `id`).
 * Throws JobValidationError listing every problem.
 */
export function parseJob(body: unknown, defaultId: string): Job {
  if (!isObject(body)) throw new JobValidationError([{ path: '(job)', message: 'must be a JSON object' }]);
  const problems: Problem[] = [];
  const id = checkJobId(body, 'id', problems) ?? defaultId;
  const notBefore = parseNotBefore(body, problems);
  const timing = { id, ...(notBefore === undefined ? {} : { notBefore }) };

  if (isRawActivity(body)) {
    const conversation = body.conversation as Json;
    const conversationId = checkString(conversation, 'id', 'conversation.id', problems, {
      required: true,
      max: 400,
      urlSegment: true,
    });
    const fields: Json = {};
    for (const [key, value] of Object.entries(body)) if (!RAW_ACTIVITY_ROUTING.has(key)) fields[key] = value;
    const activity = parseActivityFields(fields, (key) => key, problems);
    if (
      activity.text === undefined &&
      activity.attachments === undefined &&
      !problems.some((p) => p.path === 'text' || p.path === 'attachments')
    ) {
      problems.push({ path: 'text', message: 'a raw activity needs text or attachments' });
    }
    if (problems.length > 0 || conversationId === undefined) throw new JobValidationError(problems);
    return {
      kind: 'message',
      ...timing,
      to: { kind: 'conversation', conversationId },
      textFormat: 'markdown',
      mentions: [],
      activity,
    };
  }

  const operation = body.update !== undefined ? 'update' : body.delete !== undefined ? 'delete' : undefined;
  const known = new Set<string>([
    'id',
    'notBefore',
    ...(operation === undefined
      ? ['to', ...CONTENT_FIELDS]
      : operation === 'update'
        ? ['update', ...CONTENT_FIELDS]
        : ['delete']),
  ]);
  if (body.update !== undefined && body.delete !== undefined)
    problems.push({ path: 'delete', message: 'cannot be combined with update' });
  for (const key of Object.keys(body)) {
    if (known.has(key) || (key === 'delete' && body.update !== undefined)) continue;
    const reason =
      operation === 'delete'
        ? 'is not allowed in a delete job (it only names the earlier job)'
        : operation === 'update' && key === 'to'
          ? 'is not allowed in an update job (the earlier job says where)'
          : 'is not a job field (see schemas/job.schema.json)';
    problems.push({ path: key, message: reason });
  }
  if (operation !== undefined) {
    const target = checkJobId(body, operation, problems, true);
    if (target !== undefined && target === id)
      problems.push({ path: operation, message: 'must name an earlier job, not this one' });
    if (operation === 'delete') {
      if (problems.length > 0 || target === undefined) throw new JobValidationError(problems);
      return { kind: 'delete', ...timing, target };
    }
    const content = parseContent(body, problems, true);
    if (problems.length > 0 || target === undefined) throw new JobValidationError(problems);
    return { kind: 'update', ...timing, target, ...content };
  }

  const to = parseTarget(body.to, problems);
  const content = parseContent(body, problems, true);
  if (problems.length > 0 || to === undefined) throw new JobValidationError(problems);
  if (to.kind === 'users' || to.kind === 'allInstalled') return { kind: 'broadcast', ...timing, to, ...content };
  return { kind: 'message', ...timing, to, ...content };
}

/** A job id field: a string that fits a table key with room for a caller prefix and a child suffix. */
function checkJobId(body: Json, key: string, problems: Problem[], required = false): string | undefined {
  const id = checkString(body, key, key, problems, { max: MAX_JOB_ID_LENGTH, required });
  if (id !== undefined && !fitsKey(id, MAX_JOB_ID_KEY_LENGTH)) {
    problems.push({
      path: key,
      message: `is too long once escaped for Table Storage (at most ${MAX_JOB_ID_KEY_LENGTH} characters, where "/\\#?%" and control or unpaired surrogate characters count as 3 to 6)`,
    });
    return undefined;
  }
  return id;
}

/** The job id, if the body has a usable one, for recording a job that failed validation. */
export function peekJobId(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const id = body.id;
  return typeof id === 'string' &&
    id.trim() !== '' &&
    id.length <= MAX_JOB_ID_LENGTH &&
    fitsKey(id, MAX_JOB_ID_KEY_LENGTH)
    ? id
    : undefined;
}
