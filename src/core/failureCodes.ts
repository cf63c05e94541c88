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

export type CourierFailureCode = keyof typeof COURIER_FAILURE_CODES;

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
