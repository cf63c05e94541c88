/**
 * Reads the committed, compiled infra/main.json (scripts/bicep.sh keeps it in step with the Bicep)
 * and evaluates ARM template expressions as far as the infra tests need: parameters, variables,
 * module parameters, copy loops, conditions, and a handful of functions. Anything that only Azure
 * knows at deployment time (uniqueString, reference, tenant, ...) becomes an opaque but stable
 * string such as `«uniqueString(...)»`, so the same expression always gives the same text and
 * values can still be compared across modules.
 */
import fs from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const MAIN_TEMPLATE_PATH = path.join(REPO_ROOT, 'infra/main.json');

// Deliberately loose: a compiled ARM template is JSON, and each test checks the shapes it reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function readMainTemplate(): Json {
  return JSON.parse(fs.readFileSync(MAIN_TEMPLATE_PATH, 'utf8'));
}

// --- Expression parser ----------------------------------------------------------------------------

type Node =
  | { kind: 'literal'; value: string | number }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'property'; target: Node; name: string }
  | { kind: 'index'; target: Node; index: Node };

function parseExpression(source: string): Node {
  let pos = 0;
  const peek = () => source[pos];
  const skipSpace = () => {
    while (pos < source.length && /\s/.test(source[pos]!)) pos++;
  };
  const expect = (ch: string) => {
    skipSpace();
    if (source[pos] !== ch) throw new Error(`expected "${ch}" at ${pos} in ${source}`);
    pos++;
  };

  const primary = (): Node => {
    skipSpace();
    const ch = peek();
    if (ch === "'") {
      pos++;
      let value = '';
      for (;;) {
        if (pos >= source.length) throw new Error(`unterminated string in ${source}`);
        if (source[pos] === "'") {
          if (source[pos + 1] === "'") {
            value += "'";
            pos += 2;
            continue;
          }
          pos++;
          break;
        }
        value += source[pos++];
      }
      return { kind: 'literal', value };
    }
    if (ch !== undefined && /[-0-9]/.test(ch)) {
      const m = /^-?[0-9]+/.exec(source.slice(pos))!;
      pos += m[0].length;
      return { kind: 'literal', value: Number(m[0]) };
    }
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(source.slice(pos));
    if (!m) throw new Error(`unexpected "${ch}" at ${pos} in ${source}`);
    pos += m[0].length;
    expect('(');
    const args: Node[] = [];
    skipSpace();
    if (peek() !== ')') {
      for (;;) {
        args.push(expression());
        skipSpace();
        if (peek() === ',') {
          pos++;
          continue;
        }
        break;
      }
    }
    expect(')');
    return { kind: 'call', name: m[0], args };
  };

  const expression = (): Node => {
    let node = primary();
    for (;;) {
      skipSpace();
      if (peek() === '.') {
        pos++;
        const m = /^[A-Za-z_$][A-Za-z0-9_$-]*/.exec(source.slice(pos));
        if (!m) throw new Error(`expected a property name at ${pos} in ${source}`);
        pos += m[0].length;
        node = { kind: 'property', target: node, name: m[0] };
      } else if (peek() === '[') {
        pos++;
        const index = expression();
        expect(']');
        node = { kind: 'index', target: node, index };
      } else {
        return node;
      }
    }
  };

  const node = expression();
  skipSpace();
  if (pos !== source.length) throw new Error(`trailing input at ${pos} in ${source}`);
  return node;
}

// --- Evaluation -------------------------------------------------------------------------------------

/** True for a string that holds an ARM expression (`[...]`, not the `[[` escape). */
export function isExpression(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('[') && value.endsWith(']') && !value.startsWith('[[');
}

/** A value only Azure knows; `«...»` marks it inside strings. */
export function isOpaque(value: unknown): boolean {
  return typeof value === 'string' && value.includes('«');
}

const show = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
const opaque = (name: string, args: unknown[]) => `«${name}(${args.map(show).join(',')})»`;

export class TemplateContext {
  private readonly variableCache = new Map<string, unknown>();

  constructor(
    readonly template: Json,
    readonly parameterValues: Readonly<Record<string, unknown>>,
    readonly label = 'main',
  ) {}

  /** The value of a template parameter: the given value, else its evaluated defaultValue. */
  parameter(name: string): unknown {
    if (Object.hasOwn(this.parameterValues, name)) return this.parameterValues[name];
    const def = this.template.parameters?.[name];
    if (def === undefined) throw new Error(`${this.label}: unknown parameter ${name}`);
    if (!('defaultValue' in def)) throw new Error(`${this.label}: parameter ${name} has no value and no default`);
    return this.evaluate(def.defaultValue);
  }

  variable(name: string): unknown {
    if (!this.variableCache.has(name)) {
      const vars = this.template.variables ?? {};
      if (!Object.hasOwn(vars, name)) throw new Error(`${this.label}: unknown variable ${name}`);
      this.variableCache.set(name, this.evaluate(vars[name]));
    }
    return this.variableCache.get(name);
  }

  /** Evaluates expressions in strings, recursively through arrays and objects. */
  evaluate(value: unknown, copyIndex?: number): unknown {
    if (isExpression(value)) return this.evalNode(parseExpression(value.slice(1, -1)), copyIndex);
    if (typeof value === 'string' && value.startsWith('[[')) return value.slice(1);
    if (Array.isArray(value)) return value.map((v) => this.evaluate(v, copyIndex));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [this.evaluate(k, copyIndex) as string, this.evaluate(v, copyIndex)]),
      );
    }
    return value;
  }

  private evalNode(node: Node, copyIndex: number | undefined): unknown {
    switch (node.kind) {
      case 'literal':
        return node.value;
      case 'property': {
        const target = this.evalNode(node.target, copyIndex);
        if (typeof target === 'string') return `${target}.${node.name}`; // opaque
        if (target !== null && typeof target === 'object' && node.name in target)
          return (target as Record<string, unknown>)[node.name];
        throw new Error(`${this.label}: no property ${node.name} on ${show(target)}`);
      }
      case 'index': {
        const target = this.evalNode(node.target, copyIndex);
        const index = this.evalNode(node.index, copyIndex);
        if (Array.isArray(target) && typeof index === 'number') return target[index];
        if (typeof target === 'string') return `${target}[${show(index)}]`;
        return (target as Record<string, unknown>)[index as string];
      }
      case 'call':
        return this.call(node, copyIndex);
    }
  }

  private call(node: Extract<Node, { kind: 'call' }>, copyIndex: number | undefined): unknown {
    const name = node.name.toLowerCase();
    // Lazy functions: only the chosen branch is evaluated, as ARM does.
    if (name === 'if') {
      const condition = this.evalNode(node.args[0]!, copyIndex);
      if (typeof condition !== 'boolean') return opaque('if', [condition]);
      return this.evalNode(node.args[condition ? 1 : 2]!, copyIndex);
    }
    const args = node.args.map((a) => this.evalNode(a, copyIndex));
    const str = (i: number) => show(args[i]);
    switch (name) {
      case 'parameters':
        return this.parameter(args[0] as string);
      case 'variables':
        return this.variable(args[0] as string);
      case 'copyindex':
        if (copyIndex === undefined) throw new Error(`${this.label}: copyIndex() outside a copy loop`);
        return copyIndex + ((args[0] as number | undefined) ?? 0);
      case 'format':
        return str(0).replace(/\{(\d+)(:[^}]*)?\}/g, (_m, i: string) => show(args[Number(i) + 1]));
      case 'concat':
        return args.every(Array.isArray) ? (args as unknown[][]).flat() : args.map(show).join('');
      case 'string':
        return show(args[0]);
      case 'tolower':
        return str(0).toLowerCase();
      case 'toupper':
        return str(0).toUpperCase();
      case 'length':
        return Array.isArray(args[0]) ? args[0].length : isOpaque(args[0]) ? opaque('length', args) : str(0).length;
      case 'equals':
        return isOpaque(args[0]) || isOpaque(args[1])
          ? opaque('equals', args)
          : JSON.stringify(args[0]) === JSON.stringify(args[1]);
      case 'not':
        return typeof args[0] === 'boolean' ? !args[0] : opaque('not', args);
      case 'and':
        return args.every((a) => typeof a === 'boolean') ? args.every(Boolean) : opaque('and', args);
      case 'or':
        return args.every((a) => typeof a === 'boolean') ? args.some(Boolean) : opaque('or', args);
      case 'greater':
      case 'greaterorequals':
      case 'less':
      case 'lessorequals': {
        const [a, b] = args;
        if (typeof a !== 'number' || typeof b !== 'number') return opaque(node.name, args);
        return name === 'greater' ? a > b : name === 'greaterorequals' ? a >= b : name === 'less' ? a < b : a <= b;
      }
      case 'empty': {
        const v = args[0];
        if (v === null || v === undefined) return true;
        if (typeof v === 'string') return v === '';
        if (Array.isArray(v)) return v.length === 0;
        return Object.keys(v as object).length === 0;
      }
      case 'createobject': {
        const obj: Record<string, unknown> = {};
        for (let i = 0; i < args.length; i += 2) obj[args[i] as string] = args[i + 1];
        return obj;
      }
      case 'createarray':
        return args;
      case 'union':
        return args.every(Array.isArray)
          ? [...new Set((args as unknown[][]).flat().map((v) => JSON.stringify(v)))].map((v) => JSON.parse(v))
          : Object.assign({}, ...(args as object[]));
      case 'true':
        return true;
      case 'false':
        return false;
      case 'null':
        return null;
      case 'resourceid':
      case 'subscriptionresourceid':
      case 'tenantresourceid': {
        // resourceId([subscriptionId], [resourceGroup], type, name1, name2, ...): the type is the
        // first argument containing "/"; returned as "<type>/<name1>/<name2>".
        const typeAt = args.findIndex((a) => typeof a === 'string' && /^[A-Za-z]+\.[A-Za-z.]+\//.test(a));
        return [args[typeAt], ...args.slice(typeAt + 1)].map(show).join('/');
      }
      case 'reference': {
        // languageVersion 2.0: reference('<symbolic name>') of a plain resource -> its id, so it
        // compares equal to reference(resourceId(...)). Modules keep their symbolic name.
        const symbolic = Array.isArray(this.template.resources)
          ? undefined
          : this.template.resources?.[args[0] as string];
        if (symbolic && symbolic.type !== 'Microsoft.Resources/deployments') {
          return opaque('reference', [`${symbolic.type}/${show(this.evaluate(symbolic.name))}`, ...args.slice(1)]);
        }
        return opaque('reference', args);
      }
      case 'fail':
        throw new Error(`fail(): ${str(0)}`);
      default:
        // uniqueString, guid, reference, tenant, subscription, deployer, deployment, ...
        return opaque(node.name, args);
    }
  }
}

// --- Resources and modules --------------------------------------------------------------------------

export interface EvaluatedResource {
  readonly ctx: TemplateContext;
  /** Symbolic name (languageVersion 2.0 templates) or the array index. */
  readonly key: string;
  readonly type: string;
  readonly name: string;
  /** `<type>/<name>`, the form `resourceId(...)` evaluates to here. */
  readonly id: string;
  readonly raw: Json;
  readonly copyIndex: number | undefined;
  /** Evaluates a property path of the resource, e.g. `properties.siteConfig.appSettings`. */
  get(pathText: string): unknown;
}

function rawResources(template: Json): [string, Json][] {
  const resources = template.resources ?? [];
  return Array.isArray(resources) ? resources.map((r, i) => [String(i), r]) : Object.entries(resources);
}

/** The resources of one template that are deployed with the context's parameter values (copy loops expanded, existing resources left out). */
export function resourcesOf(ctx: TemplateContext): EvaluatedResource[] {
  const out: EvaluatedResource[] = [];
  for (const [key, raw] of rawResources(ctx.template)) {
    if (raw.existing === true) continue;
    const count = raw.copy ? (ctx.evaluate(raw.copy.count) as number) : 1;
    for (let i = 0; i < count; i++) {
      const copyIndex = raw.copy ? i : undefined;
      if ('condition' in raw) {
        const condition = ctx.evaluate(raw.condition, copyIndex);
        if (typeof condition !== 'boolean')
          throw new Error(`${ctx.label}/${key}: condition is not known: ${show(condition)}`);
        if (!condition) continue;
      }
      const type = raw.type as string;
      const name = ctx.evaluate(raw.name, copyIndex) as string;
      out.push({
        ctx,
        key,
        type,
        name,
        id: `${type}/${name}`,
        raw,
        copyIndex,
        get: (pathText) =>
          ctx.evaluate(
            pathText.split('.').reduce<Json>((v, k) => (v === undefined ? undefined : v[k]), raw),
            copyIndex,
          ),
      });
    }
  }
  return out;
}

export interface Module {
  readonly key: string;
  readonly resource: EvaluatedResource;
  /** The module's own template, evaluated with the parameter values its parent passes. */
  readonly ctx: TemplateContext;
}

/** The modules (nested deployments) of a template that are deployed. */
export function modulesOf(ctx: TemplateContext): Module[] {
  return resourcesOf(ctx)
    .filter((r) => r.type === 'Microsoft.Resources/deployments')
    .map((resource) => {
      const rawParams = resource.raw.properties.parameters ?? {};
      const values: Record<string, unknown> = {};
      for (const [name, spec] of Object.entries<Json>(rawParams)) {
        // Either { value: ... } or one expression that yields { value: ... }.
        const evaluated = ctx.evaluate(spec, resource.copyIndex) as { value?: unknown; reference?: unknown };
        if ('reference' in evaluated) values[name] = `«keyVaultReference(${name})»`;
        else values[name] = evaluated.value;
      }
      return {
        key: resource.key,
        resource,
        ctx: new TemplateContext(resource.raw.properties.template, values, `${ctx.label}/${resource.key}`),
      };
    });
}

export function moduleOf(ctx: TemplateContext, key: string): Module {
  const found = modulesOf(ctx).find((m) => m.key === key);
  if (!found) throw new Error(`${ctx.label}: no deployed module "${key}"`);
  return found;
}

/** Every deployed resource of the template and of its modules, depth first. */
export function allResources(ctx: TemplateContext): EvaluatedResource[] {
  return [...resourcesOf(ctx), ...modulesOf(ctx).flatMap((m) => allResources(m.ctx))];
}

/** Every template in the file: main and each nested module template (deployed or not). */
export function allTemplates(template: Json, label = 'main'): { label: string; template: Json }[] {
  const nested = rawResources(template)
    .filter(([, r]) => r.type === 'Microsoft.Resources/deployments' && r.properties?.template)
    .flatMap(([key, r]) => allTemplates(r.properties.template, `${label}/${key}`));
  return [{ label, template }, ...nested];
}

export function mainContext(parameterValues: Record<string, unknown>): TemplateContext {
  return new TemplateContext(readMainTemplate(), parameterValues);
}

/** Parameter values for the two bot modes the template supports. */
export const SCENARIOS = {
  /** Defaults: the user-assigned identity is the bot; no producer; deployer from deployer(). */
  userAssignedMsi: { environmentName: 'courier-test', location: 'westeurope' },
  /** An app registration whose secret goes to Key Vault, plus a producer and an explicit deployer. */
  singleTenant: {
    environmentName: 'courier-test',
    location: 'westeurope',
    botAppType: 'SingleTenant',
    botAppId: '11111111-2222-4333-8444-555555555555',
    botAppPassword: 'not-a-real-secret-7f3a',
    producerPrincipalId: '99999999-8888-4777-8666-555555555555',
    principalId: '12121212-3434-4565-8787-909090909090',
    principalType: 'User',
  },
} as const satisfies Record<string, Record<string, unknown>>;
