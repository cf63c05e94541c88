/**
 * What the sender does with proactive installation's outcomes (docs/graph-install.md). Pure.
 *
 * - A Graph failure becomes the sender's Decision: retryable -> retry (after Graph's Retry-After
 *   when it sent one, else the sender's backoff); permanent -> fail. Neither ever says `throttled`
 *   (that pauses the conversation and the tenant for Teams, whose limits Graph's 429 says nothing
 *   about) nor `undeliverable` (Graph refused an installation, not a conversation).
 * - A GraphError (a URL off the Graph base, a Bot Connector token offered to Graph) is a wiring
 *   fault: a permanent failure, with a code that names where to look.
 * - After an installation this job made, Teams may not have the bot in the user's roster yet: the
 *   createConversation refusals that say so are GraphInstallationPending (retried), not failures.
 */
import type { ConnectorAnswer, Decision } from '../core/deliveryDecision';
import { errorCodeOf } from '../core/deliveryDecision';
import type { GraphError, GraphFailure } from './graphResult';

/** The sender's decision for a Graph failure. */
export function graphFailureDecision(failure: GraphFailure): Decision {
  return failure.retryable
    ? {
        kind: 'retry',
        code: failure.code,
        reason: failure.reason,
        throttled: false,
        ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
      }
    : { kind: 'fail', code: failure.code, reason: failure.reason, undeliverable: false };
}

/** The sender's decision for a GraphError: nothing was sent to Graph, and trying again would not change that. */
export function graphErrorDecision(err: GraphError): Decision {
  return err.code === 'GRAPH_URL_REFUSED'
    ? {
        kind: 'fail',
        code: 'GraphInvalidId',
        reason: `teams-courier did not call Graph: ${err.message}`,
        undeliverable: false,
      }
    : {
        kind: 'fail',
        code: 'GraphRefused',
        reason: `teams-courier did not call Graph (${err.code}): ${err.message}; check GRAPH_BASE_URL and the bot's credential settings`,
        undeliverable: false,
      };
}

/**
 * Teams' answers to createConversation that mean "the bot is not in this user's roster (yet)": 403
 * BotNotInConversationRoster, 403 ForbiddenOperationException (what an object id without the app
 * gets), a 403 without a code, and any 404.
 */
const NOT_IN_ROSTER = new Set(['BotNotInConversationRoster', 'ForbiddenOperationException']);

export function isRosterRefusal(answer: Pick<ConnectorAnswer, 'status' | 'body'>): boolean {
  if (answer.status === 404) return true;
  if (answer.status !== 403) return false;
  const { code } = errorCodeOf(answer.body);
  return code === undefined || NOT_IN_ROSTER.has(code);
}

/** createConversation refused the user right after this job installed the app: retry shortly (backoff). */
export function installationPending(said: string): Decision {
  return {
    kind: 'retry',
    code: 'GraphInstallationPending',
    reason: `the app was installed for the user, and Teams does not have the bot in the user's roster yet (${said})`,
    throttled: false,
  };
}
