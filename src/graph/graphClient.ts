/**
 * Microsoft Graph calls for proactive installation (learn.microsoft.com/graph/api/…):
 *   POST /users/{id}/teamwork/installedApps  {"teamsApp@odata.bind": "<base>/appCatalogs/teamsApps/{catalogId}"}
 *        201: installed; 409: already installed (Company Communicator treats it as success too)
 *   GET  /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{catalogId}'
 *        an empty `value` when not installed, else one installation whose `id` is the installation id
 *   GET  /users/{id}/teamwork/installedApps/{installationId}/chat   the 1:1 chat; `id` is the chat id
 * all with application permission TeamsAppInstallation.ReadWriteSelfForUser.All.
 *
 * Mirrors connectorClient.ts: one keep-alive undici Agent with connect, header and body timeouts,
 * the URL checked against the Graph base right before the token is attached, and nothing but Graph
 * tokens (from a tenant's own authority, graphToken.ts) ever sent: a token whose `aud` is the Bot
 * Framework is refused. Never throws for what Graph or the network answered; throws GraphError only
 * for a URL off the base or a Bot Connector token.
 */
import type { Dispatcher } from 'undici';
import { clientDispatcher, requestWithToken } from '../connector/answerReader';
import type { CloudName } from '../clouds';
import { assertOnGraphBase, graphBaseFor, graphUrl } from './graphHosts';
import { networkFailure } from './graphHttp';
import {
  failure,
  GraphError,
  GraphTokenError,
  mapGraphFailure,
  type GraphAnswer,
  type GraphCallContext,
  type GraphFailure,
  type GraphOperation,
  type GraphResult,
} from './graphResult';

export interface GraphTokenSource {
  /** A Graph token issued by `tenantId`'s authority; throws GraphTokenError when none can be had. */
  getToken(tenantId: string): Promise<string>;
  /** Forgets the tenant's token (after a 401). */
  invalidate(tenantId: string): void;
}

export interface GraphClientOptions {
  readonly cloud: CloudName;
  /** https override of `https://<graph host>/v1.0/` (tests, the emulator). */
  readonly baseUrl?: string;
  readonly tokens: GraphTokenSource;
  /** Connect, headers and body timeouts, each. */
  readonly timeoutMs: number;
  readonly dispatcher?: Dispatcher;
  readonly now?: () => Date;
}

export interface GraphClient {
  /** The v1.0 base every request starts with. */
  readonly base: URL;
  installAppForUser(
    tenantId: string,
    userId: string,
    catalogId: string,
  ): Promise<GraphResult<{ installed: 'new' | 'already' }>>;
  /** The installation id, or undefined when the app is not installed for the user. */
  findInstallation(tenantId: string, userId: string, catalogId: string): Promise<GraphResult<string | undefined>>;
  /** The id of the 1:1 chat between the user and the app (`19:…@unq.gbl.spaces`). */
  getInstallationChat(tenantId: string, userId: string, installationId: string): Promise<GraphResult<string>>;
  close(): Promise<void>;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Catalog ids are GUIDs for org apps; a Store app's is its manifest id. No quote: it goes into $filter. */
const CATALOG_ID = /^[0-9A-Za-z-]{1,64}$/;
/** Installation ids are base64 (`<user>##<app>`), padded or not. */
const INSTALLATION_ID = /^[A-Za-z0-9+/=_-]{1,512}$/;

/** What is kept of an answer's body. */
const MAX_BODY_BYTES = 64 * 1024;

const BOT_AUDIENCES = new Set(['https://api.botframework.com', 'https://api.botframework.us']);

/**
 * Refuses a Bot Connector token (a wiring mistake), whatever the token source. Graph tokens are
 * opaque to clients and may not be JWTs: only a readable `aud` naming the Bot Framework refuses.
 */
function assertNotBotToken(token: string): void {
  let aud: unknown;
  try {
    aud = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud?: unknown }).aud;
  } catch {
    return;
  }
  if ((Array.isArray(aud) ? aud : [aud]).some((a) => typeof a === 'string' && BOT_AUDIENCES.has(a.replace(/\/$/, ''))))
    throw new GraphError('GRAPH_TOKEN_REFUSED', 'a Bot Connector token must never be sent to Graph');
}

function invalidIds(ctx: GraphCallContext): GraphFailure | undefined {
  const bad = (what: string) =>
    failure('GraphInvalidId', `${what} is not in the form Graph takes; Graph was not called`);
  if (!GUID.test(ctx.tenantId)) return bad(`tenant id "${ctx.tenantId.slice(0, 64)}"`);
  if (!GUID.test(ctx.userId)) return bad(`user id "${ctx.userId.slice(0, 64)}" (an Entra object id)`);
  if (ctx.catalogId !== undefined && !CATALOG_ID.test(ctx.catalogId))
    return bad(`Teams app catalog id "${ctx.catalogId.slice(0, 64)}"`);
  if (ctx.installationId !== undefined && !INSTALLATION_ID.test(ctx.installationId))
    return bad(`installation id "${ctx.installationId.slice(0, 64)}"`);
  return undefined;
}

export function createGraphClient(options: GraphClientOptions): GraphClient {
  const base = graphBaseFor(options.cloud, options.baseUrl);
  const now = options.now ?? (() => new Date());
  const { dispatcher, close } = clientDispatcher(options, 16);

  /** One request; a 401 gets a fresh token and one more try (401 means Graph did not act). */
  async function call(
    ctx: GraphCallContext,
    method: 'GET' | 'POST',
    url: URL,
    body?: unknown,
  ): Promise<{ answer: GraphAnswer } | { failure: GraphFailure }> {
    const target = assertOnGraphBase(url, base);
    for (let attempt = 1; ; attempt += 1) {
      let token: string;
      try {
        token = await options.tokens.getToken(ctx.tenantId);
      } catch (err) {
        if (err instanceof GraphTokenError) return { failure: err.failure };
        throw err;
      }
      assertNotBotToken(token);
      let answer: GraphAnswer;
      try {
        answer = await requestWithToken(target, dispatcher, {
          method,
          token,
          body,
          contentType: 'application/json',
          // The caller decides on retries (a POST after a reset is answered 409 if it had landed).
          idempotent: false,
          maxBytes: MAX_BODY_BYTES,
        });
      } catch (err) {
        return { failure: networkFailure(err) };
      }
      if (answer.status !== 401 || attempt > 1) return { answer };
      options.tokens.invalidate(ctx.tenantId);
    }
  }

  const userApps = (userId: string, ...rest: string[]) => ['users', userId, 'teamwork', 'installedApps', ...rest];
  const fail = (op: GraphOperation, answer: GraphAnswer, ctx: GraphCallContext) =>
    ({ ok: false, failure: mapGraphFailure(op, answer, ctx, now()) }) as const;

  return {
    base,
    async installAppForUser(tenantId, userId, catalogId) {
      const ctx = { tenantId, userId, catalogId };
      const invalid = invalidIds(ctx);
      if (invalid !== undefined) return { ok: false, failure: invalid };
      const bind = graphUrl(base, ['appCatalogs', 'teamsApps', catalogId]).href;
      const done = await call(ctx, 'POST', graphUrl(base, userApps(userId)), { 'teamsApp@odata.bind': bind });
      if ('failure' in done) return { ok: false, failure: done.failure };
      const { status } = done.answer;
      if (status === 409) return { ok: true, value: { installed: 'already' } };
      if (status >= 200 && status < 300) return { ok: true, value: { installed: 'new' } };
      return fail('install', done.answer, ctx);
    },
    async findInstallation(tenantId, userId, catalogId) {
      const ctx = { tenantId, userId, catalogId };
      const invalid = invalidIds(ctx);
      if (invalid !== undefined) return { ok: false, failure: invalid };
      const url = graphUrl(base, userApps(userId), {
        $expand: 'teamsApp',
        $filter: `teamsApp/id eq '${catalogId}'`,
      });
      const done = await call(ctx, 'GET', url);
      if ('failure' in done) return { ok: false, failure: done.failure };
      if (done.answer.status !== 200) return fail('findInstallation', done.answer, ctx);
      const value = (done.answer.body as { value?: unknown } | null)?.value;
      const first = Array.isArray(value) ? (value[0] as { id?: unknown } | undefined) : undefined;
      return { ok: true, value: typeof first?.id === 'string' && first.id !== '' ? first.id : undefined };
    },
    async getInstallationChat(tenantId, userId, installationId) {
      const ctx = { tenantId, userId, installationId };
      const invalid = invalidIds(ctx);
      if (invalid !== undefined) return { ok: false, failure: invalid };
      const done = await call(ctx, 'GET', graphUrl(base, userApps(userId, installationId, 'chat')));
      if ('failure' in done) return { ok: false, failure: done.failure };
      if (done.answer.status !== 200) return fail('getChat', done.answer, ctx);
      const id = (done.answer.body as { id?: unknown } | null)?.id;
      if (typeof id === 'string' && id !== '') return { ok: true, value: id };
      return {
        ok: false,
        failure: failure('GraphInstallationPending', 'Graph answered the chat of the installation without its id', {
          status: 200,
        }),
      };
    },
    close,
  };
}
