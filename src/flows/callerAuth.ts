/**
 * Who is calling `/api/notify`: the Entra ID identity in the caller's access token, matched
 * against FLOW_CALLERS. A valid token of an identity that is not listed is a 403; no token or an
 * invalid one is a 401 (AuthError). Without FLOW_AUTH_AUDIENCE the function key is the only
 * guard and every caller has full trust (no namespace, every tenant).
 */
import type { CallerIdentity } from '../auth/verifyCallerToken';
import type { FlowCaller } from '../config';
import type { Submitter } from '../core/admission';
import { AuthError } from '../errors';

/** The configured caller that a verified identity is, if any. */
export function findCaller(identity: CallerIdentity, callers: readonly FlowCaller[]): FlowCaller | undefined {
  return callers.find(
    (c) =>
      (c.objectId !== undefined && c.objectId === identity.objectId) ||
      (c.appId !== undefined && c.appId === identity.appId),
  );
}

export function toSubmitter(identity: CallerIdentity, callers: readonly FlowCaller[]): Submitter {
  const caller = findCaller(identity, callers);
  if (caller === undefined) {
    throw new AuthError(
      'AUTH_FORBIDDEN',
      `the token is valid but its identity (oid ${identity.objectId}${identity.appId === undefined ? '' : `, appid ${identity.appId}`}) is not in FLOW_CALLERS`,
    );
  }
  return { name: caller.name, ...(caller.tenants === undefined ? {} : { tenants: caller.tenants }) };
}
