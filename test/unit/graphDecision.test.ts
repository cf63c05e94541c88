/**
 * What the sender decides for proactive installation's outcomes (src/graph/graphDecision.ts): a Graph
 * failure never looks like Teams throttling or a refused conversation, a wiring fault is permanent,
 * and only the roster refusals count as "installation pending".
 */
import { describe, expect, it } from 'vitest';
import {
  graphErrorDecision,
  graphFailureDecision,
  installationPending,
  isRosterRefusal,
} from '../../src/graph/graphDecision';
import { failure, GRAPH_FAILURE_CODES, GraphError, type GraphFailureCode } from '../../src/graph/graphResult';

describe('a Graph failure as the sender decision', () => {
  it.each(Object.keys(GRAPH_FAILURE_CODES) as GraphFailureCode[])('%s', (code) => {
    const decision = graphFailureDecision(failure(code, `reason for ${code}`));
    if (GRAPH_FAILURE_CODES[code].retryable) {
      expect(decision).toEqual({ kind: 'retry', code, reason: `reason for ${code}`, throttled: false });
    } else {
      expect(decision).toEqual({ kind: 'fail', code, reason: `reason for ${code}`, undeliverable: false });
    }
  });

  it("a 429 keeps Graph's Retry-After, and is still not Teams throttling", () => {
    expect(graphFailureDecision(failure('GraphThrottled', 'slow down', { status: 429, retryAfterMs: 7_000 }))).toEqual({
      kind: 'retry',
      code: 'GraphThrottled',
      reason: 'slow down',
      retryAfterMs: 7_000,
      throttled: false,
    });
  });
});

describe('a GraphError as the sender decision', () => {
  it('a URL off the Graph base: GraphInvalidId, permanent', () => {
    expect(graphErrorDecision(new GraphError('GRAPH_URL_REFUSED', '".." cannot be an id in a Graph URL'))).toEqual({
      kind: 'fail',
      code: 'GraphInvalidId',
      reason: 'teams-courier did not call Graph: ".." cannot be an id in a Graph URL',
      undeliverable: false,
    });
  });

  it.each(['GRAPH_TOKEN_REFUSED', 'GRAPH_BASE_INVALID'] as const)('%s: GraphRefused, permanent, naming it', (code) => {
    const decision = graphErrorDecision(new GraphError(code, 'no'));
    expect(decision).toMatchObject({ kind: 'fail', code: 'GraphRefused', undeliverable: false });
    expect(decision.kind === 'fail' && decision.reason).toContain(code);
  });
});

describe("Teams' answers that mean the bot is not in the user's roster yet", () => {
  const teams = (status: number, code?: string) => ({
    status,
    body: code === undefined ? '' : { error: { code, message: 'm' } },
  });

  it.each([
    [403, 'BotNotInConversationRoster'],
    [403, 'ForbiddenOperationException'],
    [403, undefined],
    [404, 'ConversationNotFound'],
    [404, undefined],
  ])('%s %s: yes', (status, code) => {
    expect(isRosterRefusal(teams(status, code))).toBe(true);
  });

  it.each([
    [403, 'BotDisabledByAdmin'],
    [403, 'NotEnoughPermissions'],
    [403, 'ConversationBlockedByUser'],
    [400, 'BadArgument'],
    [500, undefined],
    [429, undefined],
  ])('%s %s: no', (status, code) => {
    expect(isRosterRefusal(teams(status, code))).toBe(false);
  });

  it('pending is a retry with backoff (no Retry-After), never throttled', () => {
    expect(installationPending('HTTP 403 BotNotInConversationRoster: m')).toEqual({
      kind: 'retry',
      code: 'GraphInstallationPending',
      reason:
        "the app was installed for the user, and Teams does not have the bot in the user's roster yet (HTTP 403 BotNotInConversationRoster: m)",
      throttled: false,
    });
  });
});
