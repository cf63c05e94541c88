/**
 * The shapes a job body takes, each parsed whole and thrown as one JobValidationError listing every
 * problem: a raw Bot Framework activity (the tutorial's form), an update or delete of an earlier job,
 * and a message or broadcast with `to`.
 */
import { JobValidationError, type Problem } from '../../errors';
import { isObject, type Json } from '../json';
import { parseActivityFields } from './activityFields';
import { CONTENT_FIELDS, parseContent } from './content';
import { checkString } from './fields';
import { checkJobId } from './jobId';
import { isBatchTarget, isBroadcastTarget, parseTarget } from './target';
import type { BroadcastJob, DeleteJob, JobTiming, MessageContent, MessageJob, TeamsBatchJob, UpdateJob } from './types';

/** The tutorial's form: a raw Bot Framework message activity addressed by conversation.id. */
export function isRawActivity(body: Json): boolean {
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

export function parseRawActivityJob(body: Json, timing: JobTiming, problems: Problem[]): MessageJob {
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

/** What a job does to an earlier job, named by its `update` or `delete` field. */
export type Operation = 'update' | 'delete';

export function toOperation(body: Json): Operation | undefined {
  return body.update !== undefined ? 'update' : body.delete !== undefined ? 'delete' : undefined;
}

/** A problem for every field the job's form does not take, with the reason for that form. */
export function checkJobFields(body: Json, operation: Operation | undefined, problems: Problem[]): void {
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
}

/** An update or delete: `update` / `delete` names the earlier job. */
export function parseEditJob(
  body: Json,
  operation: Operation,
  timing: JobTiming,
  problems: Problem[],
): UpdateJob | DeleteJob {
  const target = checkJobId(body, operation, problems, { required: true });
  if (target !== undefined && target === timing.id)
    problems.push({ path: operation, message: 'must name an earlier job, not this one' });
  if (operation === 'delete') {
    if (problems.length > 0 || target === undefined) throw new JobValidationError(problems);
    return { kind: 'delete', ...timing, target };
  }
  const content = parseContent(body, problems);
  if (problems.length > 0 || target === undefined) throw new JobValidationError(problems);
  return { kind: 'update', ...timing, target, ...content };
}

/** A new message: to one conversation, a broadcast fanned out to many, or a Teams batch. */
export function parseSendJob(
  body: Json,
  timing: JobTiming,
  problems: Problem[],
): MessageJob | BroadcastJob | TeamsBatchJob {
  const to = parseTarget(body.to, problems);
  const content = parseContent(body, problems);
  if (to !== undefined && isBatchTarget(to)) checkBatchContent(content, problems);
  if (problems.length > 0 || to === undefined) throw new JobValidationError(problems);
  if (isBatchTarget(to)) return { kind: 'teamsBatch', ...timing, to, ...content };
  if (isBroadcastTarget(to)) return { kind: 'broadcast', ...timing, to, ...content };
  return { kind: 'message', ...timing, to, ...content };
}

/**
 * What Teams' batch cannot carry: one activity goes to every recipient, so a mention (of one
 * person, in one conversation) cannot be right for all of them.
 */
function checkBatchContent(content: MessageContent, problems: Problem[]): void {
  const why = 'is not possible in a batch job (one activity reaches every recipient); send per recipient instead';
  if (content.mentions.length > 0) problems.push({ path: 'mentions', message: why });
  const entities = content.activity?.entities;
  if (Array.isArray(entities) && entities.length > 0) problems.push({ path: 'activity.entities', message: why });
}
