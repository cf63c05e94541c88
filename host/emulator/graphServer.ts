/**
 * A Microsoft Graph stub for proactive installation, over loopback HTTPS (./localServer):
 *   POST /v1.0/users/{id}/teamwork/installedApps                     201, 409 already installed
 *   GET  /v1.0/users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{id}'
 *   GET  /v1.0/users/{id}/teamwork/installedApps/{installationId}/chat
 * Errors use Graph's shape, `{"error": {"code", "message", "innerError": {date, request-id, …}}}`
 * (learn.microsoft.com/graph/errors). The 401 messages, the 403 "Missing role permissions …" one
 * and the "not allowed to manage the Teams App" one are Graph's as reported in its docs' issues
 * (microsoftgraph/microsoft-graph-docs #13690, -contrib #478); the 404 wordings are the stub's own.
 *
 * Each request is checked like Graph does: a Bearer token (decoded, or verified with `verifyToken`,
 * e.g. the Entra stub's), its `aud` (the Graph resource), with `checkRoles` its `roles`, and its
 * `tid` against the user's tenant (an app-only token sees only its own directory). Scenarios are
 * chosen per user (`addUser`, `setScenario`) or injected (`failNext`). Every request is recorded
 * with the token's claims (never the token). `onInstall` hears of each new installation, so an
 * emulator can send Teams' installationUpdate / conversationUpdate to /api/messages.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt, type JWTPayload } from 'jose';
import { type TlsMaterial, header, readBody, sendJson, splitUrl, startStubServer } from './localServer';

export type GraphScenario =
  'ok' | 'alreadyInstalled' | 'consentMissing' | 'notManageable' | 'throttled' | 'unknownUser' | 'unknownApp';

export interface GraphStubUser {
  readonly id: string;
  readonly tenantId: string;
  readonly scenario?: GraphScenario;
}

export interface GraphStubApp {
  /** The catalog id (`teamsApp.id`). */
  readonly catalogId: string;
  /** The bot's app id: the second half of the 1:1 chat id. */
  readonly botAppId: string;
  /** The manifest id (`teamsApp.externalId`). */
  readonly externalId?: string;
  readonly displayName?: string;
}

export interface GraphInstallEvent {
  readonly userId: string;
  readonly tenantId: string;
  readonly catalogId: string;
  readonly botAppId: string;
  readonly installationId: string;
  readonly chatId: string;
}

export interface GraphRequestRecord {
  readonly time: number;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly operation: 'install' | 'list' | 'chat' | 'other';
  readonly userId?: string;
  /** The token's claims (the token itself is not kept); undefined without a Bearer token. */
  claims?: JWTPayload;
  body?: unknown;
  status: number | null;
  errorCode?: string;
}

export interface GraphFailNext {
  readonly status: number;
  readonly code?: string;
  readonly message?: string;
  readonly retryAfterSeconds?: number;
  /** Only requests for this user; default any. */
  readonly userId?: string;
  /** Default 1. */
  readonly times?: number;
  /** Destroy the connection instead of answering. */
  readonly drop?: boolean;
}

export interface GraphServerOptions {
  readonly users?: readonly GraphStubUser[];
  readonly apps?: readonly GraphStubApp[];
  /** The `aud` tokens must carry; default `https://graph.microsoft.com`. */
  readonly audience?: string;
  readonly verifyToken?: (token: string) => Promise<JWTPayload>;
  /** Answer 403 unless the token's `roles` hold a permission the call accepts. Default false. */
  readonly checkRoles?: boolean;
  /** Retry-After of the `throttled` scenario, in seconds; default 1. */
  readonly throttleSeconds?: number;
  readonly onInstall?: (event: GraphInstallEvent) => void | Promise<void>;
  readonly tls?: TlsMaterial;
  readonly log?: (line: string) => void;
}

export interface GraphServer {
  readonly origin: string;
  readonly port: number;
  /** `https://127.0.0.1:<port>/v1.0/`: the Graph base override for the app. */
  readonly baseUrl: string;
  readonly requests: readonly GraphRequestRecord[];
  addUser(user: GraphStubUser): void;
  setScenario(userId: string, scenario: GraphScenario): void;
  addApp(app: GraphStubApp): void;
  installations(userId: string): readonly GraphInstallEvent[];
  failNext(failure: GraphFailNext): void;
  setOnInstall(listener: GraphServerOptions['onInstall']): void;
  /** Clears records, installations and injected failures (keeps users, apps and scenarios). */
  reset(): void;
  close(): Promise<void>;
}

const READ_ROLES = ['TeamsAppInstallation.ReadForUser.All'];
const WRITE_ROLES = [
  'TeamsAppInstallation.ReadWriteSelfForUser.All',
  'TeamsAppInstallation.ReadWriteForUser.All',
  'TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All',
  'TeamsAppInstallation.ReadWriteAndConsentForUser.All',
];

function graphError(res: ServerResponse, status: number, code: string, message: string, headers = {}): void {
  const requestId = randomUUID();
  const date = new Date().toISOString().slice(0, 19);
  const innerError = { date, 'request-id': requestId, 'client-request-id': requestId };
  sendJson(res, status, { error: { code, message, innerError } }, { 'request-id': requestId, ...headers });
}

export async function startGraphServer(options: GraphServerOptions = {}): Promise<GraphServer> {
  const users = new Map<string, GraphStubUser>();
  for (const user of options.users ?? []) users.set(user.id.toLowerCase(), user);
  const apps = new Map<string, GraphStubApp>();
  for (const app of options.apps ?? []) apps.set(app.catalogId, app);
  const audience = options.audience ?? 'https://graph.microsoft.com';
  const installed = new Map<string, GraphInstallEvent[]>();
  const throttledOnce = new Set<string>();
  const failures: { failure: GraphFailNext; remaining: number }[] = [];
  const requests: GraphRequestRecord[] = [];
  let onInstall = options.onInstall;
  let origin = '';

  const installsOf = (userId: string) => installed.get(userId.toLowerCase()) ?? [];

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname, query } = splitUrl(req.url);
    const method = req.method ?? 'GET';
    const segments = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const [version, users_, userId, teamwork, installedApps, installationId, chat, ...extra] = segments;
    const onApps =
      version === 'v1.0' && users_ === 'users' && teamwork === 'teamwork' && installedApps === 'installedApps';
    const operation: GraphRequestRecord['operation'] =
      onApps && extra.length === 0 && userId !== undefined
        ? installationId === undefined
          ? method === 'POST'
            ? 'install'
            : 'list'
          : chat === 'chat' && method === 'GET'
            ? 'chat'
            : 'other'
        : 'other';
    const record: GraphRequestRecord = {
      time: Date.now(),
      method,
      path: pathname,
      query: Object.fromEntries(query),
      operation,
      ...(userId === undefined ? {} : { userId }),
      status: null,
    };
    requests.push(record);
    const answer = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      record.status = status;
      record.errorCode = code;
      graphError(res, status, code, message, headers);
    };

    const auth = header(req, 'authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (auth === undefined) return answer(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    try {
      record.claims = options.verifyToken ? await options.verifyToken(auth) : decodeJwt(auth);
    } catch {
      return answer(401, 'InvalidAuthenticationToken', 'Access token validation failure.');
    }
    const aud = record.claims.aud;
    if (!(Array.isArray(aud) ? aud.includes(audience) : aud === audience))
      return answer(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');

    const index = failures.findIndex(({ failure }) => failure.userId === undefined || failure.userId === userId);
    const injected = failures[index];
    if (injected !== undefined) {
      injected.remaining -= 1;
      if (injected.remaining <= 0) failures.splice(index, 1);
      const { failure } = injected;
      if (failure.drop) return void req.socket.destroy();
      const wait: Record<string, string> =
        failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) };
      return answer(
        failure.status,
        failure.code ?? `HTTP${failure.status}`,
        failure.message ?? 'Injected failure.',
        wait,
      );
    }
    if (operation === 'other' || userId === undefined)
      return answer(400, 'BadRequest', `Resource not found for the segment '${segments.at(-1) ?? ''}'.`);

    const roles = Array.isArray(record.claims.roles) ? (record.claims.roles as string[]) : [];
    const accepted = operation === 'install' ? WRITE_ROLES : [...READ_ROLES, ...WRITE_ROLES];
    const user = users.get(userId.toLowerCase());
    if (user?.scenario === 'consentMissing' || (options.checkRoles && !roles.some((r) => accepted.includes(r))))
      return answer(
        403,
        'Forbidden',
        `Missing role permissions on the request. API requires one of '${accepted.join(', ')}'. Roles on the request '${roles.join(', ')}'.`,
      );
    if (user?.scenario === 'throttled' && !throttledOnce.has(user.id.toLowerCase())) {
      throttledOnce.add(user.id.toLowerCase());
      const seconds = String(options.throttleSeconds ?? 1);
      return answer(429, 'TooManyRequests', 'Too many requests.', { 'retry-after': seconds });
    }
    if (
      user === undefined ||
      user.scenario === 'unknownUser' ||
      user.tenantId.toLowerCase() !== String(record.claims.tid).toLowerCase()
    )
      return answer(404, 'NotFound', `User '${userId}' was not found.`);

    if (operation === 'install') {
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8')) as unknown;
      } catch {
        return answer(400, 'BadRequest', 'Invalid request body.');
      }
      record.body = body;
      const bind = (body as Record<string, unknown> | null)?.['teamsApp@odata.bind'];
      const catalogId = typeof bind === 'string' ? bind.match(/\/appCatalogs\/teamsApps\/([^/?#]+)$/)?.[1] : undefined;
      if (catalogId === undefined) return answer(400, 'BadRequest', "Missing or invalid 'teamsApp@odata.bind'.");
      const app = apps.get(decodeURIComponent(catalogId));
      if (app === undefined || user.scenario === 'unknownApp')
        return answer(404, 'NotFound', `Teams app '${catalogId}' was not found in the app catalog.`);
      if (user.scenario === 'notManageable')
        return answer(
          403,
          'Forbidden',
          `AAD App Id '${String(record.claims.appid)}' is not allowed to manage the Teams App '${app.catalogId}'.`,
        );
      if (user.scenario === 'alreadyInstalled' || installsOf(user.id).some((i) => i.catalogId === app.catalogId))
        return answer(409, 'Conflict', 'App is already installed.');
      const event: GraphInstallEvent = {
        userId: user.id,
        tenantId: user.tenantId,
        catalogId: app.catalogId,
        botAppId: app.botAppId,
        installationId: Buffer.from(`${user.id}##${app.catalogId}`).toString('base64'),
        chatId: `19:${user.id}_${app.botAppId}@unq.gbl.spaces`,
      };
      installed.set(user.id.toLowerCase(), [...installsOf(user.id), event]);
      record.status = 201;
      sendJson(res, 201, undefined);
      const listener = onInstall;
      if (listener)
        setImmediate(() =>
          Promise.resolve(listener(event)).catch((err: unknown) =>
            options.log?.(`[emulator] graph: onInstall failed: ${err instanceof Error ? err.message : String(err)}`),
          ),
        );
      return;
    }
    if (operation === 'list') {
      const filter = query.get('$filter');
      const wanted = filter === null ? undefined : filter.match(/^teamsApp\/id eq '([^']*)'$/)?.[1];
      if (filter !== null && wanted === undefined) return answer(400, 'BadRequest', 'Invalid filter clause.');
      const expand = (query.get('$expand') ?? '').split(',').includes('teamsApp');
      const value = installsOf(user.id)
        .filter((i) => wanted === undefined || i.catalogId === wanted)
        .map((i) => {
          const app = apps.get(i.catalogId);
          const teamsApp = {
            id: i.catalogId,
            externalId: app?.externalId ?? null,
            displayName: app?.displayName ?? 'Teams Courier',
            distributionMethod: 'organization',
          };
          return { id: i.installationId, ...(expand ? { teamsApp } : {}) };
        });
      record.status = 200;
      return sendJson(res, 200, {
        '@odata.context': `${origin}/v1.0/$metadata#users('${user.id}')/teamwork/installedApps`,
        value,
      });
    }
    const found = installsOf(user.id).find((i) => i.installationId === installationId);
    if (found === undefined)
      return answer(404, 'NotFound', `App installation '${installationId ?? ''}' was not found.`);
    record.status = 200;
    sendJson(res, 200, {
      '@odata.context': `${origin}/v1.0/$metadata#chats/$entity`,
      id: found.chatId,
      chatType: 'oneOnOne',
      tenantId: found.tenantId,
    });
  };

  const server = await startStubServer('graph', handler, options);
  origin = server.origin;

  return {
    origin,
    port: server.port,
    baseUrl: `${origin}/v1.0/`,
    requests,
    addUser: (user) => void users.set(user.id.toLowerCase(), user),
    setScenario(userId, scenario) {
      const user = users.get(userId.toLowerCase());
      if (user === undefined) throw new Error(`graph stub: no user ${userId}`);
      users.set(userId.toLowerCase(), { ...user, scenario });
      throttledOnce.delete(userId.toLowerCase());
    },
    addApp: (app) => void apps.set(app.catalogId, app),
    installations: (userId) => installsOf(userId),
    failNext: (failure) => void failures.push({ failure, remaining: failure.times ?? 1 }),
    setOnInstall: (listener) => {
      onInstall = listener;
    },
    reset() {
      requests.length = 0;
      failures.length = 0;
      installed.clear();
      throttledOnce.clear();
    },
    close: () => server.close(),
  };
}
