/**
 * HTTP trigger route templates, matched like the Functions host (ASP.NET Core routing):
 * case-insensitive; a trailing slash is ignored; `{name}`, `{name?}`, `{name=default}`,
 * `{*catchAll}`, `{**catchAll}` and the common inline constraints (`{id:int}`, `{x:guid}`,
 * `{s:minlength(2)}`, `{s:regex(^a)}`, ...). More specific templates win (literal segments over
 * constrained parameters over plain parameters over catch-alls), as in RoutePrecedence.
 */
import { HostConfigError } from './settings';

type Constraint = (value: string) => boolean;

export interface RouteParameter {
  readonly name: string;
  readonly optional: boolean;
  readonly catchAll: boolean;
  readonly defaultValue?: string;
  readonly constraints: readonly Constraint[];
}

export interface CompiledRoute {
  /** The full template including the route prefix, e.g. `api/items/{id:int}`. */
  readonly template: string;
  readonly regex: RegExp;
  /** In capture-group order. */
  readonly params: readonly RouteParameter[];
  /** RoutePrecedence digits, one per segment; lower sorts first. */
  readonly precedence: readonly number[];
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function parseArgs(args: string | undefined): string[] {
  return args === undefined ? [] : args.split(',').map((a) => a.trim());
}

function toNumberArg(raw: string | undefined, constraint: string): number {
  const value = Number(raw);
  if (raw === undefined || !Number.isFinite(value)) throw new HostConfigError(`Route constraint "${constraint}" needs a numeric argument`);
  return value;
}

function buildConstraint(spec: string): Constraint {
  const match = /^([a-zA-Z]+)(?:\((.*)\))?$/s.exec(spec);
  if (!match) throw new HostConfigError(`The constraint reference '${spec}' could not be resolved.`);
  const name = match[1]!.toLowerCase();
  const rawArgs = match[2];
  const args = parseArgs(rawArgs);
  switch (name) {
    case 'int':
      return (v) => /^-?\d+$/.test(v) && Number(v) >= INT32_MIN && Number(v) <= INT32_MAX;
    case 'long':
      return (v) => /^-?\d+$/.test(v) && BigInt(v) >= -(2n ** 63n) && BigInt(v) < 2n ** 63n;
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'guid':
      return (v) => /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[)}]?$/i.test(v);
    case 'alpha':
      return (v) => /^[a-z]+$/i.test(v);
    case 'double':
    case 'float':
    case 'decimal':
      return (v) => v.trim() !== '' && Number.isFinite(Number(v));
    case 'datetime':
      return (v) => !Number.isNaN(Date.parse(v));
    case 'minlength': {
      const n = toNumberArg(args[0], spec);
      return (v) => v.length >= n;
    }
    case 'maxlength': {
      const n = toNumberArg(args[0], spec);
      return (v) => v.length <= n;
    }
    case 'length': {
      const a = toNumberArg(args[0], spec);
      const b = args.length > 1 ? toNumberArg(args[1], spec) : a;
      return (v) => v.length >= a && v.length <= b;
    }
    case 'min': {
      const n = toNumberArg(args[0], spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= n;
    }
    case 'max': {
      const n = toNumberArg(args[0], spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) <= n;
    }
    case 'range': {
      const a = toNumberArg(args[0], spec);
      const b = toNumberArg(args[1], spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= a && Number(v) <= b;
    }
    case 'regex': {
      // ASP.NET escapes braces in templates as {{ }}; the regex constraint is case-insensitive.
      const re = new RegExp((rawArgs ?? '').replace(/\{\{/g, '{').replace(/\}\}/g, '}'), 'i');
      return (v) => re.test(v);
    }
    default:
      throw new HostConfigError(`The constraint reference '${name}' could not be resolved.`);
  }
}

type Token = { kind: 'literal'; text: string } | { kind: 'param'; param: RouteParameter; constrained: boolean };

/** Splits a segment into literals and `{...}` parameters; parentheses may contain braces. */
function tokenize(segment: string, template: string): Token[] {
  const tokens: Token[] = [];
  let literal = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === '{' && segment[i + 1] === '{') {
      literal += '{';
      i++;
      continue;
    }
    if (ch === '}' && segment[i + 1] === '}') {
      literal += '}';
      i++;
      continue;
    }
    if (ch !== '{') {
      literal += ch;
      continue;
    }
    let depth = 0;
    let end = -1;
    for (let j = i + 1; j < segment.length; j++) {
      const c = segment[j];
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === '}' && depth <= 0) {
        end = j;
        break;
      }
    }
    if (end < 0) throw new HostConfigError(`Invalid route template "${template}": unclosed "{"`);
    if (literal) tokens.push({ kind: 'literal', text: literal });
    literal = '';
    tokens.push(parseParameter(segment.slice(i + 1, end), template));
    i = end;
  }
  if (literal) tokens.push({ kind: 'literal', text: literal });
  return tokens;
}

function parseParameter(body: string, template: string): Token {
  let rest = body.trim();
  let catchAll = false;
  if (rest.startsWith('**')) {
    catchAll = true;
    rest = rest.slice(2);
  } else if (rest.startsWith('*')) {
    catchAll = true;
    rest = rest.slice(1);
  }
  let optional = false;
  let defaultValue: string | undefined;
  const nameMatch = /^[^:=?]+/.exec(rest);
  if (!nameMatch) throw new HostConfigError(`Invalid route template "${template}": empty parameter name`);
  const name = nameMatch[0].trim();
  rest = rest.slice(nameMatch[0].length);
  const constraints: Constraint[] = [];
  // Constraints: ":name" or ":name(args)"; arguments may contain ':' inside parentheses.
  while (rest.startsWith(':')) {
    let depth = 0;
    let end = rest.length;
    for (let j = 1; j < rest.length; j++) {
      const c = rest[j];
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (depth === 0 && (c === ':' || c === '=' || (c === '?' && j === rest.length - 1))) {
        end = j;
        break;
      }
    }
    constraints.push(buildConstraint(rest.slice(1, end)));
    rest = rest.slice(end);
  }
  if (rest === '?') optional = true;
  else if (rest.startsWith('=')) defaultValue = rest.slice(1);
  else if (rest !== '') throw new HostConfigError(`Invalid route template "${template}": cannot parse "{${body}}"`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new HostConfigError(`Invalid route template "${template}": bad parameter name "${name}"`);
  return {
    kind: 'param',
    param: { name, optional: optional || catchAll, catchAll, ...(defaultValue === undefined ? {} : { defaultValue }), constraints },
    constrained: constraints.length > 0,
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileRoute(routePrefix: string, route: string): CompiledRoute {
  const template = [routePrefix, route.replace(/^[~/]+/, '')].filter(Boolean).join('/');
  const segments = template.split('/').filter(Boolean);
  const params: RouteParameter[] = [];
  const precedence: number[] = [];
  let source = '';
  const names = new Set<string>();
  const addParam = (param: RouteParameter): void => {
    const key = param.name.toLowerCase();
    if (names.has(key)) throw new HostConfigError(`Invalid route template "${template}": parameter "${param.name}" appears twice`);
    names.add(key);
    params.push(param);
  };

  for (const [index, segment] of segments.entries()) {
    const tokens = tokenize(segment, template);
    const only = tokens.length === 1 ? tokens[0] : undefined;
    if (only?.kind === 'param') {
      const p = only.param;
      if (p.catchAll && index !== segments.length - 1) throw new HostConfigError(`Invalid route template "${template}": a catch-all parameter must be last`);
      addParam(p);
      precedence.push(p.catchAll ? 5 : only.constrained ? 3 : 4);
      const capture = p.catchAll ? '(.*)' : '([^/]+)';
      source += p.optional || p.defaultValue !== undefined ? `(?:/${capture})?` : `/${capture}`;
      continue;
    }
    precedence.push(tokens.length === 1 ? 1 : 2);
    source += '/';
    for (const token of tokens) {
      if (token.kind === 'literal') {
        source += escapeRegExp(token.text);
      } else {
        if (token.param.catchAll) throw new HostConfigError(`Invalid route template "${template}": a catch-all parameter cannot share a segment`);
        addParam(token.param);
        source += token.param.optional ? '([^/]*?)' : '([^/]+?)';
      }
    }
  }
  return { template, regex: new RegExp(`^${source}/?$`, 'i'), params, precedence };
}

/** Negative when `a` is more specific than `b`. */
export function comparePrecedence(a: CompiledRoute, b: CompiledRoute): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < length; i++) {
    const diff = (a.precedence[i] ?? 0) - (b.precedence[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** Decodes percent-escapes except `%2F`, which stays encoded as in ASP.NET Core's PathString. */
export function decodePath(rawPath: string): string {
  return rawPath
    .split(/%2f/i)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    })
    .join('%2F');
}

/**
 * Matches a decoded path (`/api/items/1`) against a route. Returns the route values, with optional
 * parameters that are absent set to "" (the host sends them as null; the library turns that into "").
 */
export function matchRoute(route: CompiledRoute, decodedPath: string): Record<string, string> | undefined {
  const match = route.regex.exec(decodedPath.length > 1 ? decodedPath : decodedPath.replace(/^\/$/, ''));
  if (!match) return undefined;
  const values: Record<string, string> = {};
  for (const [i, param] of route.params.entries()) {
    const raw = match[i + 1];
    if (raw === undefined || raw === '') {
      if (param.defaultValue !== undefined) values[param.name] = param.defaultValue;
      else if (param.optional) values[param.name] = '';
      else return undefined;
      continue;
    }
    if (!param.constraints.every((check) => check(raw))) return undefined;
    values[param.name] = raw;
  }
  return values;
}
