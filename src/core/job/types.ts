/** The job forms flows write to the queue (schemas/job.schema.json), as parseJob returns them. */
import { BATCH_MIN_MEMBERS_PER_REQUEST } from '../batch';

export type TextFormat = 'markdown' | 'plain' | 'xml';
export const TEXT_FORMATS: readonly TextFormat[] = ['markdown', 'plain', 'xml'];

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

/**
 * Teams' batch messaging (docs/flows.md, "Batch jobs"): one request per list, and Teams fans the
 * message out itself. `to.batch` names the form.
 */
export type BatchTarget =
  | { readonly kind: 'batch'; readonly batch: 'users'; readonly users: readonly string[]; readonly tenantId: string }
  | { readonly kind: 'batch'; readonly batch: 'tenant'; readonly tenantId: string }
  | { readonly kind: 'batch'; readonly batch: 'team'; readonly teamId: string; readonly tenantId?: string }
  | {
      readonly kind: 'batch';
      readonly batch: 'channels';
      readonly channelIds: readonly string[];
      readonly tenantId?: string;
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

/**
 * One message to many recipients through Teams' batch operations: the sender POSTs a request per
 * chunk and follows each operation (src/outbound/batchSend.ts, batchPoll.ts). No per-recipient
 * records, no activity ids: it cannot be updated or deleted, and it has no mentions.
 */
export interface TeamsBatchJob extends JobBase, MessageContent {
  readonly kind: 'teamsBatch';
  readonly to: BatchTarget;
}

/**
 * The jobs the per-conversation sender and the fan-out handle (src/outbound/senderTypes.ts derives
 * its SingleJob from this union). A batch job goes its own way: ParsedJob is everything parseJob
 * returns.
 */
export type Job = MessageJob | UpdateJob | DeleteJob | BroadcastJob;
export type ParsedJob = Job | TeamsBatchJob;

/** The id and schedule every job form has. */
export type JobTiming = Pick<JobBase, 'id' | 'notBefore'>;

/** The queue holds an invisible message for at most 7 days. */
export const MAX_SCHEDULE_MS = 7 * 24 * 60 * 60 * 1000;
/** A queue message is at most 64 KB; a recipient list must fit in one job. */
export const MAX_BROADCAST_USERS = 1000;
/** Teams' fewest members in one batch request (src/core/batch.ts): a shorter list is refused. */
export const MIN_BATCH_MEMBERS = BATCH_MIN_MEMBERS_PER_REQUEST;
/** Longest user id in a batch list: an Entra object id, or a `29:` id. */
export const MAX_BATCH_MEMBER_ID_LENGTH = 256;
