/**
 * The local Teams emulator: a stub world (world.ts: a Bot Framework OpenID issuer, an Entra
 * authority and a Bot Connector stub on free loopback ports, wired to one in-memory bot), plus a
 * small control endpoint that lets `npm run emulator -- say hello` send the app a signed
 * personal-chat message.
 *
 * `startEmulator()` returns the app settings (names from src/config.ts SETTINGS) that point the app
 * at the stubs; the local host merges them into its environment when MicrosoftAppId is not set.
 *
 * Proactive installation (docs/graph-install.md) is on when the app's own setting asks for it:
 * TEAMS_APP_CATALOG_ID set (local.settings.json or the environment; any catalog id), or the
 * `graph` option. The emulator then runs the Graph stub, with the users in EMULATOR_GRAPH_USERS,
 * and hands out GRAPH_BASE_URL (so the app never reaches the real Graph from emulator mode).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import {
  EMULATOR_APP_ID,
  EMULATOR_BOT_NAME,
  EMULATOR_CONVERSATION_ID,
  EMULATOR_TENANT_ID,
  EMULATOR_USER,
  personalInstallationUpdate,
  personalMessage,
  postActivity,
  signActivity,
} from './activities';
import type { ConnectorServer, ConnectorServerOptions, DeliveredActivity } from './connectorServer';
import type { EntraServer } from './entraServer';
import { header, loadTestCertificate, readBody, sendJson, splitUrl } from './localServer';
import type { OpenIdServer } from './openIdServer';
import type { ChannelTokenIssuer } from './tokens';
import { type Activity, type ChannelAccount, isRecord } from './types';
import { startStubWorld, type StubGraphUser } from './world';

export * from './activities';
export * from './certificate';
export { runCli, type CliIo } from './cli';
export * from './connectorServer';
export * from './entraServer';
export * from './faults';
export * from './graphServer';
export * from './localServer';
export * from './openIdServer';
export * from './rateLimiter';
export * from './tokens';
export * from './types';
export * from './waitFor';
export * from './world';

export const CONTROL_PREFIX = '/_emulator/';
/** Relative to the working directory; `.azurite/` is git-ignored. */
export const DEFAULT_CONTROL_FILE = path.join('.azurite', 'emulator-control.json');

export interface ControlFile {
  readonly controlUrl: string;
  /** Bearer secret for the control endpoint (it can make the issuer sign tokens). */
  readonly token: string;
  readonly pid: number;
  readonly appBaseUrl: string;
  readonly startedAt: string;
}

/**
 * The emulator's directory for proactive installation, one user per Graph scenario. The emulator
 * user (EMULATOR_USER) has the app already; any other object id is unknown to Graph
 * (GraphUserUnknown).
 */
export const EMULATOR_GRAPH_USERS = Object.freeze({
  /** Never installed the app: Graph installs it, then the chat is created and the message sent. */
  newcomer: { aadObjectId: '00000000-0000-4000-8000-0000000000a2', name: 'Nia Newcomer' },
  /** Graph answers 403: the tenant's admin never consented (GraphConsentMissing). */
  noConsent: {
    aadObjectId: '00000000-0000-4000-8000-0000000000a3',
    name: 'Cas Consentless',
    scenario: 'consentMissing',
  },
  /** Graph answers 429 once, with Retry-After: retried, then installed and sent. */
  throttled: { aadObjectId: '00000000-0000-4000-8000-0000000000a4', name: 'Tam Throttled', scenario: 'throttled' },
} satisfies Record<string, StubGraphUser>);

export interface StartEmulatorOptions {
  /** Where the app listens, e.g. `http://localhost:7071`; activities go to `${appBaseUrl}/api/messages`. */
  readonly appBaseUrl: string;
  readonly log: (line: string) => void;
  /** Control file path; default `.azurite/emulator-control.json` in the working directory; `false` writes none. */
  readonly controlFile?: string | false;
  /** Connector stub options (rate limits, faults, ...); auth is always wired to the Entra stub. */
  readonly connector?: Omit<ConnectorServerOptions, 'auth' | 'log'>;
  /**
   * Run the Graph stub and turn proactive installation on (`catalogId` default: TEAMS_APP_CATALOG_ID,
   * else STUB_CATALOG_ID). Default: on exactly when TEAMS_APP_CATALOG_ID is set in the environment.
   */
  readonly graph?: true | { readonly catalogId?: string; readonly rosterDelayMs?: number };
}

export interface SayOptions {
  readonly user?: ChannelAccount;
  readonly conversationId?: string;
}

export interface InboundResult {
  /** Status the app answered /api/messages with. */
  readonly status: number;
  readonly body: string;
  readonly activity: Activity;
  /** What the bot sent to the connector while the app handled the activity. */
  readonly deliveries: readonly DeliveredActivity[];
}

export interface EmulatorStatus {
  readonly appId: string;
  readonly tenantId: string;
  readonly appBaseUrl: string;
  readonly connectorOrigin: string;
  readonly serviceUrl: string;
  readonly openIdMetadataUrl: string;
  readonly authorityHost: string;
  readonly stats: ConnectorServer['stats'];
  readonly tokenRequests: number;
  readonly keyDownloads: number;
  /** Proactive installation, when on: the Graph stub and the installations it made. */
  readonly graph?: {
    readonly baseUrl: string;
    readonly catalogId: string;
    readonly installations: readonly { userId: string; tenantId: string }[];
    readonly requests: number;
  };
  readonly recent: readonly {
    time: string;
    operation: string;
    conversationId: string;
    activityId: string;
    text?: string;
  }[];
}

export interface Emulator {
  /** App settings: MicrosoftAppId, MicrosoftAppPassword, MicrosoftAppType, MicrosoftAppTenantId, BOT_OPENID_METADATA_URL, BOT_AUTHORITY_HOST, BOT_TRUSTED_SERVICE_URLS, BOT_GLOBAL_SERVICE_URL. */
  readonly settings: Record<string, string>;
  readonly appId: string;
  readonly appPassword: string;
  readonly tenantId: string;
  readonly issuer: ChannelTokenIssuer;
  readonly openId: OpenIdServer;
  readonly entra: EntraServer;
  readonly connector: ConnectorServer;
  /** The Graph stub, when proactive installation is on. */
  readonly graph?: import('./world').StubGraph;
  /** The serviceUrl inbound activities carry: `<connector origin>/amer/`. */
  readonly serviceUrl: string;
  readonly controlUrl: string;
  readonly controlToken: string;
  say(text: string, options?: SayOptions): Promise<InboundResult>;
  /** Sends a personal-scope installationUpdate (`add` stores the conversation reference in the app). */
  install(action?: 'add' | 'remove', options?: SayOptions): Promise<InboundResult>;
  status(): EmulatorStatus;
  close(): Promise<void>;
}

export async function startEmulator(opts: StartEmulatorOptions): Promise<Emulator> {
  const controlToken = randomBytes(24).toString('base64url');
  const log = opts.log;
  const graphOption = graphOptionOf(opts.graph, process.env.TEAMS_APP_CATALOG_ID);

  const world = await startStubWorld({
    // The test certificate doubles as a client certificate for BOT_CERTIFICATE experiments.
    bot: {
      appId: EMULATOR_APP_ID,
      tenantId: EMULATOR_TENANT_ID,
      certificatePem: loadTestCertificate().cert,
      managedIdentity: true,
    },
    ...(opts.connector ? { connector: opts.connector } : {}),
    ...(graphOption === undefined
      ? {}
      : {
          graph: {
            ...graphOption,
            users: [
              // The emulator user has the app: Graph answers 409, and the chat exists.
              {
                aadObjectId: EMULATOR_USER.aadObjectId,
                name: EMULATOR_USER.name,
                teamsUserId: EMULATOR_USER.id,
                scenario: 'alreadyInstalled',
              },
              ...Object.values(EMULATOR_GRAPH_USERS),
            ],
            // Teams tells the bot about each installation, as it does after a Graph install.
            appBaseUrl: opts.appBaseUrl,
          },
        }),
    log,
  });
  try {
    const { issuer, openId, entra, connector, graph } = world;
    const { appId, tenantId, secret: appPassword } = world.bot;

    // The emulator user and their personal chat with the bot, as if the app were installed.
    connector.registerUser({ ...EMULATOR_USER, tenantId });
    connector.registerConversation({
      id: EMULATOR_CONVERSATION_ID,
      tenantId,
      appId,
      type: 'personal',
      members: [EMULATOR_USER.id],
    });

    const serviceUrl = connector.serviceUrl('amer');
    const settings = world.appSettings();

    const sendInbound = async (activity: Activity): Promise<InboundResult> => {
      const before = connector.delivered.length;
      const signed = await signActivity(activity, issuer, { appId });
      log(
        `[emulator] ${activity.type}${activity.action ? ` (${String(activity.action)})` : ''} from ${activity.from?.id ?? '?'} -> ${opts.appBaseUrl}/api/messages${activity.text ? ` : ${activity.text}` : ''}`,
      );
      const result = await postActivity(opts.appBaseUrl, signed);
      log(`[emulator] app answered ${result.status}`);
      return { ...result, activity, deliveries: connector.delivered.slice(before) };
    };
    const personal = (
      options: SayOptions = {},
    ): {
      appId: string;
      tenantId: string;
      serviceUrl: string;
      botName: string;
      user?: ChannelAccount;
      conversationId?: string;
    } => ({
      appId,
      tenantId,
      serviceUrl,
      botName: EMULATOR_BOT_NAME,
      ...(options.user ? { user: options.user } : {}),
      ...(options.conversationId ? { conversationId: options.conversationId } : {}),
    });
    const say = (text: string, options?: SayOptions): Promise<InboundResult> =>
      sendInbound(personalMessage({ ...personal(options), text }));
    const install = (action: 'add' | 'remove' = 'add', options?: SayOptions): Promise<InboundResult> =>
      sendInbound(personalInstallationUpdate({ ...personal(options), action }));

    const status = (): EmulatorStatus => ({
      appId,
      tenantId,
      appBaseUrl: opts.appBaseUrl,
      connectorOrigin: connector.origin,
      serviceUrl,
      openIdMetadataUrl: openId.metadataUrl,
      authorityHost: entra.authorityHost,
      stats: { ...connector.stats },
      tokenRequests: entra.tokenRequests(),
      keyDownloads: openId.counters.keys,
      ...(graph === undefined
        ? {}
        : {
            graph: {
              baseUrl: graph.server.baseUrl,
              catalogId: graph.catalogId,
              installations: [
                EMULATOR_USER.aadObjectId,
                ...Object.values(EMULATOR_GRAPH_USERS).map((u) => u.aadObjectId),
              ]
                .flatMap((id) => graph.server.installations(id))
                .map((i) => ({ userId: i.userId, tenantId: i.tenantId })),
              requests: graph.server.requests.length,
            },
          }),
      recent: connector.delivered.slice(-10).map((d) => ({
        time: new Date(d.time).toISOString(),
        operation: d.operation,
        conversationId: d.conversationId,
        activityId: d.activityId,
        ...(typeof d.activity?.text === 'string' ? { text: d.activity.text } : {}),
      })),
    });

    openId.mount(CONTROL_PREFIX, (req, res) => handleControl(req, res, { controlToken, say, install, status }));
    const controlUrl = `${openId.origin}${CONTROL_PREFIX}`;

    const controlFile = opts.controlFile === false ? undefined : path.resolve(opts.controlFile ?? DEFAULT_CONTROL_FILE);
    if (controlFile) {
      mkdirSync(path.dirname(controlFile), { recursive: true });
      const content: ControlFile = {
        controlUrl,
        token: controlToken,
        pid: process.pid,
        appBaseUrl: opts.appBaseUrl,
        startedAt: new Date().toISOString(),
      };
      writeFileSync(controlFile, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
    }
    log(
      `[emulator] Bot Connector ${connector.origin} (serviceUrl ${serviceUrl}), Entra ${entra.authorityHost}, OpenID ${openId.metadataUrl}`,
    );
    log(`[emulator] bot ${appId} (SingleTenant, tenant ${tenantId}); try: npm run emulator -- say "hello"`);
    if (graph === undefined) {
      log(
        "[emulator] proactive installation is off; set TEAMS_APP_CATALOG_ID (any id) to try it against the emulator's Graph",
      );
    } else {
      const { newcomer } = EMULATOR_GRAPH_USERS;
      log(
        `[emulator] Microsoft Graph ${graph.server.baseUrl} (app catalog id ${graph.catalogId}): ${newcomer.name} (${newcomer.aadObjectId}) never installed the app`,
      );
      log(
        `[emulator] try: npm run cli -- send --to ${newcomer.aadObjectId} --tenant ${tenantId} --text "Welcome aboard" --wait`,
      );
    }

    let closed: Promise<void> | undefined;
    return {
      settings,
      appId,
      appPassword,
      tenantId,
      issuer,
      openId,
      entra,
      connector,
      ...(graph === undefined ? {} : { graph }),
      serviceUrl,
      controlUrl,
      controlToken,
      say,
      install,
      status,
      close() {
        closed ??= (async () => {
          if (controlFile) removeControlFileIfOurs(controlFile, controlToken);
          await world.close();
        })();
        return closed;
      },
    };
  } catch (err) {
    await world.close();
    throw err;
  }
}

/** The Graph options the emulator runs with, or undefined when proactive installation is off. */
function graphOptionOf(
  option: StartEmulatorOptions['graph'],
  catalogSetting: string | undefined,
): { catalogId?: string; rosterDelayMs?: number } | undefined {
  const fromSetting = catalogSetting?.trim() ? { catalogId: catalogSetting.trim() } : undefined;
  if (option === undefined) return fromSetting;
  return { ...fromSetting, ...(option === true ? {} : option) };
}

function removeControlFileIfOurs(file: string, token: string): void {
  try {
    const content = JSON.parse(readFileSync(file, 'utf8')) as Partial<ControlFile>;
    // Another emulator may have started since; leave its file alone.
    if (content.token === token) rmSync(file, { force: true });
  } catch {
    // Missing or unreadable: nothing to clean up.
  }
}

interface ControlDeps {
  readonly controlToken: string;
  say(text: string, options?: SayOptions): Promise<InboundResult>;
  install(action?: 'add' | 'remove', options?: SayOptions): Promise<InboundResult>;
  status(): EmulatorStatus;
}

function sayOptionsFrom(body: Record<string, unknown>): SayOptions {
  const user = isRecord(body.user) && typeof body.user.id === 'string' ? (body.user as ChannelAccount) : undefined;
  const conversationId = typeof body.conversationId === 'string' ? body.conversationId : undefined;
  return { ...(user ? { user } : {}), ...(conversationId ? { conversationId } : {}) };
}

/** POST /_emulator/say {text, user?, conversationId?}, POST /_emulator/install {action?}, GET /_emulator/status. */
async function handleControl(req: IncomingMessage, res: ServerResponse, deps: ControlDeps): Promise<void> {
  if (header(req, 'authorization') !== `Bearer ${deps.controlToken}`) {
    sendJson(res, 401, { error: 'missing or wrong control token (read it from .azurite/emulator-control.json)' });
    return;
  }
  const { pathname } = splitUrl(req.url);
  const command = pathname.slice(CONTROL_PREFIX.length).replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  if (command === 'status' && method === 'GET') {
    sendJson(res, 200, deps.status());
    return;
  }
  if ((command === 'say' || command === 'install') && method === 'POST') {
    let body: Record<string, unknown> = {};
    const text = (await readBody(req, 1024 * 1024)).toString('utf8');
    if (text !== '') {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (isRecord(parsed)) body = parsed;
      } catch {
        sendJson(res, 400, { error: 'body must be JSON' });
        return;
      }
    }
    try {
      let result: InboundResult;
      if (command === 'say') {
        if (typeof body.text !== 'string' || body.text === '') {
          sendJson(res, 400, { error: 'text is required' });
          return;
        }
        result = await deps.say(body.text, sayOptionsFrom(body));
      } else {
        const action = body.action === 'remove' ? 'remove' : 'add';
        result = await deps.install(action, sayOptionsFrom(body));
      }
      sendJson(res, 200, result);
    } catch (err) {
      // The app is not listening (yet), or timed out: report it instead of failing the control call.
      const cause = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      sendJson(res, 502, { error: `could not deliver the activity to the app: ${cause}` });
    }
    return;
  }
  sendJson(res, 404, { error: `unknown control command ${method} ${command}` });
}
