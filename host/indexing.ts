/**
 * Turns the functions the app registered into what the host runs: HTTP routes and queue listeners.
 * A function with an indexing error is reported and skipped, and the others still run, as in the
 * Functions host ("The 'x' function is in error: ..."). Bindings other than the trigger and an HTTP
 * trigger's `http` output (queue outputs included: no function of the app uses one) are reported as
 * ignored.
 */
import type { RegisteredFunction } from './functionsCore';
import type { HttpFunction } from './httpServer';
import { isValidQueueName } from './queueListener';
import { comparePrecedence, compileRoute } from './routes';
import type { RpcBindingInfo } from './rpcTypes';
import {
  lookupSetting,
  resolveAppSettingExpressions,
  resolveStorageConnection,
  type Settings,
  type StorageConnection,
} from './settings';

export interface QueueTarget {
  readonly queueName: string;
  readonly connection: StorageConnection;
}

export interface QueueFunction {
  readonly fn: RegisteredFunction;
  readonly triggerBindingName: string;
  readonly target: QueueTarget;
}

export interface FunctionIssue {
  readonly name: string;
  readonly message: string;
}

export interface IndexedFunctions {
  readonly http: HttpFunction[];
  readonly queue: QueueFunction[];
  /** Functions that will not run. */
  readonly errors: FunctionIssue[];
  /** Functions that run, with something the local host ignores. */
  readonly warnings: FunctionIssue[];
  /** Functions turned off by `AzureWebJobs.<name>.Disabled` or left out of host.json `functions`. */
  readonly disabled: string[];
}

export interface IndexOptions {
  readonly routePrefix: string;
  /** host.json `functions`: when set, only these functions run. */
  readonly only?: readonly string[];
}

function isDisabled(name: string, settings: Settings): boolean {
  const value =
    lookupSetting(settings, `AzureWebJobs.${name}.Disabled`) ??
    lookupSetting(settings, `AzureWebJobs_${name}_Disabled`);
  return value !== undefined && /^(true|1)$/i.test(value.trim());
}

/** The host's function name rule (FunctionNameValidationRegex). */
const FUNCTION_NAME = /^[a-z][a-z0-9_-]{0,127}$/i;

function isTriggerType(type: string | null | undefined): boolean {
  return !!type && /trigger$/i.test(type);
}

/** `%Setting%` expressions resolved, lower-cased ("must be lowercase; coerce here to be nice") and validated. */
export function resolveQueueTarget(binding: RpcBindingInfo, settings: Settings): QueueTarget {
  if (typeof binding.queueName !== 'string' || binding.queueName.trim() === '')
    throw new Error('queueName is required');
  const queueName = resolveAppSettingExpressions(binding.queueName, settings).trim().toLowerCase();
  if (!isValidQueueName(queueName)) {
    throw new Error(
      `Invalid queue name "${queueName}": 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit`,
    );
  }
  const connection = resolveStorageConnection(
    typeof binding.connection === 'string' ? binding.connection : undefined,
    settings,
  );
  return { queueName, connection };
}

export function indexFunctions(
  functions: Iterable<RegisteredFunction>,
  settings: Settings,
  options: IndexOptions,
): IndexedFunctions {
  const result: IndexedFunctions = { http: [], queue: [], errors: [], warnings: [], disabled: [] };
  const seen = new Set<string>();
  const only = options.only?.map((n) => n.toLowerCase());

  for (const fn of functions) {
    if (isDisabled(fn.name, settings) || (only !== undefined && !only.includes(fn.name.toLowerCase()))) {
      result.disabled.push(fn.name);
      continue;
    }
    try {
      if (!FUNCTION_NAME.test(fn.name)) {
        throw new Error(
          'Function names must start with a letter and contain only letters, digits, "_" and "-", at most 128 characters',
        );
      }
      if (seen.has(fn.name.toLowerCase()))
        throw new Error('Another function has the same name (names are case-insensitive)');
      seen.add(fn.name.toLowerCase());

      const bindings = Object.entries(fn.metadata.bindings);
      const triggers = bindings.filter(([, b]) => isTriggerType(b.type));
      if (triggers.length !== 1)
        throw new Error(`A function must have exactly one trigger binding (found ${triggers.length})`);
      const [triggerName, trigger] = triggers[0]!;
      const triggerType = String(trigger.type).toLowerCase();

      const ignored: string[] = [];
      for (const [name, binding] of bindings) {
        if (name === triggerName) continue;
        const type = String(binding.type ?? '').toLowerCase();
        if (binding.direction === 'out' && type === 'http') {
          if (triggerType !== 'httptrigger') ignored.push(`${name} (http output without an HTTP trigger)`);
        } else ignored.push(`${name} (${binding.direction ?? '?'} ${binding.type ?? '?'})`);
      }

      if (triggerType === 'httptrigger') {
        const route = compileRoute(
          options.routePrefix,
          typeof trigger.route === 'string' && trigger.route !== '' ? trigger.route : fn.name,
        );
        const methods =
          Array.isArray(trigger.methods) && trigger.methods.length > 0
            ? trigger.methods.map((m) => String(m).toUpperCase())
            : undefined;
        result.http.push({ fn, route, methods });
      } else if (triggerType === 'queuetrigger') {
        result.queue.push({ fn, triggerBindingName: triggerName, target: resolveQueueTarget(trigger, settings) });
      } else {
        throw new Error(`The local host does not run "${trigger.type}" triggers (only httpTrigger and queueTrigger)`);
      }

      if (ignored.length > 0)
        result.warnings.push({ name: fn.name, message: `bindings the local host ignores: ${ignored.join(', ')}` });
    } catch (error) {
      result.errors.push({ name: fn.name, message: (error as Error).message });
    }
  }

  // Stable sort: equal precedence keeps registration order.
  result.http.sort((a, b) => comparePrecedence(a.route, b.route));
  return result;
}
