/**
 * The local host's implementation of `@azure/functions-core`, the module the Azure Functions Node.js
 * worker injects into the app. With it, `@azure/functions` leaves "test mode": `app.http(...)`,
 * `app.storageQueue(...)` and `app.hook.*` register for real, and invocations run through the
 * library's own ProgrammingModel / InvocationModel exactly as under the worker.
 *
 * Behaviour follows Azure/azure-functions-nodejs-worker (src/setupCoreModule.ts,
 * src/coreApi/registerFunction.ts, src/eventHandlers/InvocationHandler.ts, src/hooks/*): hooks run in
 * registration order and are awaited one by one; registering a function after startup throws; the
 * invocation sequence is getArguments -> preInvocation hooks -> invokeFunction -> postInvocation hooks
 * -> getResponse.
 */
import Module from 'node:module';
import path from 'node:path';
import type {
  AppStartContext,
  CoreInvocationContext,
  DisposableLike,
  FunctionCallback,
  FunctionMetadata,
  HookContext,
  HookData,
  HookName,
  InvocationState,
  LogHookContext,
  PostInvocationContext,
  PreInvocationContext,
  ProgrammingModel,
  RpcFunctionMetadata,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
  WorkerCapabilities,
} from './rpcTypes';

export const CORE_MODULE_NAME = '@azure/functions-core';
/** Reported as the worker version; `@azure/functions` only logs it. */
export const CORE_VERSION = '3.12.0-local';
export const HOST_VERSION = '4.0.0-local';

export class Disposable implements DisposableLike {
  static from(...disposables: DisposableLike[]): Disposable {
    return new Disposable(() => {
      for (const d of disposables) d.dispose();
    });
  }

  #callOnDispose: (() => unknown) | undefined;

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }

  dispose(): unknown {
    const fn = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return fn?.();
  }
}

/** Thrown for misuse of the core API, like the worker's AzFuncSystemError. */
export class CoreApiError extends Error {
  override readonly name = 'AzFuncSystemError';
}

export interface RegisteredFunction {
  readonly id: string;
  readonly name: string;
  readonly metadata: RpcFunctionMetadata & { name: string; bindings: NonNullable<RpcFunctionMetadata['bindings']> };
  readonly callback: FunctionCallback;
}

export type InvocationOutcome =
  { readonly ok: true; readonly response: RpcInvocationResponse } | { readonly ok: false; readonly error: unknown };

/** Where log records from the app and the library go. */
export type CoreLogSink = (
  level: RpcLogLevel,
  category: RpcLogCategory,
  message: string,
  functionName?: string,
  invocationId?: string,
) => void;

/** The object `require('@azure/functions-core')` returns. */
export interface CoreApi {
  readonly version: string;
  readonly hostVersion: string;
  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable;
  registerHook(hookName: string, callback: (context: never) => unknown): Disposable;
  setProgrammingModel(programmingModel: ProgrammingModel): void;
  getProgrammingModel(): ProgrammingModel | undefined;
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
  readonly Disposable: typeof Disposable;
}

interface InvocationLogContext {
  readonly hookData: HookData;
  readonly invocationContext: unknown;
}

type AnyHook = (context: HookContext) => unknown;

/** Adds properties that can be read and mutated in place but not replaced, like the worker's hook contexts. */
function withReadOnly<T extends object>(target: T, props: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(props)) {
    Object.defineProperty(target, key, {
      enumerable: true,
      get: () => value,
      set: () => {
        throw new CoreApiError(`Cannot assign to read only property '${key}'`);
      },
    });
  }
  return target;
}

export class FunctionsCore {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly appHookData: HookData = {};
  /** `hookData` of appStart / appTerminate hooks (the worker's `appLevelOnlyHookData`). */
  readonly appLevelOnlyHookData: HookData = {};
  readonly api: CoreApi;
  programmingModel: ProgrammingModel | undefined;
  /** Set while an entry point is being required, for `scriptFile` like the worker. */
  currentEntryPoint: string | undefined;

  #indexingLocked = false;
  #inLogHook = false;
  readonly #hooks: Record<HookName, AnyHook[]> = {
    appStart: [],
    appTerminate: [],
    preInvocation: [],
    postInvocation: [],
    log: [],
  };
  readonly #sink: CoreLogSink;

  constructor(sink: CoreLogSink) {
    this.#sink = sink;
    this.api = Object.freeze({
      version: CORE_VERSION,
      hostVersion: HOST_VERSION,
      registerFunction: (metadata: FunctionMetadata, callback: FunctionCallback) =>
        this.registerFunction(metadata, callback),
      registerHook: (hookName: string, callback: (context: never) => unknown) =>
        this.registerHook(hookName, callback as AnyHook),
      setProgrammingModel: (pm: ProgrammingModel) => {
        this.programmingModel = pm;
      },
      getProgrammingModel: () => this.programmingModel,
      log: (level: RpcLogLevel, category: RpcLogCategory, message: string) => this.log(level, category, message),
      Disposable,
    });
  }

  /** After the entry points are loaded, like the worker after the host asked for function metadata. */
  lockIndexing(): void {
    this.#indexingLocked = true;
  }

  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
    if (this.#indexingLocked) throw new CoreApiError('A function can only be registered during app startup.');
    const id = metadata.functionId || metadata.name;
    if (this.functions.has(id)) throw new CoreApiError(`A function with id "${id}" has already been registered.`);
    const entry = this.currentEntryPoint;
    const rpcMetadata: RegisteredFunction['metadata'] = {
      name: metadata.name,
      functionId: id,
      bindings: metadata.bindings,
      retryOptions: metadata.retryOptions ?? null,
      rawBindings: Object.entries(metadata.bindings).map(([name, binding]) => JSON.stringify({ ...binding, name })),
      scriptFile: entry ? path.basename(entry) : 'unknown',
      directory: entry ? path.dirname(entry) : null,
    };
    this.functions.set(id, { id, name: metadata.name, metadata: rpcMetadata, callback });
    return new Disposable(() => {
      if (this.#indexingLocked) throw new CoreApiError('A function can only be disposed during app startup.');
      this.functions.delete(id);
    });
  }

  registerHook(hookName: string, callback: AnyHook): Disposable {
    if (!Object.hasOwn(this.#hooks, hookName)) {
      const error = new RangeError(`Unrecognized hook "${hookName}"`) as RangeError & {
        isAzureFunctionsSystemError: boolean;
      };
      error.isAzureFunctionsSystemError = true;
      throw error;
    }
    const list = this.#hooks[hookName as HookName];
    list.push(callback);
    return new Disposable(() => {
      const index = list.indexOf(callback);
      if (index >= 0) list.splice(index, 1);
    });
  }

  hookCount(hookName: HookName): number {
    return this.#hooks[hookName].length;
  }

  async executeHooks(hookName: HookName, context: HookContext): Promise<void> {
    // A copy: a hook may dispose itself (or others) while running.
    for (const callback of [...this.#hooks[hookName]]) {
      await callback(context);
    }
  }

  async runAppStart(functionAppDirectory: string): Promise<void> {
    const context = withReadOnly(
      { functionAppDirectory },
      { hookData: this.appLevelOnlyHookData, appHookData: this.appHookData },
    );
    await this.executeHooks('appStart', context as AppStartContext);
  }

  async runAppTerminate(): Promise<void> {
    const context = withReadOnly({}, { hookData: this.appLevelOnlyHookData, appHookData: this.appHookData });
    await this.executeHooks('appTerminate', context as HookContext);
  }

  /** Capabilities exchange with the programming model; `@azure/functions` locks `app.setup()` here. */
  async getCapabilities(): Promise<WorkerCapabilities> {
    const pm = this.programmingModel;
    if (!pm?.getCapabilities) return {};
    return await pm.getCapabilities({});
  }

  log(
    level: RpcLogLevel,
    category: RpcLogCategory,
    message: string,
    functionName?: string,
    invocationId?: string,
    logContext?: InvocationLogContext,
  ): void {
    if (this.#hooks.log.length > 0 && !this.#inLogHook) {
      const hookContext = withReadOnly(
        { level, message },
        {
          category,
          hookData: logContext?.hookData ?? {},
          appHookData: this.appHookData,
          invocationContext: logContext?.invocationContext,
        },
      ) as LogHookContext;
      this.#inLogHook = true;
      try {
        for (const callback of [...this.#hooks.log]) callback(hookContext);
      } catch (error) {
        this.#sink('error', 'system', `A log hook threw: ${describeError(error)}`, functionName, invocationId);
      } finally {
        this.#inLogHook = false;
      }
      // Like the worker: hooks may rewrite only what the app itself logged.
      if (category === 'user') {
        level = hookContext.level;
        message = hookContext.message;
      }
    }
    this.#sink(level, category, message, functionName, invocationId);
  }

  /**
   * Runs one invocation the way the worker's InvocationHandler does. Never throws: a failure of the
   * function, of a hook or of the library's conversion comes back as `{ ok: false, error }`.
   */
  async invoke(
    fn: RegisteredFunction,
    request: RpcInvocationRequest & { invocationId: string },
  ): Promise<InvocationOutcome> {
    const pm = this.programmingModel;
    if (!pm)
      return { ok: false, error: new CoreApiError('No programming model was set; is @azure/functions installed?') };
    const coreCtx = new LocalInvocationContext(this, fn, { ...request, functionId: fn.id });
    try {
      const model = await pm.getInvocationModel(coreCtx);
      const hookData: HookData = {};
      const { context, inputs } = await model.getArguments();
      coreCtx.logContext = { hookData, invocationContext: context };

      const shared = { hookData, appHookData: this.appHookData, invocationContext: context };
      const pre = withReadOnly({ functionCallback: fn.callback, inputs }, shared) as PreInvocationContext;
      coreCtx.state = 'preInvocationHooks';
      try {
        await this.executeHooks('preInvocation', pre);
      } finally {
        coreCtx.state = undefined;
      }

      const post = withReadOnly(
        { inputs: pre.inputs, result: null as unknown, error: null as unknown },
        shared,
      ) as PostInvocationContext;
      coreCtx.state = 'invocation';
      try {
        post.result = await model.invokeFunction(context, pre.inputs, pre.functionCallback);
      } catch (error) {
        post.error = error;
      } finally {
        coreCtx.state = undefined;
      }

      coreCtx.state = 'postInvocationHooks';
      try {
        await this.executeHooks('postInvocation', post);
      } finally {
        coreCtx.state = undefined;
      }

      if (post.error !== null && post.error !== undefined) return { ok: false, error: post.error };
      return { ok: true, response: await model.getResponse(context, post.result) };
    } catch (error) {
      return { ok: false, error };
    }
  }
}

class LocalInvocationContext implements CoreInvocationContext {
  readonly invocationId: string;
  readonly request: RpcInvocationRequest;
  readonly metadata: RpcFunctionMetadata;
  state?: InvocationState;
  logContext?: InvocationLogContext;
  readonly #core: FunctionsCore;

  constructor(core: FunctionsCore, fn: RegisteredFunction, request: RpcInvocationRequest & { invocationId: string }) {
    this.#core = core;
    this.invocationId = request.invocationId;
    this.request = request;
    this.metadata = fn.metadata;
  }

  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
    this.#core.log(level, category, message, this.metadata.name ?? undefined, this.invocationId, this.logContext);
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  try {
    return typeof error === 'string' ? error : JSON.stringify(error);
  } catch {
    return String(error);
  }
}

// --- require('@azure/functions-core') -------------------------------------------------------------

type ModuleLoad = (this: unknown, request: string, ...rest: unknown[]) => unknown;
const moduleInternals = Module as unknown as { _load: ModuleLoad };
/** The most recently installed core answers; earlier hosts in the same process keep theirs (the library caches it). */
const activeApis: CoreApi[] = [];
let hookInstalled = false;

/**
 * Makes `require('@azure/functions-core')` return `api` from now on, in this process. Must run before
 * the app (and so `@azure/functions`) is required. Returns an uninstaller.
 */
export function installCoreModule(api: CoreApi): () => void {
  if (!hookInstalled) {
    const originalLoad = moduleInternals._load;
    moduleInternals._load = function (this: unknown, request: string, ...rest: unknown[]): unknown {
      if (request === CORE_MODULE_NAME) {
        const active = activeApis.at(-1);
        if (active) return active;
      }
      return originalLoad.call(this, request, ...rest);
    };
    hookInstalled = true;
  }
  activeApis.push(api);
  return () => {
    const index = activeApis.lastIndexOf(api);
    if (index >= 0) activeApis.splice(index, 1);
  };
}
