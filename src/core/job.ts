/**
 * Outbound jobs: the public contract flows write to the queue (schemas/job.schema.json).
 * `decodeQueueMessage` accepts what the queue trigger hands over (already-parsed JSON, plain JSON
 * text, or base64-encoded JSON); `parseJob` validates and reports every problem at once, each naming
 * the field. Pure.
 *
 * The parts live in ./job/: types, envelope (queue messages), jobId, fields, target, targetForms and
 * batchTargets (`to`), content and activityFields (what a message says), forms (the job's shapes).
 */
import { JobValidationError, type Problem } from '../errors';
import { isObject } from './json';
import { checkJobId } from './job/jobId';
import { parseNotBefore } from './job/fields';
import {
  checkJobFields,
  isRawActivity,
  parseEditJob,
  parseRawActivityJob,
  parseSendJob,
  toOperation,
} from './job/forms';
import type { JobTiming, ParsedJob } from './job/types';

export type {
  BatchTarget,
  BroadcastJob,
  BroadcastTarget,
  DeleteJob,
  Job,
  JobTarget,
  Mention,
  MessageContent,
  MessageJob,
  ParsedJob,
  TeamsBatchJob,
  TextFormat,
  UpdateJob,
} from './job/types';
export { MAX_BROADCAST_USERS, MAX_SCHEDULE_MS, MIN_BATCH_MEMBERS } from './job/types';
export { CALLER_NAME, decodeQueueMessage, ENVELOPE_KEY, toEnvelope } from './job/envelope';
export type { DecodedMessage, Envelope } from './job/envelope';
export { MAX_JOB_ID_KEY_LENGTH, MAX_JOB_ID_LENGTH, peekJobId } from './job/jobId';

/**
 * Validates a job. `defaultId` is the queue message id (used when the job has no `id`).
 * Throws JobValidationError listing every problem.
 */
export function parseJob(body: unknown, defaultId: string): ParsedJob {
  if (!isObject(body)) throw new JobValidationError([{ path: '(job)', message: 'must be a JSON object' }]);
  const problems: Problem[] = [];
  const id = checkJobId(body, 'id', problems) ?? defaultId;
  const notBefore = parseNotBefore(body, problems);
  const timing: JobTiming = { id, ...(notBefore === undefined ? {} : { notBefore }) };

  if (isRawActivity(body)) return parseRawActivityJob(body, timing, problems);
  const operation = toOperation(body);
  checkJobFields(body, operation, problems);
  return operation === undefined
    ? parseSendJob(body, timing, problems)
    : parseEditJob(body, operation, timing, problems);
}
