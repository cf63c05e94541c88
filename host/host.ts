/**
 * The local Functions host, programmatically: `startHost(options)` loads a v4 Node.js function app
 * (package.json `main`) through `@azure/functions` with a local `@azure/functions-core`, serves its
 * HTTP triggers and runs its queue triggers. `host/main.ts` is the `npm start` entry around it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { startAzurite, type AzuriteInstance } from './azurite';
import { findFiles, hasMagic } from './glob';
import { FunctionsCore, describeError, installCoreModule } from './functionsCore';
import { FunctionsHttpServer, type HttpDispatcher, type HttpFunction } from './httpServer';
import { indexFunctions, type FunctionIssue, type QueueTarget } from './indexing';
import { createLogger, parseLogLevel, type HostLogger, type LogLevel } from './log';
import { QueueClients } from './queueClients';
import { QueueListener, poisonQueueNameFor } from './queueListener';
import {
  EnvScope,
  HostConfigError,
  isDevelopmentStorage,
  mergeSettings,
  readHostJson,
  readLocalSettings,
  resolveFunctionAllowList,
  resolveHostLogLevel,
  resolveQueueOptions,
  resolveRoutePrefix,
  type QueueOptions,
  type Settings,
} from './settings';

export interface StartHostOptions {
  /** The function app root: package.json (`main`), host.json, local.settings.json. Default `process.cwd()`. */
  readonly rootDir?: string;
  /** Settings that win over the process environment and local.settings.json; `undefined` removes one. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** TCP port; 0 picks a free one. Default: `PORT`, then local.settings.json `Host.LocalHttpPort`, then 7071. */
  readonly port?: number;
  /**
   * Listen address. Default: `HOST`, then 127.0.0.1. Anything but a loopback address needs
   * `allowRemote`: the local host checks no function keys.
   */
  readonly host?: string;
  /** Allow a non-loopback `host` (e.g. 0.0.0.0). Default: the host-only setting `HOST_ALLOW_REMOTE=true`, else false. */
  readonly allowRemote?: boolean;
  /** Receives every log line. Default `console.log`. */
  readonly log?: (line: string) => void;
  /** Minimum level of host and function logs. Default: `HOST_LOG_LEVEL`, then host.json `logging.logLevel.default`, then info. */
  readonly logLevel?: LogLevel;
  /**
   * Start Azurite (data in `<rootDir>/.azurite`, ports 10000-10002) when AzureWebJobsStorage is
   * `UseDevelopmentStorage=true` and nothing listens there yet. Default false.
   */
  readonly embeddedAzurite?: boolean;
  /** `'auto'`: start the Bot Connector emulator (host/emulator) when MicrosoftAppId is empty. Default off. */
  readonly emulator?: 'auto' | false;
  /** Largest HTTP request body, in bytes; larger gets 413. Default 4 MiB. */
  readonly maxRequestBodyBytes?: number;
  /** How long close() waits for running invocations, in ms. Default 30 000. */
  readonly drainTimeoutMs?: number;
  /**
   * Lease (visibility) of a dequeued message, renewed at half, in ms (whole seconds). Default: the
   * host-only setting `HOST_QUEUE_MESSAGE_LEASE_SECONDS`, then 600 000 like the host.
   */
  readonly queueMessageLeaseMs?: number;
  /** Status for a known route with a method it does not allow. Default 405 (the real host answers 404). */
  readonly methodNotAllowedStatus?: 404 | 405;
}

export interface HostFunctionInfo {
  readonly name: string;
  readonly trigger: 'http' | 'queue';
  /** HTTP: the URL template, e.g. `http://127.0.0.1:7071/api/items/{id}`. */
  readonly url?: string;
  /** HTTP: allowed methods; undefined means all. */
  readonly methods?: readonly string[];
  /** Queue: the queue name. */
  readonly queueName?: string;
}

/** Why a host stopped. */
export type HostStop =
  | { readonly reason: 'closed' }
  /** Like the real host's WebScriptHostExceptionHandler: a storage error the queue extension does not handle stops the host. */
  | { readonly reason: 'unhandledException'; readonly error: unknown };

export interface RunningHost {
  /** `http://<host>:<port>`, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly functions: readonly HostFunctionInfo[];
  /** Functions that failed indexing and do not run. */
  readonly functionErrors: readonly FunctionIssue[];
  /** Settles once the host has stopped: after close(), or by itself after an unhandled exception. */
  readonly stopped: Promise<HostStop>;
  /** Stops taking work, drains, runs appTerminate hooks, stops Azurite/emulator it started, restores process.env. */
  close(): Promise<void>;
}

export const DEFAULT_PORT = 7071;
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
const AZURITE_PORTS = { blobPort: 10000, queuePort: 10001, tablePort: 10002 } as const;

interface EmulatorHandle {
  settings: Record<string, string>;
  close(): Promise<void>;
}

interface EmulatorModule {
  startEmulator(opts: { appBaseUrl: string; log: (line: string) => void }): Promise<EmulatorHandle>;
  loadTestCertificate(): { cert: string; certPath: string };
  trustCertificateInProcess(cert: string): (() => void) | undefined;
}

/** The real host's words when its exception handler stops it (WebScriptHostExceptionHandler.OnUnhandledExceptionAsync). */
export const UNHANDLED_EXCEPTION_MESSAGE = 'An unhandled exception has occurred. Host is shutting down.';

/** Whether `host` only reaches this machine: localhost, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Whether this process's default TLS settings (what fetch, undici and node:https use without a `ca`
 * option) accept the server at `url`: undefined if so, else the TLS error code.
 */
export function tlsTrustProblem(url: string, timeoutMs = 5_000): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port: Number(port || 443), ...(net.isIP(host) ? {} : { servername: host }) });
    const done = (problem: string | undefined): void => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done('ETIMEDOUT'));
    socket.once('secureConnect', () => done(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** `HOST_ALLOW_REMOTE`: true/false (1/0); unset means false. */
function parseAllowRemote(raw: string | undefined): boolean {
  const value = raw?.trim().toLowerCase() ?? '';
  if (value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new HostConfigError(`HOST_ALLOW_REMOTE must be true or false (got "${raw}")`);
}

/**
 * HTTP functions whose key the real host would check (authLevel function or admin; a binding without
 * authLevel defaults to function, WebJobsCoreScriptBindingProvider). The local host checks none.
 */
function keyedFunctions(http: readonly HttpFunction[]): string[] {
  return http.flatMap(({ fn }) => {
    const trigger = Object.values(fn.metadata.bindings).find((b) => b.type?.toLowerCase() === 'httptrigger');
    const level =
      typeof trigger?.authLevel === 'string' && trigger.authLevel.trim() !== ''
        ? trigger.authLevel.trim().toLowerCase()
        : 'function';
    return level === 'anonymous' ? [] : [`${fn.name}(${level})`];
  });
}

function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function parsePort(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new HostConfigError(`${name} must be a port number (got "${raw}")`);
  return port;
}

/** `HOST_QUEUE_MESSAGE_LEASE_SECONDS`: whole seconds, at least 1; in ms. */
function parseLeaseSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 7 * 24 * 3600) {
    throw new HostConfigError(
      `HOST_QUEUE_MESSAGE_LEASE_SECONDS must be a whole number of seconds, at least 1 (got "${raw}")`,
    );
  }
  return seconds * 1000;
}

/** Forgets modules of an app that was loaded before in this process, so a new host gets fresh state. */
function forgetAppModules(rootDir: string, files: string[], appRequire: NodeJS.Require): void {
  const cache = appRequire.cache;
  if (!files.some((file) => cache[file])) return;
  let libraryDir: string | undefined;
  try {
    libraryDir = path.dirname(path.dirname(appRequire.resolve('@azure/functions')));
  } catch {
    libraryDir = undefined;
  }
  const nodeModules = `${path.sep}node_modules${path.sep}`;
  for (const key of Object.keys(cache)) {
    const inLibrary = libraryDir !== undefined && key.startsWith(libraryDir + path.sep);
    const inApp =
      key.startsWith(rootDir + path.sep) && !key.includes(nodeModules) && !key.startsWith(__dirname + path.sep);
    if (inLibrary || inApp) delete cache[key];
  }
}

/** package.json `main`, loaded like the worker's startApp/loadEntryPointFile. */
function loadEntryPoints(rootDir: string, core: FunctionsCore, log: HostLogger): string[] {
  const packageJsonPath = path.join(rootDir, 'package.json');
  if (!existsSync(packageJsonPath)) throw new HostConfigError(`No package.json in ${rootDir}`);
  const main = (JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { main?: unknown }).main;
  if (typeof main !== 'string' || main.trim() === '') {
    throw new HostConfigError(
      `${packageJsonPath} has no "main"; the v4 programming model loads functions from it (e.g. "dist/src/functions/*.js")`,
    );
  }
  const files = findFiles(main, rootDir).map((file) => path.join(rootDir, file));
  if (files.length === 0) {
    const why = hasMagic(main) ? 'Found zero files matching the supplied pattern' : 'File does not exist';
    throw new HostConfigError(`Worker was unable to load entry point "${main}": ${why} (did you run "npm run build"?)`);
  }
  const appRequire = createRequire(packageJsonPath);
  forgetAppModules(rootDir, files, appRequire);
  for (const file of files) {
    core.currentEntryPoint = file;
    try {
      appRequire(file);
    } catch (error) {
      throw new HostConfigError(
        `Worker was unable to load entry point "${path.relative(rootDir, file)}": ${describeError(error)}`,
        { cause: error },
      );
    } finally {
      core.currentEntryPoint = undefined;
    }
    log.debug('entryPoint.loaded', { file: path.relative(rootDir, file) });
  }
  return files;
}

async function startEmulatorIfNeeded(
  appBaseUrl: string,
  settings: Settings,
  log: HostLogger,
  sink: (line: string) => void,
): Promise<EmulatorHandle | undefined> {
  if (settings.MicrosoftAppId?.trim()) return undefined;
  // index.js when compiled (npm start), index.ts under vitest; import() works for both.
  const modulePath = ['index.js', 'index.ts']
    .map((file) => path.join(__dirname, 'emulator', file))
    .find((file) => existsSync(file));
  if (!modulePath) {
    log.error('emulator.missing', {
      detail:
        'MicrosoftAppId is empty and host/emulator is not available; set the bot settings in local.settings.json or add the emulator',
    });
    return undefined;
  }
  const loaded = (await import(pathToFileURL(modulePath).href)) as Partial<EmulatorModule> & {
    default?: Partial<EmulatorModule>;
  };
  const emulator = { ...loaded.default, ...loaded };
  const { startEmulator, loadTestCertificate, trustCertificateInProcess } = emulator;
  if (
    typeof startEmulator !== 'function' ||
    typeof loadTestCertificate !== 'function' ||
    typeof trustCertificateInProcess !== 'function'
  ) {
    throw new HostConfigError(
      `${modulePath} does not export startEmulator(), loadTestCertificate() and trustCertificateInProcess()`,
    );
  }
  const started = await startEmulator({ appBaseUrl, log: (line) => sink(line) });
  // The app builds its own clients without a `ca` option (global fetch for the OpenID keys, an undici
  // Agent for the Connector, @azure/identity for tokens), and they run in this process: the only way
  // to reach all three is this process's default CA list. Emulator mode only, undone by close(); the
  // certificate is a loopback-only leaf (CA:FALSE), so it vouches for nothing else.
  let release: (() => void) | undefined;
  try {
    const { cert, certPath } = loadTestCertificate();
    release = trustCertificateInProcess(cert);
    // Checked, not assumed: Node lacks tls.setDefaultCACertificates before 22.19, and a certificate
    // already trusted under the same subject name (say, in NODE_EXTRA_CA_CERTS) can shadow this one.
    const probe = started.settings.BOT_OPENID_METADATA_URL;
    const problem = probe === undefined ? undefined : await tlsTrustProblem(probe);
    if (problem !== undefined) {
      const extra = process.env.NODE_EXTRA_CA_CERTS;
      const why = !release
        ? ` (Node ${process.version} lacks tls.setDefaultCACertificates, added in 22.19)`
        : extra
          ? ` (NODE_EXTRA_CA_CERTS=${extra} may hold a certificate with the same name)`
          : '';
      throw new HostConfigError(
        `The app could not reach the emulator over TLS (${problem}): this process does not trust ${certPath}${why}. Start with NODE_EXTRA_CA_CERTS=${certPath}, or set MicrosoftAppId to use a real bot.`,
      );
    }
  } catch (error) {
    release?.();
    await started.close();
    throw error;
  }
  const handle: EmulatorHandle = {
    settings: started.settings,
    close: async () => {
      release?.();
      await started.close();
    },
  };
  const bar = '='.repeat(72);
  log.raw(bar);
  log.raw('  EMULATOR MODE — local only. No MicrosoftAppId is set, so a local Bot Connector emulator');
  log.raw('  stands in for Entra ID and the Bot Connector. Nothing reaches Teams.');
  log.raw(bar);
  return handle;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startHost(options: StartHostOptions = {}): Promise<RunningHost> {
  const rootDir = path.resolve(options.rootDir ?? process.cwd());
  const envScope = new EnvScope();
  const sink = options.log ?? ((line: string) => console.log(line));
  const cleanups: (() => unknown)[] = [];
  const runCleanups = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // Best effort: the first error is the one that matters.
      }
    }
  };
  cleanups.push(() => envScope.restore());

  try {
    // 1. Settings: local.settings.json < environment < options.env, then into process.env for the app.
    const local = readLocalSettings(rootDir);
    let settings = mergeSettings(local.values, process.env, options.env);
    // func start runs the host in the Development environment.
    settings.AZURE_FUNCTIONS_ENVIRONMENT ??= 'Development';
    envScope.apply(settings);
    for (const [key, value] of Object.entries(options.env ?? {})) if (value === undefined) envScope.set(key, undefined);

    const hostJson = readHostJson(rootDir, settings);
    const log = createLogger({
      sink,
      minLevel:
        options.logLevel ??
        parseLogLevel(settings.HOST_LOG_LEVEL) ??
        parseLogLevel(resolveHostLogLevel(hostJson)) ??
        'info',
    });
    const runtime = settings.FUNCTIONS_WORKER_RUNTIME;
    if (runtime && runtime.toLowerCase() !== 'node')
      log.warn('settings.workerRuntime', { FUNCTIONS_WORKER_RUNTIME: runtime, detail: 'expected "node"' });
    const development = settings.AZURE_FUNCTIONS_ENVIRONMENT.toLowerCase() === 'development';
    const queueOptions: QueueOptions = resolveQueueOptions(hostJson, development);
    const routePrefix = resolveRoutePrefix(hostJson);

    // 2. Embedded Azurite for UseDevelopmentStorage=true when none is running.
    let azurite: AzuriteInstance | undefined;
    if (options.embeddedAzurite && isDevelopmentStorage(settings.AzureWebJobsStorage)) {
      const busy = await Promise.all(Object.values(AZURITE_PORTS).map((port) => isListening('127.0.0.1', port)));
      if (busy.every((b) => !b)) {
        const location = path.join(rootDir, '.azurite');
        log.info('azurite.starting', { location, ports: '10000-10002' });
        azurite = await startAzurite({ location, ...AZURITE_PORTS });
        cleanups.push(() => azurite?.stop());
        log.info('azurite.started', {
          blob: azurite.blobPort,
          queue: azurite.queuePort,
          table: azurite.tablePort,
          location,
        });
      } else if (busy.every(Boolean)) {
        log.info('azurite.external', { detail: 'something already listens on 127.0.0.1:10000-10002; using it' });
      } else {
        log.warn('azurite.portsPartlyBusy', {
          detail: 'some of 127.0.0.1:10000-10002 are in use; not starting Azurite',
        });
      }
    }

    // 3. The core module, before anything requires @azure/functions.
    const core = new FunctionsCore((level, category, message, functionName, invocationId) =>
      log.function(level, category, message, functionName, invocationId),
    );
    cleanups.push(installCoreModule(core.api));

    // 4. Listen first: the emulator needs the app's URL before the app's settings exist.
    const clients = new QueueClients();
    const listenersByQueue = new Map<string, QueueListener[]>();
    const notifyQueue = (target: QueueTarget): void => {
      for (const listener of listenersByQueue.get(QueueClients.key(target)) ?? []) listener.notify();
    };
    const dispatch: HttpDispatcher = (httpFn, request) => {
      const triggerName =
        Object.entries(httpFn.fn.metadata.bindings).find(([, b]) => b.type?.toLowerCase() === 'httptrigger')?.[0] ??
        'req';
      const traceId = request.traceParent?.split('-')[1];
      return core.invoke(httpFn.fn, {
        invocationId: request.invocationId,
        inputData: [{ name: triggerName, data: { http: request.http } }],
        triggerMetadata: {},
        traceContext: {
          traceParent: `00-${traceId ?? randomHex(16)}-${randomHex(8)}-00`,
          traceState: '',
          attributes: { OperationName: httpFn.fn.name },
        },
      });
    };
    const listenHost = options.host ?? (settings.HOST?.trim() || '127.0.0.1');
    // Nothing here checks a function key, and emulator mode serves a token issuer: listening beyond
    // loopback must be asked for. (func start defaults to 127.0.0.1 too, `--address`.)
    if (!isLoopbackHost(listenHost)) {
      if (!(options.allowRemote ?? parseAllowRemote(settings.HOST_ALLOW_REMOTE))) {
        throw new HostConfigError(
          `HOST=${listenHost} is not a loopback address. The local host checks no function keys, so anyone who can reach it can call every function. Set HOST_ALLOW_REMOTE=true to listen there anyway, or leave HOST unset (127.0.0.1).`,
        );
      }
      log.warn('host.remote', {
        host: listenHost,
        detail: 'HOST_ALLOW_REMOTE=true: reachable beyond this machine, and no function keys are checked',
      });
    }
    const port = options.port ?? parsePort(settings.PORT, 'PORT') ?? local.localHttpPort ?? DEFAULT_PORT;
    const server = new FunctionsHttpServer({
      host: listenHost,
      port,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES,
      methodNotAllowedStatus: options.methodNotAllowedStatus ?? 405,
      log,
      dispatch,
    });
    const boundPort = await server.listen();
    cleanups.push(() => server.close(0));
    const url = `http://${urlHost(listenHost)}:${boundPort}`;
    log.info('host.listening', { url });

    // 5. Bot Connector emulator (main only), merged into the settings before the app loads.
    if (options.emulator === 'auto') {
      const emulator = await startEmulatorIfNeeded(url, settings, log, sink);
      if (emulator) {
        cleanups.push(() => emulator.close());
        for (const [key, value] of Object.entries(emulator.settings)) envScope.set(key, value);
        settings = { ...settings, ...emulator.settings };
      }
    }

    // 6. Load the app, lock registration, exchange capabilities (locks app.setup()).
    loadEntryPoints(rootDir, core, log);
    core.lockIndexing();
    const capabilities = await core.getCapabilities();
    if (capabilities.HttpUri) {
      throw new HostConfigError(
        'The app calls app.setup({ enableHttpStream: true }); the local host does not support HTTP streaming. Remove it or run func start.',
      );
    }

    const allowList = resolveFunctionAllowList(hostJson);
    const indexed = indexFunctions(core.functions.values(), settings, {
      routePrefix,
      ...(allowList ? { only: allowList } : {}),
    });
    for (const issue of indexed.errors) log.error('function.error', { function: issue.name, error: issue.message });
    for (const issue of indexed.warnings) log.warn('function.warning', { function: issue.name, detail: issue.message });
    for (const name of indexed.disabled) log.info('function.disabled', { function: name });

    // func start checks no keys either (its CliAuthenticationHandler grants every request the Admin
    // level unless --enableAuth); Core Tools words it "Authorization level is not enforced when running
    // functions from core tools" (`func new --authlevel`).
    const keyed = keyedFunctions(indexed.http);
    if (keyed.length > 0) {
      log.warn('http.keysNotEnforced', {
        functions: keyed.join(','),
        detail:
          'Authorization level is not enforced when running functions locally: in Azure these need a key (x-functions-key header, which wins, or ?code=)',
      });
    }

    // The real host's exception handler: log, then stop (Azure then starts the host again).
    const unhandled: { error?: unknown; raised: boolean } = { raised: false };
    let stopHost: () => Promise<void> = async () => undefined;
    const onUnhandledError = (error: unknown, fields: Record<string, string>): void => {
      if (unhandled.raised) return;
      unhandled.raised = true;
      unhandled.error = error;
      log.error('host.unhandledException', {
        ...fields,
        error: describeError(error),
        detail: UNHANDLED_EXCEPTION_MESSAGE,
      });
      void stopHost();
    };

    const leaseMs = options.queueMessageLeaseMs ?? parseLeaseSeconds(settings.HOST_QUEUE_MESSAGE_LEASE_SECONDS);
    const listeners: QueueListener[] = [];
    for (const q of indexed.queue) {
      const poisonName = poisonQueueNameFor(q.target.queueName);
      const listener = new QueueListener({
        functionName: q.fn.name,
        triggerBindingName: q.triggerBindingName,
        queue: await clients.get(q.target),
        poisonQueue: poisonName ? await clients.get({ ...q.target, queueName: poisonName }) : undefined,
        options: queueOptions,
        ...(leaseMs === undefined ? {} : { messageLeaseMs: leaseMs }),
        log,
        invoke: (request) => core.invoke(q.fn, request),
        onMessageAdded: (queueName) => notifyQueue({ ...q.target, queueName }),
        onUnhandledError: (error) => onUnhandledError(error, { function: q.fn.name, queue: q.target.queueName }),
      });
      listeners.push(listener);
      const key = QueueClients.key(q.target);
      listenersByQueue.set(key, [...(listenersByQueue.get(key) ?? []), listener]);
    }

    // 7. appStart hooks, then start serving.
    await core.runAppStart(rootDir);
    server.setFunctions(indexed.http);
    for (const listener of listeners) listener.start();
    cleanups.push(() => Promise.all(listeners.map((l) => l.stop(0))));

    const functions: HostFunctionInfo[] = [
      ...indexed.http.map((h) => ({
        name: h.fn.name,
        trigger: 'http' as const,
        url: `${url}/${h.route.template}`,
        ...(h.methods ? { methods: h.methods } : {}),
      })),
      ...indexed.queue.map((q) => ({ name: q.fn.name, trigger: 'queue' as const, queueName: q.target.queueName })),
    ];
    // Listed by name, like func start.
    const listing: [string, string][] = [
      ...indexed.http.map((h): [string, string] => [
        h.fn.name,
        `[${h.methods?.join(',') ?? 'ALL'}] ${url}/${h.route.template}`,
      ]),
      ...indexed.queue.map((q): [string, string] => [
        q.fn.name,
        `queueTrigger queue=${q.target.queueName} connection=${q.target.connection.settingName} encoding=${queueOptions.messageEncoding}`,
      ]),
      ...indexed.errors.map((issue): [string, string] => [issue.name, `NOT RUNNING (${issue.message})`]),
      ...indexed.disabled.map((name): [string, string] => [name, 'disabled']),
    ];
    log.raw('Functions:');
    for (const [name, text] of listing.sort(([a], [b]) => a.localeCompare(b))) log.raw(`  ${name}: ${text}`);
    log.info('host.started', {
      url,
      http: indexed.http.length,
      queue: indexed.queue.length,
      errors: indexed.errors.length,
      maxPollingIntervalMs: queueOptions.maxPollingIntervalMs,
      batchSize: queueOptions.batchSize,
      newBatchThreshold: queueOptions.newBatchThreshold,
      maxDequeueCount: queueOptions.maxDequeueCount,
      visibilityTimeoutMs: queueOptions.visibilityTimeoutMs,
    });

    let closing: Promise<void> | undefined;
    let markStopped: (stop: HostStop) => void = () => undefined;
    const stopped = new Promise<HostStop>((resolve) => (markStopped = resolve));
    const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        log.info('host.stopping', { drainTimeoutMs: drainMs });
        await Promise.all([server.close(drainMs), ...listeners.map((l) => l.stop(drainMs))]);
        try {
          await core.runAppTerminate();
        } catch (error) {
          log.error('hook.appTerminate.failed', { error: describeError(error) });
        }
        await runCleanups();
        log.info('host.stopped');
        markStopped(unhandled.raised ? { reason: 'unhandledException', error: unhandled.error } : { reason: 'closed' });
      })();
      return closing;
    };
    stopHost = close;
    if (unhandled.raised) void close();

    return { url, port: boundPort, functions, functionErrors: indexed.errors, stopped, close };
  } catch (error) {
    await runCleanups();
    throw error;
  }
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}
