/**
 * Test helpers for the emulator self-tests: a keep-alive undici client, a bot-token shortcut, and
 * the Connector stub with the Entra stub whose tokens it takes.
 */
import { Agent, request } from 'undici';
import {
  startConnectorServer,
  type ConnectorServer,
  type ConnectorServerOptions,
} from '../../host/emulator/connectorServer';
import { startEntraServer, type EntraServer } from '../../host/emulator/entraServer';

export const APP_ID = '00000000-0000-4000-8000-0000000000b0';
export const TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
}

/** A keep-alive client, like the app's connector client. */
export function keepAliveAgent(): Agent {
  return new Agent({ keepAliveTimeout: 10_000, connections: 4 });
}

export async function call(
  agent: Agent,
  url: string,
  init: {
    method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
  } = {},
): Promise<HttpResult> {
  const response = await request(url, {
    method: init.method ?? 'POST',
    dispatcher: agent,
    headers: {
      ...(init.token !== undefined ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
  });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text, json };
}

/** A valid bot -> connector token from the Entra stub (no MSAL in the loop). */
export function botToken(entra: EntraServer, appId = APP_ID): Promise<string> {
  return entra.issueToken({ clientId: appId, tenantId: TENANT_ID });
}

export interface ConnectorStub {
  readonly entra: EntraServer;
  /** Takes the bot tokens `entra` issues. */
  readonly connector: ConnectorServer;
  /** A bot token from `entra` for APP_ID. */
  readonly token: string;
  /** Closes `closeToo` (a client of the stubs), then the stubs. */
  close(): Promise<void>;
}

/** The Entra stub and a Connector stub that checks tokens against its keys. */
export async function startConnectorStub(
  options: Omit<ConnectorServerOptions, 'auth'> = {},
  closeToo?: { close(): Promise<void> },
): Promise<ConnectorStub> {
  const entra = await startEntraServer();
  const connector = await startConnectorServer({ ...options, auth: { jwks: () => entra.jwks() } });
  return {
    entra,
    connector,
    token: await botToken(entra),
    async close() {
      await closeToo?.close();
      await connector.close();
      await entra.close();
    },
  };
}
