/**
 * One stub world: the Bot Framework token issuer (OpenID metadata and keys), the Entra authority and
 * the Bot Connector, on free loopback ports, wired to one bot, plus the app settings that point an
 * app at them. The emulator (`npm start` without MicrosoftAppId), the end-to-end and integration
 * tests, the chaos suite and the benchmark all start theirs here, so they cannot drift apart.
 */
import { randomBytes } from 'node:crypto';
import { type ConnectorServer, type ConnectorServerOptions, startConnectorServer } from './connectorServer';
import { type EntraApi, type EntraApp, type EntraServer, startEntraServer } from './entraServer';
import { type OpenIdServer, startOpenIdServer } from './openIdServer';
import { ChannelTokenIssuer } from './tokens';

/** The audience of the bot's tokens for the Bot Connector (public cloud). */
const BOT_CONNECTOR_AUDIENCE = 'https://api.botframework.com';

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
}

export interface StubWorld {
  readonly bot: Readonly<Required<Pick<StubBot, 'appId' | 'tenantId' | 'secret'>>>;
  /** Signs channel tokens for inbound activities; its keys are what `openId` publishes. */
  readonly issuer: ChannelTokenIssuer;
  readonly openId: OpenIdServer;
  readonly entra: EntraServer;
  readonly connector: ConnectorServer;
  /**
   * The app settings (names from src/config.ts) that point the app at this world: MicrosoftAppId,
   * MicrosoftAppPassword, MicrosoftAppType (SingleTenant), MicrosoftAppTenantId,
   * BOT_OPENID_METADATA_URL, BOT_AUTHORITY_HOST, BOT_TRUSTED_SERVICE_URLS (the connector's origin)
   * and BOT_GLOBAL_SERVICE_URL (its `/teams/` serviceUrl); `extra` is added last.
   */
  appSettings(extra?: Readonly<Record<string, string>>): Record<string, string>;
  /** Stops the three stubs; safe to call twice. */
  close(): Promise<void>;
}

export async function startStubWorld(options: StubWorldOptions): Promise<StubWorld> {
  const bot = {
    appId: options.bot.appId,
    tenantId: options.bot.tenantId,
    secret: options.bot.secret ?? randomBytes(24).toString('base64url'),
  };
  const log = options.log ? { log: options.log } : {};
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
      ...(options.entra?.apis === undefined ? {} : { apis: options.entra.apis }),
    });
    started.push(entra);
    const connector = await startConnectorServer({
      ...log,
      ...options.connector,
      auth: { jwks: () => entra.jwks(), audiences: [BOT_CONNECTOR_AUDIENCE], appIds: [bot.appId] },
    });
    started.push(connector);

    let closed: Promise<void> | undefined;
    return {
      bot,
      issuer,
      openId,
      entra,
      connector,
      appSettings: (extra = {}) => ({
        MicrosoftAppId: bot.appId,
        MicrosoftAppPassword: bot.secret,
        MicrosoftAppType: 'SingleTenant',
        MicrosoftAppTenantId: bot.tenantId,
        BOT_OPENID_METADATA_URL: openId.metadataUrl,
        BOT_AUTHORITY_HOST: entra.authorityHost,
        BOT_TRUSTED_SERVICE_URLS: connector.origin,
        BOT_GLOBAL_SERVICE_URL: connector.serviceUrl('teams'),
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
