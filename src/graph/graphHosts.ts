/**
 * Where Microsoft Graph lives in each cloud, and the one check every Graph URL passes before a
 * Graph token is attached to it. Pure.
 *
 * Service roots (learn.microsoft.com/graph/deployments, "Microsoft Graph and Graph Explorer service
 * root endpoints"): global `https://graph.microsoft.com`; US Government L4 `https://graph.microsoft.us`;
 * L5 (DoD) `https://dod-graph.microsoft.us`. The same page: "If you're working in a Microsoft 365 GCC
 * environment, continue using the worldwide endpoints" (so `gcc` uses graph.microsoft.com), and
 * "Access tokens acquired for a national cloud deployment are not interchangeable". The token scope
 * names the same host (`<root>/.default`, learn.microsoft.com/graph/sdks/national-clouds).
 */
import type { CloudName } from '../clouds';
import { GraphError } from './graphResult';

export const GRAPH_HOSTS: Readonly<Record<CloudName, string>> = Object.freeze({
  public: 'graph.microsoft.com',
  gcc: 'graph.microsoft.com',
  gcchigh: 'graph.microsoft.us',
  dod: 'dod-graph.microsoft.us',
});

/** The Graph host of a cloud (`BOT_CLOUD`). */
export function graphHostFor(cloud: CloudName): string {
  return GRAPH_HOSTS[cloud];
}

/** The app-only scope for Graph tokens in a cloud: `https://<graph host>/.default`. */
export function graphScopeFor(cloud: CloudName): string {
  return `https://${graphHostFor(cloud)}/.default`;
}

/**
 * The v1.0 base every Graph call of teams-courier starts with: the cloud's host, or an override
 * (tests, the emulator) that must be https without credentials, query or fragment.
 */
export function graphBaseFor(cloud: CloudName, override?: string): URL {
  if (override === undefined) return new URL(`https://${graphHostFor(cloud)}/v1.0/`);
  let url: URL;
  try {
    url = new URL(override);
  } catch {
    throw new GraphError('GRAPH_BASE_INVALID', 'the Graph base URL override is not a valid URL');
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')
    throw new GraphError(
      'GRAPH_BASE_INVALID',
      `the Graph base URL override must be https without credentials, query or fragment (got ${url.protocol}//${url.host})`,
    );
  return new URL(url.href.endsWith('/') ? url.href : `${url.href}/`);
}

/**
 * `{base}{segments…}` with every segment encoded. `.` and `..` (also as `%2e`) would move the URL
 * off the base, and an empty segment changes the resource: all are refused, never sent.
 */
export function graphUrl(base: URL, segments: readonly string[], query?: Readonly<Record<string, string>>): URL {
  const bad = segments.find((s) => s === '' || /^(\.|%2e){1,2}$/i.test(s));
  if (bad !== undefined) throw new GraphError('GRAPH_URL_REFUSED', `"${bad}" cannot be an id in a Graph URL`);
  const url = new URL(segments.map(encodeURIComponent).join('/'), base);
  // Spaces as %20, not the form encoding's `+`, and `$filter` as the Graph docs write it.
  const search = Object.entries(query ?? {}).map(([name, value]) => `${name}=${encodeURIComponent(value)}`);
  if (search.length > 0) url.search = search.join('&');
  return assertOnGraphBase(url, base);
}

/**
 * Throws GRAPH_URL_REFUSED unless `url` is on the Graph base: same https origin, path under the
 * base path, no credentials. Checked right before a Graph token is attached, whatever built the URL.
 */
export function assertOnGraphBase(url: URL | string, base: URL): URL {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    throw new GraphError('GRAPH_URL_REFUSED', 'not a valid URL');
  }
  const onBase =
    parsed.protocol === 'https:' &&
    base.protocol === 'https:' &&
    parsed.username === '' &&
    parsed.password === '' &&
    parsed.origin === base.origin &&
    parsed.pathname.startsWith(base.pathname);
  if (!onBase)
    throw new GraphError(
      'GRAPH_URL_REFUSED',
      `${parsed.protocol}//${parsed.host}${parsed.pathname} is not on the Graph base`,
    );
  return parsed;
}
