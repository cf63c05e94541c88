/**
 * What the end-to-end tests start: Azurite and the stub world (startStubs), and with them the
 * compiled app (`node dist/host/main.js`, what `npm start` runs) pointed at both (startAppWorld).
 * app.test.ts starts the app with `npm start` itself, on startStubs.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import { startStubWorld, waitFor, type StubWorld, type StubWorldOptions } from '../../host/emulator';
import { AppProcess, ensureBuilt, freePort, LogCapture } from '../chaos/harness';

export const QUEUE = 'outbound-messages';

export interface Stubs {
  readonly azurite: AzuriteInstance;
  readonly world: StubWorld;
  /** For calls to the app; closed with the rest. */
  readonly agent: Agent;
  /** The app's settings for this world: its own, AzureWebJobsStorage, OUTBOUND_QUEUE, then `extra`. */
  appSettings(extra?: Readonly<Record<string, string>>): Record<string, string>;
  /** Stops what was started; safe after a failed start. */
  close(): Promise<void>;
}

export async function startStubs(options: StubWorldOptions): Promise<Stubs> {
  const [azurite, world] = await Promise.all([startAzurite(), startStubWorld(options)]);
  const agent = new Agent({ keepAliveTimeout: 5_000 });
  return {
    azurite,
    world,
    agent,
    appSettings: (extra = {}) =>
      world.appSettings({ AzureWebJobsStorage: azurite.connectionString, OUTBOUND_QUEUE: QUEUE, ...extra }),
    async close() {
      await agent.close();
      await world.close();
      await azurite.stop();
    },
  };
}

export interface AppWorldOptions {
  /** Names the folder of the app's log. */
  readonly name: string;
  /** The stub world; `appUrl` is the app's, once it is known. */
  readonly world: StubWorldOptions | ((appUrl: () => string | undefined) => StubWorldOptions);
  /** More app settings (appSettings' `extra`). */
  readonly settings?: Readonly<Record<string, string>>;
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown> | undefined;
}

export interface AppWorld extends Stubs {
  readonly app: AppProcess;
  readonly log: LogCapture;
  /** The settings the app was started with. */
  readonly env: Record<string, string>;
  /** `method /api/<route>` with a JSON body, as a flow calls it; the answer's JSON. */
  api(method: 'GET' | 'POST', route: string, body?: unknown, headers?: Record<string, string>): Promise<ApiAnswer>;
  /** GET /api/notify/{id}'s body, once it answers 200 (within 60 s). */
  statusOf(id: string): Promise<Record<string, unknown>>;
}

/** Builds when needed, starts the stubs, then the app; resolves once it serves. */
export async function startAppWorld(options: AppWorldOptions): Promise<AppWorld> {
  ensureBuilt();
  const known: { appUrl?: string } = {};
  const worldOptions = typeof options.world === 'function' ? options.world(() => known.appUrl) : options.world;
  const stubs = await startStubs(worldOptions);
  const log = new LogCapture(path.join(mkdtempSync(path.join(tmpdir(), `courier-${options.name}-`)), 'app.log'));
  const env = stubs.appSettings(options.settings);
  const started = new AppProcess({ port: await freePort(), log, env });
  known.appUrl = started.url;
  const world: AppWorld = {
    ...stubs,
    app: started,
    log,
    env,
    async api(method, route, body, headers = {}) {
      const res = await request(`${started.url}/api/${route}`, {
        method,
        dispatcher: stubs.agent,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.body.text();
      return {
        status: res.statusCode,
        headers: res.headers,
        body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
      };
    },
    statusOf: (id) =>
      waitFor(`job ${id} to be done`, 60_000, async () => {
        const answer = await world.api('GET', `notify/${encodeURIComponent(id)}`);
        return answer.status === 200 ? answer.body : undefined;
      }),
    async close() {
      await started.stop();
      log.close();
      await stubs.close();
    },
  };
  try {
    await started.start();
  } catch (err) {
    await world.close();
    throw err;
  }
  return world;
}
