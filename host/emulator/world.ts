/**
 * One stub world: the Bot Framework token issuer (OpenID metadata and keys), the Entra authority and
 * the Bot Connector, on free loopback ports, wired to one bot, plus the app settings that point an
 * app at them. The emulator (`npm start` without MicrosoftAppId), the end-to-end and integration
 * tests, the chaos suite and the benchmark all start theirs here, so they cannot drift apart.
 *
 * With `graph`, the world also runs Microsoft Graph for proactive installation (graphServer.ts,
 * docs/graph-install.md), wired as Teams is: Graph accepts only the Entra stub's Graph tokens and
 * checks their roles, an installation puts the bot in the user's roster at the Connector (before
 * that, creating the user's chat is refused), and Teams' installationUpdate goes to the app's
 * /api/messages when the world knows where the app is. The world's directory always knows Graph,
 * and the bot holds TeamsAppInstallation.ReadWriteSelfForUser.All there (admin consent) unless
 * `graph.consent` is false, so `startStubGraph` can add Graph to a world started without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { personalInstallationUpdate, postActivity, signActivity } from './activities';
import { type ConnectorServer, type ConnectorServerOptions, startConnectorServer } from './connectorServer';
import { type EntraApi, type EntraApp, type EntraServer, startEntraServer } from './entraServer';
import { type GraphInstallEvent, type GraphScenario, type GraphServer, startGraphServer } from './graphServer';
import { type OpenIdServer, startOpenIdServer } from './openIdServer';
import { ChannelTokenIssuer } from './tokens';

/** The audience of the bot's tokens for the Bot Connector (public cloud). */
const BOT_CONNECTOR_AUDIENCE = 'https://api.botframework.com';

/** Microsoft Graph in the emulated directory: its resource (the `aud` of its tokens) and app id. */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
/** The application permission proactive installation needs (docs/graph-install.md, step 4). */
export const GRAPH_INSTALL_PERMISSION = 'TeamsAppInstallation.ReadWriteSelfForUser.All';
/** The bot's Teams app in the Graph stub's organisation catalog, unless a world names its own. */
export const STUB_CATALOG_ID = '00000000-0000-4000-8000-00000000ca7a';

export interface StubGraphUser {
  /** The user's Entra object id (what jobs name in `to.aadObjectId`). */
  readonly aadObjectId: string;
  /** Default: the bot's tenant (a SingleTenant bot installs only there). */
  readonly tenantId?: string;
  readonly name?: string;
  /** Teams' `29:` id for the user; default derived from the object id. */
  readonly teamsUserId?: string;
  /**
   * What Graph answers for the user (graphServer.ts); default `ok`: the app is not installed yet,
   * and installing it works. With `alreadyInstalled` the Connector knows the user's chat at once.
   */
  readonly scenario?: GraphScenario;
}

export interface StubGraphOptions {
  /** The catalog id of the bot's Teams app (TEAMS_APP_CATALOG_ID); default STUB_CATALOG_ID. */
  readonly catalogId?: string;
  readonly users?: readonly StubGraphUser[];
  /**
   * The bot holds TeamsAppInstallation.ReadWriteSelfForUser.All with admin consent; default true.
   * Only startStubWorld reads it (it registers Graph in the directory); without consent every
   * Graph call is refused with 403 "Missing role permissions".
   */
  readonly consent?: boolean;
  /** Retry-After of the `throttled` scenario, in seconds; default 1. */
  readonly throttleSeconds?: number;
  /** How long after an installation the Connector still refuses the user's chat (the roster catching up); default 0. */
  readonly rosterDelayMs?: number;
  /**
   * The app's base URL (read at each installation), where Teams' installationUpdate for each new
   * installation is posted, signed; none (or undefined returned): no activity is sent.
   */
  readonly appBaseUrl?: string | (() => string | undefined);
}

/** What the world's Teams said to the app after an installation. */
export interface GraphNotification {
  readonly userId: string;
  readonly conversationId: string;
  /** The app's answer to the installationUpdate, or the reason it could not be delivered. */
  readonly status: number | string;
}

export interface StubGraph {
  readonly server: GraphServer;
  readonly catalogId: string;
  /** GRAPH_BASE_URL and TEAMS_APP_CATALOG_ID. */
  readonly settings: Readonly<Record<string, string>>;
  /** Adds a user to Graph and, not yet installed for them (unless `alreadyInstalled`), to the Connector. */
  addUser(user: StubGraphUser): void;
  /** The `29:` id the Connector gives a user of this Graph. */
  teamsUserId(aadObjectId: string): string;
  /** Each installationUpdate sent to the app, oldest first. */
  readonly notifications: readonly GraphNotification[];
  /** Resolves when every installation so far has been handled (roster, activity). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** What a Graph stub needs from its world. */
export interface StubGraphWorld {
  readonly bot: { readonly appId: string; readonly tenantId: string };
  readonly entra: EntraServer;
  readonly connector: ConnectorServer;
  /** Signs the installationUpdate activities; without it none are sent. */
  readonly issuer?: ChannelTokenIssuer;
  readonly log?: (line: string) => void;
}

/** Graph as the world's directory registers it: the bot's role is its admin consent. */
function graphApi(botAppId: string, consent: boolean): EntraApi {
  return {
    identifierUri: GRAPH_RESOURCE,
    clientId: GRAPH_APP_ID,
    ...(consent ? { appRoles: { [botAppId]: [GRAPH_INSTALL_PERMISSION] } } : {}),
  };
}

/**
 * Starts Microsoft Graph for a world: tokens verified against its Entra stub (Graph audience and
 * roles), the bot's app in the catalog, and installations that reach the Connector and the app.
 */
export async function startStubGraph(world: StubGraphWorld, options: StubGraphOptions = {}): Promise<StubGraph> {
  const { bot, entra, connector, issuer, log } = world;
  const catalogId = options.catalogId ?? STUB_CATALOG_ID;
  const users = new Map<string, Required<Pick<StubGraphUser, 'teamsUserId' | 'tenantId'>> & StubGraphUser>();
  const notifications: GraphNotification[] = [];
  const pending = new Set<Promise<void>>();
  const teamsUserId = (aadObjectId: string): string =>
    users.get(aadObjectId.toLowerCase())?.teamsUserId ??
    `29:1${createHash('sha256').update(aadObjectId.toLowerCase()).digest('base64url').slice(0, 40)}`;
  // Inbound activities come from the region Teams uses for the emulator's own user.
  const serviceUrl = connector.serviceUrl('amer');

  const installed = async (event: GraphInstallEvent): Promise<void> => {
    if (options.rosterDelayMs) await new Promise((resolve) => setTimeout(resolve, options.rosterDelayMs));
    const user = users.get(event.userId.toLowerCase());
    const account = {
      id: teamsUserId(event.userId),
      aadObjectId: event.userId,
      ...(user?.name === undefined ? {} : { name: user.name }),
    };
    // The bot is in the user's roster now: creating the chat works.
    connector.registerUser({ ...account, tenantId: event.tenantId, installed: true });
    const base = typeof options.appBaseUrl === 'function' ? options.appBaseUrl() : options.appBaseUrl;
    if (base === undefined || issuer === undefined) return;
    const conversationId = connector.personalConversationId(bot.appId, event.tenantId, account.id);
    const activity = personalInstallationUpdate({
      appId: bot.appId,
      tenantId: event.tenantId,
      serviceUrl,
      user: account,
      conversationId,
      action: 'add',
    });
    let status: number | string;
    try {
      status = (await postActivity(base, await signActivity(activity, issuer, { appId: bot.appId }))).status;
    } catch (err) {
      status = err instanceof Error ? err.message : String(err);
    }
    notifications.push({ userId: event.userId, conversationId, status });
    log?.(
      `[emulator] graph: installationUpdate (add) for ${event.userId} in ${conversationId} -> app answered ${status}`,
    );
  };

  const server = await startGraphServer({
    apps: [{ catalogId, botAppId: bot.appId, displayName: 'Teams Courier' }],
    audience: GRAPH_RESOURCE,
    verifyToken: (token) => entra.verifyAccessToken(token),
    checkRoles: true,
    ...(options.throttleSeconds === undefined ? {} : { throttleSeconds: options.throttleSeconds }),
    onInstall: (event) => {
      const done = installed(event).finally(() => pending.delete(done));
      pending.add(done);
      return done;
    },
    ...(log === undefined ? {} : { log }),
  });

  const addUser = (user: StubGraphUser): void => {
    const tenantId = user.tenantId ?? bot.tenantId;
    const entry = { ...user, tenantId, teamsUserId: user.teamsUserId ?? teamsUserId(user.aadObjectId) };
    users.set(user.aadObjectId.toLowerCase(), entry);
    server.addUser({
      id: user.aadObjectId,
      tenantId,
      ...(user.scenario === undefined ? {} : { scenario: user.scenario }),
    });
    connector.registerUser({
      id: entry.teamsUserId,
      tenantId,
      aadObjectId: user.aadObjectId,
      ...(user.name === undefined ? {} : { name: user.name }),
      installed: user.scenario === 'alreadyInstalled',
    });
  };
  for (const user of options.users ?? []) addUser(user);

  return {
    server,
    catalogId,
    settings: { GRAPH_BASE_URL: server.baseUrl, TEAMS_APP_CATALOG_ID: catalogId },
    addUser,
    teamsUserId,
    notifications,
    async settled() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    close: () => server.close(),
  };
}

export interface StubBot {
  /** MicrosoftAppId: the audience of inbound tokens, the client id of outbound ones. */
  readonly appId: string;
  /** MicrosoftAppTenantId: the bot's home tenant (a SingleTenant bot). */
  readonly tenantId: string;
  /** MicrosoftAppPassword. Default: random. */
  readonly secret?: string;
  /** A certificate the Entra stub also accepts for the bot (BOT_CERTIFICATE). */
  readonly certificatePem?: string;
  /** The Entra stub also issues the bot tokens from its managed-identity endpoint. */
  readonly managedIdentity?: boolean;
}

export interface StubWorldOptions {
  readonly bot: StubBot;
  /** More Entra apps (flow callers, say) and the web APIs they may get tokens for. */
  readonly entra?: { readonly apps?: readonly EntraApp[]; readonly apis?: readonly EntraApi[] };
  /** Connector stub options (rate limits, faults, its own log ...); auth is always the bot's tokens from the Entra stub. */
  readonly connector?: Omit<ConnectorServerOptions, 'auth'>;
  /** Receives the lines of all three stubs (the connector's own `log` wins for the connector). */
  readonly log?: (line: string) => void;
  /** Also run Microsoft Graph for proactive installation; its settings join appSettings(). */
  readonly graph?: boolean | StubGraphOptions;
}

export interface StubWorld {
  readonly bot: Readonly<Required<Pick<StubBot, 'appId' | 'tenantId' | 'secret'>>>;
  /** Signs channel tokens for inbound activities; its keys are what `openId` publishes. */
  readonly issuer: ChannelTokenIssuer;
  readonly openId: OpenIdServer;
  readonly entra: EntraServer;
  readonly connector: ConnectorServer;
  /** Microsoft Graph, when the world was started with `graph`. */
  readonly graph?: StubGraph;
  /**
   * The app settings (names from src/config.ts) that point the app at this world: MicrosoftAppId,
   * MicrosoftAppPassword, MicrosoftAppType (SingleTenant), MicrosoftAppTenantId,
   * BOT_OPENID_METADATA_URL, BOT_AUTHORITY_HOST, BOT_TRUSTED_SERVICE_URLS (the connector's origin)
   * and BOT_GLOBAL_SERVICE_URL (its `/teams/` serviceUrl); with `graph`, GRAPH_BASE_URL and
   * TEAMS_APP_CATALOG_ID; `extra` is added last.
   */
  appSettings(extra?: Readonly<Record<string, string>>): Record<string, string>;
  /** Stops the stubs; safe to call twice. */
  close(): Promise<void>;
}

export async function startStubWorld(options: StubWorldOptions): Promise<StubWorld> {
  const bot = {
    appId: options.bot.appId,
    tenantId: options.bot.tenantId,
    secret: options.bot.secret ?? randomBytes(24).toString('base64url'),
  };
  const log = options.log ? { log: options.log } : {};
  const graphOptions = options.graph === true ? {} : options.graph === false ? undefined : options.graph;
  const started: { close(): Promise<void> }[] = [];
  try {
    const issuer = await ChannelTokenIssuer.create();
    const openId = await startOpenIdServer({ issuer, ...log });
    started.push(openId);
    const entra = await startEntraServer({
      ...log,
      apps: [
        {
          clientId: bot.appId,
          tenantId: bot.tenantId,
          clientSecret: bot.secret,
          ...(options.bot.certificatePem === undefined ? {} : { certificatePem: options.bot.certificatePem }),
          ...(options.bot.managedIdentity === undefined ? {} : { managedIdentity: options.bot.managedIdentity }),
        },
        ...(options.entra?.apps ?? []),
      ],
      // A caller's own Graph registration wins (the first match is used).
      apis: [...(options.entra?.apis ?? []), graphApi(bot.appId, graphOptions?.consent ?? true)],
    });
    started.push(entra);
    const connector = await startConnectorServer({
      ...log,
      ...options.connector,
      auth: { jwks: () => entra.jwks(), audiences: [BOT_CONNECTOR_AUDIENCE], appIds: [bot.appId] },
    });
    started.push(connector);
    const graph =
      graphOptions === undefined
        ? undefined
        : await startStubGraph({ bot, entra, connector, issuer, ...log }, graphOptions);
    if (graph !== undefined) started.push(graph);

    let closed: Promise<void> | undefined;
    return {
      bot,
      issuer,
      openId,
      entra,
      connector,
      ...(graph === undefined ? {} : { graph }),
      appSettings: (extra = {}) => ({
        MicrosoftAppId: bot.appId,
        MicrosoftAppPassword: bot.secret,
        MicrosoftAppType: 'SingleTenant',
        MicrosoftAppTenantId: bot.tenantId,
        BOT_OPENID_METADATA_URL: openId.metadataUrl,
        BOT_AUTHORITY_HOST: entra.authorityHost,
        BOT_TRUSTED_SERVICE_URLS: connector.origin,
        BOT_GLOBAL_SERVICE_URL: connector.serviceUrl('teams'),
        ...graph?.settings,
        ...extra,
      }),
      close() {
        closed ??= Promise.allSettled(started.map((s) => s.close())).then(() => undefined);
        return closed;
      },
    };
  } catch (err) {
    await Promise.allSettled(started.map((s) => s.close()));
    throw err;
  }
}
