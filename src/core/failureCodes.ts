/**
 * The one vocabulary of delivery failures: every `code` a delivery record, a poison message, a log
 * line or GET /api/notify/{id} can carry. docs/delivery.md's "Failure reasons" table lists each
 * one (a test keeps them in step). Pure.
 */

/** Codes teams-courier assigns itself, with what they mean. */
export const COURIER_FAILURE_CODES = {
  InvalidJob: 'the job breaks the contract; the reason lists every problem',
  JobTooLarge: "the job is too close to a queue message's 64 KiB to be retried or scheduled",
  ScheduleTooFar: 'notBefore is more than 7 days ahead',
  TenantRequired: 'the user is known in several tenants, or unknown and a chat must be created',
  ConversationUnknown: 'no reference is stored for that conversation id',
  ChannelUnknown: 'no channel reference is stored for that channel id',
  BotUninstalled: 'the bot was removed from the conversation',
  Undeliverable: 'Teams refused this conversation earlier',
  TargetJobUnknown: 'an update or delete names a job that does not exist',
  TargetJobFailed: 'an update or delete names a job that failed',
  TargetJobNotSent: 'an update or delete names a job not delivered yet (retried)',
  TargetJobNoActivityId: 'Teams returned no activity id for the job an update or delete names',
  TargetJobIsParent: 'an update or delete names a broadcast or a batch',
  TenantNotAllowed: "the job's caller may not message the conversation's tenant",
  CallerNotAllowed: "the job's caller is no longer in FLOW_CALLERS",
  UntrustedServiceUrl: 'the stored serviceUrl is not a Bot Connector host; the token was not sent',
  InvalidConversationId: 'an id would change the Bot Connector URL (. or ..)',
  MessageSizeTooBig: 'the message is over 100 KB as UTF-16 (refused before sending, or by Teams)',
  CreateConversationNoId: 'Teams created the personal chat but answered without its id',
  TokenUnavailable: 'no token for the bot could be had (retried)',
  NotReady: 'the target is not ready yet (retried)',
  TooManyAttempts: 'a job claimed more times than DELIVERY_MAX_ATTEMPTS without an outcome',
  Throttled: 'Teams answered 429 without a code of its own (retried)',
  PreconditionFailed: 'Teams answered 412 without a code of its own (retried)',
  Unauthorized: 'Teams answered 401 without a code, after a fresh token',
  NetworkTimeout: 'the Connector did not answer in time (retried; Teams may have the message)',
  NetworkReset: 'the connection closed before the answer (retried; Teams may have the message)',
  NetworkConnect: 'no connection to the Connector (retried)',
  NetworkOther: 'another network failure (retried)',
} as const;

/**
 * Proactive installation through Microsoft Graph (docs/graph-install.md). `retryable`: the job is
 * tried again later (Retry-After honoured); otherwise it fails with the reason.
 */
export const GRAPH_FAILURE_CODES = {
  GraphThrottled: { retryable: true, meaning: 'Graph answered 429; retry after its Retry-After' },
  GraphUnavailable: { retryable: true, meaning: 'Graph answered 5xx (503 with its Retry-After)' },
  GraphNetwork: { retryable: true, meaning: 'no answer from Graph (timeout, reset, no connection)' },
  GraphTokenUnavailable: { retryable: true, meaning: 'no Graph token could be had from the tenant' },
  GraphInstallationPending: {
    retryable: true,
    meaning: 'Graph accepted the installation but Teams does not have the chat yet',
  },
  GraphConsentMissing: {
    retryable: false,
    meaning: 'Graph answered 403: admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All',
  },
  GraphAppNotManageable: {
    retryable: false,
    meaning: "Graph answered 403: the Teams app's manifest does not name this app in webApplicationInfo.id",
  },
  GraphUserUnknown: { retryable: false, meaning: 'Graph answered 404 for the user' },
  GraphAppUnknown: { retryable: false, meaning: "Graph answered 404 for the app's catalog id" },
  GraphNotFound: { retryable: false, meaning: 'Graph answered 404 without saying for what' },
  GraphBadRequest: { retryable: false, meaning: 'Graph answered 400; the reason carries its message' },
  GraphUnauthorized: { retryable: false, meaning: 'Graph answered 401 twice, the second time to a fresh token' },
  GraphTenantNotAllowed: {
    retryable: false,
    meaning: "the bot's identity cannot act in the user's tenant (SingleTenant, UserAssignedMSI)",
  },
  GraphRefused: { retryable: false, meaning: 'Graph answered another 4xx' },
  GraphInvalidId: {
    retryable: false,
    meaning: 'a tenant, user, app or installation id is not in the form Graph takes; Graph was not called',
  },
} as const;

export type GraphFailureCode = keyof typeof GRAPH_FAILURE_CODES;

/** Teams' batch operations (docs/flows.md, "Batch jobs"). */
export const BATCH_FAILURE_CODES = {
  BatchNoOperationId: 'Teams accepted a batch request but answered without an operation id (not resent)',
  BatchAnswerUnreadable: "a batch operation's state or failed entries could not be read (retried)",
  BatchOperationNotFound: 'Teams no longer knows a batch operation (404 on its state)',
  BatchAmbiguous:
    'a batch request may have reached Teams without its answer; not resent, as that could message everyone twice',
  BatchServiceUrlUnknown: 'no serviceUrl is known for the tenant of a batch job',
  TeamUnknown: 'no reference is stored for that team id',
  BatchCancelled: 'the batch job was cancelled (DELETE /api/notify/{id} or teams-courier cancel)',
  BatchPollTimeout: 'a batch operation did not finish within the polling time',
  InvalidOperationId: 'an operation id from Teams would change the Bot Connector URL',
} as const;

export type BatchFailureCode = keyof typeof BATCH_FAILURE_CODES;

export type CourierFailureCode = keyof typeof COURIER_FAILURE_CODES | GraphFailureCode | BatchFailureCode;

/** Every code teams-courier assigns itself. */
export const ALL_COURIER_FAILURE_CODES: readonly CourierFailureCode[] = [
  ...(Object.keys(COURIER_FAILURE_CODES) as (keyof typeof COURIER_FAILURE_CODES)[]),
  ...(Object.keys(GRAPH_FAILURE_CODES) as GraphFailureCode[]),
  ...(Object.keys(BATCH_FAILURE_CODES) as BatchFailureCode[]),
];

/**
 * Teams' own codes that the sender acts on (bot-connector.md §7). Teams may send others; those,
 * and codeless answers (`HTTP<status>`), are recorded as they come.
 */
export const TEAMS_FAILURE_CODES = [
  'ConversationBlockedByUser',
  'BotNotInConversationRoster',
  'BotDisabledByAdmin',
  'ForbiddenOperationException',
  'MessageWritesBlocked',
  'ConversationNotFound',
  'InvalidBotApiHost',
  'NotEnoughPermissions',
  'BadArgument',
] as const;

export type TeamsFailureCode = (typeof TEAMS_FAILURE_CODES)[number];

/** What a failure record carries: one of ours, or whatever Teams said. */
export type FailureCode =
  CourierFailureCode | TeamsFailureCode | `HTTP${number}` | (string & { readonly fromTeams?: true });
