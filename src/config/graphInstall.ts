/**
 * TEAMS_APP_CATALOG_ID and GRAPH_BASE_URL: proactive installation through Microsoft Graph
 * (docs/graph-install.md). Off unless the catalog id is set.
 */
import type { Problem } from '../errors';
import { parseHttpsUrl, read, type Env } from './parsers';

export interface GraphInstallConfig {
  /** The Teams app's id in the organisation's app catalog (not the manifest id). */
  readonly catalogId: string;
  /** Overrides the cloud's Graph root (tests and the emulator); https only. */
  readonly baseUrl?: string;
}

/** Catalog ids are GUIDs; the pattern leaves room for the forms Graph documents, nothing that reshapes a URL. */
const CATALOG_ID = /^[0-9A-Za-z-]{1,64}$/;

export function loadGraphInstall(env: Env, problems: Problem[]): GraphInstallConfig | undefined {
  const catalogId = read(env, 'TEAMS_APP_CATALOG_ID');
  const baseRaw = read(env, 'GRAPH_BASE_URL');
  const baseUrl = baseRaw === undefined ? undefined : parseHttpsUrl(baseRaw, 'GRAPH_BASE_URL', problems);
  if (catalogId === undefined) return undefined;
  if (!CATALOG_ID.test(catalogId)) {
    problems.push({
      path: 'TEAMS_APP_CATALOG_ID',
      message: 'must be the app catalog id (a GUID: letters, digits and hyphens), e.g. from GET /appCatalogs/teamsApps',
    });
    return undefined;
  }
  return { catalogId, ...(baseUrl === undefined ? {} : { baseUrl }) };
}
