/**
 * HTTP trigger route templates, matched like the Functions host (ASP.NET Core routing) for what the
 * app's routes use (`messages`, `notify/{id?}`): case-insensitive; a trailing slash is ignored; a
 * segment is literal text, a parameter `{name}` or an optional parameter `{name?}`. Literal segments
 * outrank parameters, as in RoutePrecedence.
 *
 * The rest of ASP.NET's template grammar (inline constraints such as `{id:int}`, defaults
 * `{name=x}`, catch-alls `{*rest}`, several parts in one segment `{a}.{b}`) is not supported: a
 * function whose route uses it is reported at startup and does not run (host/README.md).
 */
import { HostConfigError } from './settings';

export interface RouteParameter {
  readonly name: string;
  readonly optional: boolean;
}

export interface CompiledRoute {
  /** The full template including the route prefix, e.g. `api/notify/{id?}`. */
  readonly template: string;
  readonly regex: RegExp;
  /** In capture-group order. */
  readonly params: readonly RouteParameter[];
  /** One digit per segment, RoutePrecedence style (literal 1, parameter 2); lower sorts first. */
  readonly precedence: readonly number[];
}

const PARAMETER = /^\{([A-Za-z_][A-Za-z0-9_]*)(\?)?\}$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileRoute(routePrefix: string, route: string): CompiledRoute {
  const template = [routePrefix, route.replace(/^[~/]+/, '')].filter(Boolean).join('/');
  const params: RouteParameter[] = [];
  const precedence: number[] = [];
  let source = '';
  for (const segment of template.split('/').filter(Boolean)) {
    const match = PARAMETER.exec(segment);
    if (match) {
      const param = { name: match[1]!, optional: match[2] === '?' };
      if (params.some((p) => p.name.toLowerCase() === param.name.toLowerCase())) {
        throw new HostConfigError(`Invalid route template "${template}": parameter "${param.name}" appears twice`);
      }
      params.push(param);
      precedence.push(2);
      source += param.optional ? '(?:/([^/]+))?' : '/([^/]+)';
    } else if (/[{}]/.test(segment)) {
      throw new HostConfigError(
        `Route template "${template}": segment "${segment}" is not supported by the local host (only literal text, {name} and {name?}; no constraints, defaults, catch-alls or several parameters in one segment)`,
      );
    } else {
      precedence.push(1);
      source += `/${escapeRegExp(segment)}`;
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
 * Matches a decoded path (`/api/notify/1`) against a route. Returns the route values, with optional
 * parameters that are absent set to "" (the host sends them as null; the library turns that into "").
 */
export function matchRoute(route: CompiledRoute, decodedPath: string): Record<string, string> | undefined {
  const match = route.regex.exec(decodedPath.length > 1 ? decodedPath : decodedPath.replace(/^\/$/, ''));
  if (!match) return undefined;
  const values: Record<string, string> = {};
  for (const [i, param] of route.params.entries()) values[param.name] = match[i + 1] ?? '';
  return values;
}
