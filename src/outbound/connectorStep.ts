/**
 * What a Connector step comes to (Acted), and the one call every step makes through: a Connector
 * request with its two in-place recoveries. Shared by connectorCalls.ts and personalChat.ts.
 */
import { decide, type ConnectorAnswer, type Decision } from '../core/deliveryDecision';
import type { ResolvedTarget, SenderDeps } from './senderTypes';

export type Installed = 'new' | 'already';

export interface Acted {
  readonly decision: Decision;
  readonly httpStatus?: number;
  /** The target as it ended up (with the chat's id and serviceUrl once created). */
  readonly target: ResolvedTarget;
  /** The app was installed for the user through Graph on the way, by this attempt or an earlier one. */
  readonly installed?: Installed;
}

export interface CallOptions {
  /**
   * What an earlier attempt of this job recorded (DeliveryRecord.installed): Graph is not asked
   * again, so a retried job installs at most once.
   */
  readonly installedBefore?: Installed;
}

/** What this attempt learnt before it stopped, whichever way it stopped. */
export interface Progress {
  installed?: Installed;
}

/**
 * One Connector call with the two in-place recoveries: a 401 refreshes the token once, and
 * InvalidBotApiHost retries once on the GCC host (bot-connector.md §7).
 */
export async function callWithRecovery(
  deps: SenderDeps,
  target: ResolvedTarget,
  call: (serviceUrl: string) => Promise<ConnectorAnswer>,
): Promise<{ answer: ConnectorAnswer; decision: Decision; serviceUrl: string }> {
  let serviceUrl = target.serviceUrl;
  let tokenRefreshed = false;
  let onGccHost = false;
  for (;;) {
    const answer = await call(serviceUrl);
    // No GCC host in this cloud (US gov): InvalidBotApiHost is then a plain failure.
    const decision = decide(answer, {
      now: deps.now(),
      tokenRefreshed,
      onGccHost: onGccHost || deps.config.gccServiceUrl === undefined,
    });
    if (decision.kind === 'refreshToken') {
      deps.tokens.invalidate();
      tokenRefreshed = true;
      continue;
    }
    if (decision.kind === 'retryOnGcc') {
      serviceUrl = deps.config.gccServiceUrl!;
      onGccHost = true;
      continue;
    }
    return { answer, decision, serviceUrl };
  }
}
