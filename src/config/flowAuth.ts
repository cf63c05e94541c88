/**
 * Entra ID authentication of `/api/notify` callers (FLOW_AUTH_AUDIENCE, FLOW_AUTH_TENANT_ID,
 * FLOW_CALLERS). Without FLOW_AUTH_AUDIENCE the Functions host checks function keys instead.
 */
import { CALLER_NAME } from '../core/job';
import type { Problem } from '../errors';
import { read, type Env } from './parsers';

/** A caller of `/api/notify` authenticated with Entra ID. */
export interface FlowCaller {
  /** Namespace of its job ids; shown in logs. */
  readonly name: string;
  /** Matched against the token's `oid` (a managed identity's or service principal's object id). */
  readonly objectId?: string;
  /** Matched against the token's `appid` / `azp` (an app registration's client id). */
  readonly appId?: string;
  /** The Teams tenants it may message; undefined means any. */
  readonly tenants?: readonly string[];
}

export interface FlowAuthConfig {
  readonly audiences: readonly string[];
  readonly tenantId: string;
  readonly authorityHost: string;
  readonly callers: readonly FlowCaller[];
}

const FLOW_CALLER_FIELDS = new Set(['name', 'objectId', 'appId', 'tenants']);

function loadFlowCallers(raw: string | undefined, problems: Problem[]): FlowCaller[] {
  const problem = (message: string): FlowCaller[] => {
    problems.push({ path: 'FLOW_CALLERS', message });
    return [];
  };
  if (raw === undefined)
    return problem(
      'is required with FLOW_AUTH_AUDIENCE: list the callers allowed, e.g. [{"name":"billing","objectId":"<managed identity object id>"}]',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return problem('is not valid JSON');
  }
  if (!Array.isArray(parsed) || parsed.length === 0)
    return problem('must be a non-empty JSON array of {"name", "objectId" or "appId", "tenants"?}');
  const callers: FlowCaller[] = [];
  const names = new Set<string>();
  parsed.forEach((entry: unknown, i) => {
    const at = `FLOW_CALLERS[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push({ path: at, message: 'must be an object' });
      return;
    }
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !FLOW_CALLER_FIELDS.has(k));
    if (unknown.length > 0) problems.push({ path: at, message: `has unknown fields: ${unknown.join(', ')}` });
    const text = (k: string): string | undefined =>
      typeof e[k] === 'string' && (e[k] as string).trim() !== '' ? (e[k] as string).trim() : undefined;
    const name = text('name');
    if (name === undefined || !CALLER_NAME.test(name))
      problems.push({
        path: `${at}.name`,
        message: 'must be 1-32 letters, digits and hyphens, starting with a letter or digit',
      });
    else if (names.has(name)) problems.push({ path: `${at}.name`, message: `"${name}" is listed twice` });
    // Tokens carry GUIDs in lower case (the verifier normalises them); compare like with like.
    const objectId = text('objectId')?.toLowerCase();
    const appId = text('appId')?.toLowerCase();
    if (objectId === undefined && appId === undefined)
      problems.push({ path: at, message: "needs objectId or appId to match the caller's token" });
    let tenants: string[] | undefined;
    if (e.tenants !== undefined) {
      if (
        !Array.isArray(e.tenants) ||
        e.tenants.length === 0 ||
        !e.tenants.every((t) => typeof t === 'string' && t.trim() !== '')
      ) {
        problems.push({
          path: `${at}.tenants`,
          message: 'must be a non-empty array of tenant ids (leave it out to allow every tenant)',
        });
      } else tenants = e.tenants.map((t: string) => t.trim());
    }
    if (name !== undefined) names.add(name);
    callers.push({
      name: name ?? '',
      ...(objectId === undefined ? {} : { objectId }),
      ...(appId === undefined ? {} : { appId }),
      ...(tenants === undefined ? {} : { tenants }),
    });
  });
  return callers;
}

export function loadFlowAuth(
  env: Env,
  authorityHost: string | undefined,
  problems: Problem[],
): FlowAuthConfig | undefined {
  const audienceRaw = read(env, 'FLOW_AUTH_AUDIENCE');
  if (audienceRaw === undefined) {
    if (read(env, 'FLOW_CALLERS') !== undefined)
      problems.push({
        path: 'FLOW_CALLERS',
        message: 'has no effect without FLOW_AUTH_AUDIENCE (function keys are full trust); set both or neither',
      });
    return undefined;
  }
  const audiences = audienceRaw
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const tenantId = read(env, 'FLOW_AUTH_TENANT_ID') ?? read(env, 'MicrosoftAppTenantId');
  if (tenantId === undefined)
    problems.push({
      path: 'FLOW_AUTH_TENANT_ID',
      message: 'is required with FLOW_AUTH_AUDIENCE when MicrosoftAppTenantId is not set',
    });
  else if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantId)) {
    problems.push({
      path: 'FLOW_AUTH_TENANT_ID',
      message: "must be a tenant id (a GUID): tokens are checked against that one tenant's issuer",
    });
  }
  const callers = loadFlowCallers(read(env, 'FLOW_CALLERS'), problems);
  return { audiences, tenantId: tenantId ?? '', authorityHost: authorityHost ?? '', callers };
}

/**
 * How the Functions host guards `/api/notify`: `function` keys, or `anonymous` when the app checks
 * Entra ID tokens itself (FLOW_AUTH_AUDIENCE). Read at registration time, before loadConfig runs.
 */
export function flowAuthLevel(env: Env): 'function' | 'anonymous' {
  return read(env, 'FLOW_AUTH_AUDIENCE') === undefined ? 'function' : 'anonymous';
}
