/**
 * A local Entra ID authority for bot -> connector tokens (bot-connector.md §2), good enough for the
 * real `@azure/identity` credentials with `authorityHost: <origin>` and `disableInstanceDiscovery: true`.
 *
 * What MSAL node (via @azure/identity 4.x) requests, read from msal-common `Authority.ts`:
 *   1. GET  {origin}/{tenant}/v2.0/.well-known/openid-configuration
 *      (`defaultOpenIdConfigurationEndpoint`; instance discovery is skipped because identity passes
 *      the authority as a known authority when `disableInstanceDiscovery` is set). The `issuer` must
 *      have the authority's scheme+host+port (`validateIssuer` rule 1) and the document needs
 *      `authorization_endpoint`, `token_endpoint`, `issuer`, `jwks_uri` (`isOpenIdConfigResponse`).
 *   2. POST {token_endpoint} = {origin}/{tenant}/oauth2/v2.0/token, form-encoded client_credentials
 *      with `client_secret`, or `client_assertion` + `client_assertion_type` for certificates.
 * Managed identity (App Service shape, msal-node `ManagedIdentitySources/AppService.ts`):
 *   GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...&client_id=... with header
 *   X-IDENTITY-HEADER: {IDENTITY_HEADER}; answers {access_token, expires_on, resource, token_type, client_id}.
 *
 * Access tokens are v1-shaped like real Bot Framework tokens (§2.1 example): `aud`
 * `https://api.botframework.com`, `iss` `https://sts.windows.net/{tid}/`, `appid`, `tid`.
 *
 * Tokens for a registered API (`apis`, e.g. `api://teams-courier/.default`, what flows present to
 * `/api/notify`) look like Entra's app-only access tokens for the API's `accessTokenAcceptedVersion`:
 *   v1 (Entra's default): `aud` = the resource as requested (Application ID URI or client id),
 *      `iss` `https://sts.windows.net/{tid}/`, `appid`, `appidacr`, `idp`, `ver` `1.0`, header `x5t`;
 *   v2: `aud` = the API's client id, `iss` `{authority}/{tid}/v2.0`, `azp`, `azpacr`, `ver` `2.0`.
 * Both carry `oid` = `sub` = the caller's service principal object id (stable per app and tenant,
 * as in Entra), `tid`, `idtyp: app` (Entra emits it only as an optional claim), `roles` when the
 * caller has app roles on the API, and never `scp` (client credentials have no user).
 * Source: learn.microsoft.com/entra/identity-platform/access-token-claims-reference.
 */
import { createHash, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { type TlsMaterial, header, readBody, sendJson, splitUrl, startStubServer } from './localServer';
import { generateSigningKey, nowSeconds, type PublishedJwks, type SigningKey } from './tokens';

/** Tenant names that Entra resolves to a fixed GUID (the Bot Framework tenant of §2.1). */
const WELL_KNOWN_TENANTS: Readonly<Record<string, string>> = {
  'botframework.com': 'd6d49420-f39b-4df7-a1dc-d59a935871db',
};

export const MSI_PATH = '/msi/token';
const DEFAULT_RESOURCES = ['https://api.botframework.com', 'https://api.botframework.us'];

export interface EntraApp {
  readonly clientId: string;
  /** Home tenant (GUID). */
  readonly tenantId: string;
  readonly clientSecret?: string;
  /** PEM certificate (or public key) whose private key signs `client_assertion`s. */
  readonly certificatePem?: string;
  /**
   * Other tenant path segments this app may request tokens from, e.g. `botframework.com` for a
   * MultiTenant bot. Requests to any other tenant fail with AADSTS700016 (§2.3).
   */
  readonly extraTenants?: readonly string[];
  /** May get tokens from the managed-identity endpoint (UserAssignedMSI bots, §2.1). */
  readonly managedIdentity?: boolean;
  /**
   * The object id of the app's service principal (or managed identity) in its home tenant: the
   * `oid` and `sub` of its app-only tokens. Default: a UUID derived from the client id and tenant.
   */
  readonly objectId?: string;
}

/** A web API registered in the emulated directory that callers may get app-only tokens for. */
export interface EntraApi {
  /** Application ID URI, e.g. `api://teams-courier`: scope `<uri>/.default`. */
  readonly identifierUri: string;
  /** The API's application (client) id: the `aud` of v2 tokens; scope `<clientId>/.default` works too. */
  readonly clientId: string;
  /** The app registration's `accessTokenAcceptedVersion`: 1 (Entra's default when unset) or 2. */
  readonly tokenVersion?: 1 | 2;
  /** App roles assigned to callers, by caller client id: the `roles` claim. */
  readonly appRoles?: Readonly<Record<string, readonly string[]>>;
}

export interface EntraFailure {
  /** 401 invalid_client, 400, 500, 503 ... */
  readonly status: number;
  /** OAuth `error`; default from the status (`invalid_client` for 401, `temporarily_unavailable` for 5xx). */
  readonly error?: string;
  readonly description?: string;
  /** Only requests to this tenant path segment; default any. */
  readonly tenant?: string;
  /** Which endpoint: token (default), msi, metadata or any. */
  readonly endpoint?: 'token' | 'msi' | 'metadata' | 'any';
  /** Number of requests to fail; default 1. `Infinity` until cleared. */
  readonly times?: number;
  /** Destroy the connection instead of answering. */
  readonly drop?: boolean;
}

export interface EntraRequestRecord {
  readonly time: number;
  readonly method: string;
  readonly path: string;
  readonly tenant: string | undefined;
  readonly kind: 'metadata' | 'token' | 'msi' | 'keys' | 'other';
  readonly clientId?: string;
  readonly grantType?: string;
  readonly scope?: string;
  readonly credential?: 'secret' | 'assertion' | 'managedIdentity' | 'none';
  status: number | null;
  error?: string;
}

export interface IssuedTokenClaims extends JWTPayload {
  /** v1 tokens. */
  appid?: string;
  /** v2 tokens. */
  azp?: string;
  oid: string;
  tid: string;
  idtyp: 'app';
  roles?: string[];
  ver: '1.0' | '2.0';
}

export interface EntraServerOptions {
  readonly apps?: readonly EntraApp[];
  /** `expires_in` of issued tokens; default 3600 (§2.1 response example). */
  readonly tokenLifetimeSeconds?: number;
  /** Resources a `<resource>/.default` scope may name; default the public and US gov Bot Framework. */
  readonly resources?: readonly string[];
  /** Web APIs callers may get app-only tokens for (by Application ID URI or client id). */
  readonly apis?: readonly EntraApi[];
  /** Secret for the X-IDENTITY-HEADER check; default random. */
  readonly msiHeader?: string;
  readonly tls?: TlsMaterial;
  readonly log?: (line: string) => void;
}

export interface EntraServer {
  readonly origin: string;
  readonly port: number;
  /** Value for `authorityHost` / BOT_AUTHORITY_HOST. */
  readonly authorityHost: string;
  /** Value for IDENTITY_ENDPOINT (App Service managed identity). */
  readonly msiEndpoint: string;
  /** Value for IDENTITY_HEADER. */
  readonly msiHeader: string;
  readonly requests: readonly EntraRequestRecord[];
  /** Token requests (client credentials and managed identity) that reached the endpoint, per tenant path segment (or the MI app's tenant); all tenants if omitted. */
  tokenRequests(tenant?: string): number;
  /** Tokens actually issued, per tenant; all if omitted. */
  tokensIssued(tenant?: string): number;
  addApp(app: EntraApp): void;
  removeApp(clientId: string): boolean;
  failNext(failure: EntraFailure): void;
  clearFailures(): void;
  /** The public keys that sign access tokens (for the connector stub). */
  jwks(): PublishedJwks;
  /** Verifies a token issued here (signature, `aud` in the resources or APIs); returns its claims. */
  verifyAccessToken(token: string): Promise<IssuedTokenClaims>;
  /** Issues a token directly (tests that do not want MSAL in the loop). `resource` may name an API. */
  issueToken(options: {
    clientId: string;
    tenantId: string;
    resource?: string;
    lifetimeSeconds?: number;
    key?: SigningKey;
  }): Promise<string>;
  /** The `oid` of an app's tokens in a tenant (its service principal's object id). */
  objectIdOf(clientId: string, tenantId: string): string;
  resetCounters(): void;
  close(): Promise<void>;
}

interface OAuthError {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
}

function oauthError(
  error: string,
  code: number,
  description: string,
  correlationId: string = randomUUID(),
): OAuthError {
  return {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${correlationId} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date()
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z'),
    trace_id: randomUUID(),
    correlation_id: correlationId,
  };
}

function defaultFailureError(status: number): { error: string; code: number; description: string } {
  if (status === 401) return { error: 'invalid_client', code: 7000215, description: 'Invalid client secret provided.' };
  if (status === 400) return { error: 'invalid_request', code: 900144, description: 'Emulated bad request.' };
  if (status === 429) return { error: 'temporarily_unavailable', code: 50196, description: 'Emulated throttling.' };
  return { error: 'temporarily_unavailable', code: 50001, description: 'Emulated server error.' };
}

export async function startEntraServer(options: EntraServerOptions = {}): Promise<EntraServer> {
  const apps = new Map<string, EntraApp>();
  for (const app of options.apps ?? []) apps.set(app.clientId, app);
  const resources = options.resources ?? DEFAULT_RESOURCES;
  const apis = options.apis ?? [];
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const msiHeader = options.msiHeader ?? randomBytes(16).toString('hex');
  const signingKey = await generateSigningKey({ endorsements: [] });
  const requests: EntraRequestRecord[] = [];
  const failures: { failure: EntraFailure; remaining: number }[] = [];
  const requested = new Map<string, number>();
  const issued = new Map<string, number>();
  const localJwks = createLocalJWKSet({ keys: [signingKey.publicJwk] });
  let origin = '';

  const bump = (map: Map<string, number>, key: string): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };
  const resolveTenant = (tenant: string): string => WELL_KNOWN_TENANTS[tenant.toLowerCase()] ?? tenant;

  /** The API a resource (Application ID URI or client id) names, if it is one. */
  const findApi = (resource: string): EntraApi | undefined =>
    apis.find((a) => a.identifierUri === resource || a.clientId === resource);

  /** Entra gives each app one service principal per tenant; its object id is stable. */
  const objectIdOf = (clientId: string, tenantId: string): string => {
    const tid = resolveTenant(tenantId);
    const app = apps.get(clientId);
    if (app?.objectId !== undefined && resolveTenant(app.tenantId) === tid) return app.objectId;
    const hex = createHash('sha256').update(`${clientId.toLowerCase()}\u0000${tid.toLowerCase()}`).digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  };

  const issueToken = async (opts: {
    clientId: string;
    tenantId: string;
    resource?: string;
    lifetimeSeconds?: number;
    key?: SigningKey;
    credential?: 'secret' | 'assertion' | 'managedIdentity';
  }): Promise<string> => {
    const now = nowSeconds();
    const tid = resolveTenant(opts.tenantId);
    const key = opts.key ?? signingKey;
    const resource = opts.resource ?? 'https://api.botframework.com';
    const api = findApi(resource);
    const oid = objectIdOf(opts.clientId, tid);
    // appidacr / azpacr: 1 = client secret, 2 = certificate, 0 = managed identity / public client.
    const acr = opts.credential === 'assertion' ? '2' : opts.credential === 'managedIdentity' ? '0' : '1';
    const roles = api?.appRoles?.[opts.clientId];
    const common = {
      iat: now,
      nbf: now,
      exp: now + (opts.lifetimeSeconds ?? lifetime),
      idtyp: 'app',
      oid,
      ...(roles === undefined || roles.length === 0 ? {} : { roles: [...roles] }),
      sub: oid,
      tid,
      uti: randomBytes(16).toString('base64url'),
    };
    if (api?.tokenVersion === 2) {
      return new SignJWT({
        aud: api.clientId,
        iss: `${origin}/${tid}/v2.0`,
        azp: opts.clientId,
        azpacr: acr,
        ...common,
        ver: '2.0',
      })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
        .sign(key.privateKey);
    }
    return new SignJWT({
      aud: resource,
      iss: `https://sts.windows.net/${tid}/`,
      appid: opts.clientId,
      appidacr: acr,
      idp: `https://sts.windows.net/${tid}/`,
      ...common,
      ver: '1.0',
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid, x5t: key.kid })
      .sign(key.privateKey);
  };

  const takeFailure = (
    endpoint: 'token' | 'msi' | 'metadata',
    tenant: string | undefined,
  ): EntraFailure | undefined => {
    const index = failures.findIndex(
      ({ failure }) =>
        (failure.endpoint === 'any' || (failure.endpoint ?? 'token') === endpoint) &&
        (failure.tenant === undefined || failure.tenant === tenant),
    );
    const entry = failures[index];
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) failures.splice(index, 1);
    return entry.failure;
  };

  /** Answers an injected failure; returns true when it did. */
  const applyFailure = (
    failure: EntraFailure | undefined,
    req: IncomingMessage,
    res: ServerResponse,
    record: EntraRequestRecord,
  ): boolean => {
    if (!failure) return false;
    if (failure.drop) {
      record.status = null;
      record.error = 'dropped';
      req.socket.destroy();
      return true;
    }
    const defaults = defaultFailureError(failure.status);
    const error = failure.error ?? defaults.error;
    record.status = failure.status;
    record.error = error;
    sendJson(res, failure.status, oauthError(error, defaults.code, failure.description ?? defaults.description));
    return true;
  };

  const metadataFor = (tenant: string): Record<string, unknown> => {
    const tid = resolveTenant(tenant);
    // As login.microsoftonline.com does: endpoints name the resolved tenant id.
    return {
      token_endpoint: `${origin}/${tid}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${origin}/${tid}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${origin}/${tid}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${origin}/oidc/userinfo`,
      authorization_endpoint: `${origin}/${tid}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${origin}/${tid}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${origin}/${tid}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
      kerberos_endpoint: `${origin}/${tid}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  };

  const appAllowsTenant = (app: EntraApp, tenant: string): boolean => {
    const wanted = resolveTenant(tenant);
    return [app.tenantId, ...(app.extraTenants ?? [])].some((t) => resolveTenant(t) === wanted);
  };

  const verifyAssertion = async (app: EntraApp, assertion: string): Promise<string | undefined> => {
    if (!app.certificatePem) return 'No certificate is registered for this application.';
    try {
      const key = createPublicKey(app.certificatePem);
      const { payload } = await jwtVerify(assertion, key, { clockTolerance: 300 });
      if (payload.iss !== app.clientId || payload.sub !== app.clientId)
        return 'Client assertion iss/sub must be the client id.';
      return undefined;
    } catch (err) {
      return `Client assertion failed signature validation (${err instanceof Error ? err.message : String(err)}).`;
    }
  };

  const handleToken = async (
    req: IncomingMessage,
    res: ServerResponse,
    tenant: string,
    pathname: string,
  ): Promise<void> => {
    const raw = (await readBody(req, 256 * 1024)).toString('utf8');
    const form = new URLSearchParams(raw);
    const clientId = form.get('client_id') ?? undefined;
    const grantType = form.get('grant_type') ?? undefined;
    const scope = form.get('scope') ?? undefined;
    const credential = form.has('client_assertion') ? 'assertion' : form.has('client_secret') ? 'secret' : 'none';
    const record: EntraRequestRecord = {
      time: Date.now(),
      method: req.method ?? 'POST',
      path: pathname,
      tenant,
      kind: 'token',
      ...(clientId !== undefined ? { clientId } : {}),
      ...(grantType !== undefined ? { grantType } : {}),
      ...(scope !== undefined ? { scope } : {}),
      credential,
      status: null,
    };
    requests.push(record);
    bump(requested, tenant);
    const fail = (status: number, error: string, code: number, description: string): void => {
      record.status = status;
      record.error = error;
      options.log?.(
        `[emulator] entra: token request for ${clientId ?? '?'} in ${tenant} failed: ${error} AADSTS${code}`,
      );
      sendJson(res, status, oauthError(error, code, description, header(req, 'client-request-id')));
    };

    if (applyFailure(takeFailure('token', tenant), req, res, record)) return;
    if (grantType !== 'client_credentials') {
      return fail(
        400,
        'unsupported_grant_type',
        70003,
        `The app requested an unsupported grant type '${grantType ?? ''}'.`,
      );
    }
    const app = clientId === undefined ? undefined : apps.get(clientId);
    if (!app || !appAllowsTenant(app, tenant)) {
      // The error a SingleTenant bot gets when it asks the botframework.com tenant (§2.3).
      return fail(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId ?? ''}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    if (credential === 'secret') {
      if (app.clientSecret === undefined || form.get('client_secret') !== app.clientSecret) {
        return fail(
          401,
          'invalid_client',
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
        );
      }
    } else if (credential === 'assertion') {
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
        return fail(
          400,
          'invalid_request',
          90058,
          "The request must contain client_assertion_type 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
        );
      }
      const problem = await verifyAssertion(app, form.get('client_assertion') ?? '');
      if (problem) return fail(401, 'invalid_client', 700027, problem);
    } else {
      return fail(
        401,
        'invalid_client',
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    }
    const resource = scope
      ?.split(' ')
      .find((s) => s.endsWith('/.default'))
      ?.slice(0, -'/.default'.length);
    if (resource === undefined || (!resources.includes(resource) && findApi(resource) === undefined)) {
      return fail(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    const accessToken = await issueToken({ clientId: app.clientId, tenantId: tenant, resource, credential });
    bump(issued, tenant);
    record.status = 200;
    sendJson(res, 200, {
      token_type: 'Bearer',
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
    });
  };

  const handleMsi = async (
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    pathname: string,
  ): Promise<void> => {
    const clientId = query.get('client_id') ?? undefined;
    const resource = query.get('resource') ?? undefined;
    const app = clientId === undefined ? undefined : apps.get(clientId);
    const tenant = app?.tenantId ?? 'msi';
    const record: EntraRequestRecord = {
      time: Date.now(),
      method: req.method ?? 'GET',
      path: pathname,
      tenant,
      kind: 'msi',
      ...(clientId !== undefined ? { clientId } : {}),
      ...(resource !== undefined ? { scope: resource } : {}),
      credential: 'managedIdentity',
      status: null,
    };
    requests.push(record);
    bump(requested, tenant);
    if (applyFailure(takeFailure('msi', tenant), req, res, record)) return;
    const reject = (status: number, message: string): void => {
      record.status = status;
      record.error = message;
      sendJson(res, status, { statusCode: status, message, correlationId: randomUUID() });
    };
    if (header(req, 'x-identity-header') !== msiHeader) return reject(401, 'Missing or invalid X-IDENTITY-HEADER.');
    if (query.get('api-version') !== '2019-08-01') return reject(400, 'Unsupported api-version.');
    if (!app || !app.managedIdentity) return reject(400, `Identity not found for client_id '${clientId ?? ''}'.`);
    const plainResource = resource?.replace(/\/\.default$/, '');
    if (plainResource === undefined || (!resources.includes(plainResource) && findApi(plainResource) === undefined))
      return reject(400, `Resource '${resource ?? ''}' is not allowed.`);
    const accessToken = await issueToken({
      clientId: app.clientId,
      tenantId: app.tenantId,
      resource: plainResource,
      credential: 'managedIdentity',
    });
    bump(issued, tenant);
    record.status = 200;
    sendJson(res, 200, {
      access_token: accessToken,
      expires_on: String(nowSeconds() + lifetime),
      resource: plainResource,
      token_type: 'Bearer',
      client_id: app.clientId,
    });
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname, query } = splitUrl(req.url);
    const method = req.method ?? 'GET';
    if (pathname === MSI_PATH && method === 'GET') return handleMsi(req, res, query, pathname);

    let segments: string[];
    try {
      segments = pathname
        .split('/')
        .filter(Boolean)
        .map((s) => decodeURIComponent(s));
    } catch {
      sendJson(res, 400, oauthError('invalid_request', 90002, 'Malformed path.'));
      return;
    }
    const tenant = segments[0];
    const rest = segments.slice(1).join('/');
    if (tenant !== undefined && method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      const record: EntraRequestRecord = {
        time: Date.now(),
        method,
        path: pathname,
        tenant,
        kind: 'metadata',
        status: null,
      };
      requests.push(record);
      if (applyFailure(takeFailure('metadata', tenant), req, res, record)) return;
      record.status = 200;
      sendJson(res, 200, metadataFor(tenant));
      return;
    }
    if (tenant !== undefined && method === 'POST' && rest === 'oauth2/v2.0/token')
      return handleToken(req, res, tenant, pathname);
    if (tenant !== undefined && method === 'GET' && rest === 'discovery/v2.0/keys') {
      requests.push({ time: Date.now(), method, path: pathname, tenant, kind: 'keys', status: 200 });
      sendJson(res, 200, { keys: [signingKey.publicJwk] });
      return;
    }
    requests.push({ time: Date.now(), method, path: pathname, tenant, kind: 'other', status: 404 });
    sendJson(res, 404, oauthError('invalid_request', 90002, `No emulated endpoint for ${method} ${pathname}.`));
  };

  const server = await startStubServer('entra', handler, options);
  origin = server.origin;

  return {
    origin,
    port: server.port,
    authorityHost: origin,
    msiEndpoint: `${origin}${MSI_PATH}`,
    msiHeader,
    requests,
    tokenRequests: (tenant) =>
      tenant === undefined ? [...requested.values()].reduce((a, b) => a + b, 0) : (requested.get(tenant) ?? 0),
    tokensIssued: (tenant) =>
      tenant === undefined ? [...issued.values()].reduce((a, b) => a + b, 0) : (issued.get(tenant) ?? 0),
    addApp: (app) => void apps.set(app.clientId, app),
    removeApp: (clientId) => apps.delete(clientId),
    failNext(failure) {
      failures.push({ failure, remaining: failure.times ?? 1 });
    },
    clearFailures() {
      failures.length = 0;
    },
    jwks: () => ({ keys: [structuredClone(signingKey.publicJwk)] }),
    async verifyAccessToken(token) {
      const audience = [...resources, ...apis.flatMap((a) => [a.identifierUri, a.clientId])];
      const { payload } = await jwtVerify(token, localJwks, { audience, algorithms: ['RS256'], clockTolerance: 300 });
      return payload as IssuedTokenClaims;
    },
    issueToken: (opts) => issueToken(opts),
    objectIdOf,
    resetCounters() {
      requested.clear();
      issued.clear();
      requests.length = 0;
    },
    close: () => server.close(),
  };
}
