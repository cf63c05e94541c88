/**
 * What every step of the sender shares: its dependencies, the job's context, the results.
 */
import type { BatchClient } from '../connector/batchClient';
import type { GraphClient } from '../graph/graphClient';
import type { BotTokenProvider } from '../auth/botTokenProvider';
import type { OutboundConfig } from '../config';
import type { ConnectorClient } from '../connector/connectorClient';
import type { FailureCode } from '../core/failureCodes';
import type { Envelope, Job } from '../core/job';
import type { StatsOutcome } from '../core/stats';
import type { Logger } from '../log';
import type { ConversationPage, ListFilter } from '../store/conversationList';
import type { ConversationStore } from '../store/conversationStore';
import type { DeliveryRecord, DeliveryStore } from '../store/deliveryStore';
import type { JobQueue } from '../store/jobQueue';
import type { SendBudget } from './sendBudget';

export interface SenderDeps {
  readonly conversations: ConversationStore;
  readonly deliveries: DeliveryStore;
  readonly queue: JobQueue;
  readonly connector: ConnectorClient;
  readonly tokens: Pick<BotTokenProvider, 'invalidate'>;
  /** Teams' limits, shared with every instance (sendBudget.ts). */
  readonly budget: SendBudget;
  readonly listConversations: (
    filter: ListFilter,
    page: { pageSize: number; continuationToken?: string },
  ) => Promise<ConversationPage>;
  readonly config: Pick<
    OutboundConfig,
    | 'appId'
    | 'maxAttempts'
    | 'globalServiceUrl'
    | 'gccServiceUrl'
    | 'connectorTimeoutMs'
    | 'callerTenants'
    | 'tenantRatePerSecond'
    | 'batch'
  >;
  readonly now: () => Date;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: Logger;
  /** First retry delay (doubles per attempt, with jitter); default 2 s. */
  readonly backoffBaseMs?: number;
  /** Outcome counts for `teams-courier stats` (in memory, flushed by src/store/statsRollup.ts); none: not counted. */
  readonly stats?: OutcomeStats;
  /** Proactive installation through Microsoft Graph; absent unless TEAMS_APP_CATALOG_ID is set. */
  readonly graph?: { readonly client: GraphClient; readonly catalogId: string };
  /** Teams' batch operations (docs/flows.md, "Batch jobs"); absent: batch jobs are not sent. */
  readonly batches?: BatchClient;
}

/** Where the sender counts outcomes, for the queue message being handled. */
export interface OutcomeStats {
  /** When this queue message was put on the queue (trigger metadata `insertionTime`), if known. */
  readonly queuedAt?: Date;
  /** Counts one outcome in memory: never throws, never waits, no storage work. */
  record(outcome: StatsOutcome): void;
}

export interface QueueMessageMeta {
  /** The queue message id (the job id when the job has none). */
  readonly messageId: string;
  readonly dequeueCount: number;
}

export type JobResult =
  | {
      readonly status: 'sent';
      readonly jobId: string;
      readonly activityId?: string;
      readonly conversationId: string;
      readonly ambiguous: boolean;
    }
  | { readonly status: 'retrying'; readonly jobId: string; readonly code: FailureCode; readonly delayMs: number }
  | { readonly status: 'deferred'; readonly jobId: string; readonly delayMs: number; readonly why: string }
  | { readonly status: 'failed'; readonly jobId: string; readonly code: FailureCode; readonly reason: string }
  | { readonly status: 'skipped'; readonly jobId: string; readonly existing: DeliveryRecord['status'] }
  | { readonly status: 'fannedOut'; readonly jobId: string; readonly children: number; readonly complete: boolean };

export interface PutBackOptions {
  /** Not an attempt: a schedule, the rate limit, another worker's lease (counted as a deferral). */
  readonly deferred: boolean;
  /** A broadcast's fan-out progress. */
  readonly cursor?: string;
}

/** Everything one invocation knows about the job it is working on. */
export interface JobContext {
  readonly job: Job;
  readonly body: unknown;
  readonly envelope?: Envelope;
  readonly started: Date;
  log: Logger;
  /** Puts the job back on the queue in teams-courier's envelope, with its resolved id. */
  putBack(delayMs: number, options: PutBackOptions): Promise<void>;
}

/** Where a job goes, resolved from the store. */
export interface ResolvedTarget {
  /** Where to act (a thread reply adds `;messageid=`); none yet when the chat must be created. */
  readonly conversationId?: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly botId: string;
  readonly botName?: string;
  /** Set when the personal chat must be created first. */
  readonly create?: { readonly aadObjectId: string };
  /** Update and delete: Teams' id of the earlier job's message. */
  readonly activityId?: string;
}

/** A job claimed for one attempt: the ETag to write its outcome with, and what the claim wrote. */
export interface Claimed {
  readonly etag: string;
  readonly record: DeliveryRecord;
}

/** A job that goes to one conversation (everything but a broadcast). */
export type SingleJob = Exclude<Job, { kind: 'broadcast' }>;

/**
 * Longest rate-limit wait spent in process; longer waits put the job back on the queue. It covers
 * an instance's wait when it joins a tenant others are sending to (sendBudget.ts JOIN_WAIT_MS).
 */
export const MAX_INLINE_WAIT_MS = 10_000;

/** How soon a job whose id another worker holds is looked at again. */
export const BUSY_RECHECK_MS = 2_000;

/** A claim lasts three connector timeouts (connect, headers, body) and a margin. */
export const leaseFor = (deps: SenderDeps): number => deps.config.connectorTimeoutMs * 3 + 15_000;
