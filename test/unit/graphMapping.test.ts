/**
 * Proactive installation through Graph, the pure parts: the hosts per cloud, the URL guard before a
 * Graph token leaves, Graph's answers as typed failures, and the install -> find -> chat sequence.
 */
import { describe, expect, it } from 'vitest';
import type { GraphClient } from '../../src/graph/graphClient';
import { assertOnGraphBase, graphBaseFor, graphHostFor, graphScopeFor, graphUrl } from '../../src/graph/graphHosts';
import {
  GRAPH_FAILURE_CODES,
  GraphError,
  graphErrorOf,
  mapGraphFailure,
  type GraphAnswer,
  type GraphResult,
} from '../../src/graph/graphResult';
import { installAndGetChat } from '../../src/graph/installForUser';

const TENANT = '72f988bf-0000-4000-8000-00000000c0de';
const USER = '6f2c1a4e-1b7d-4c38-9d5e-0000000000a1';
const APP = 'b1c5353a-7aca-41b3-830f-27d5218fe0e5';
const now = new Date('2026-11-25T10:00:00Z');
const ctx = { tenantId: TENANT, userId: USER, catalogId: APP };

const graphBody = (code: string, message: string) => ({
  error: { code, message, innerError: { date: '2026-11-25T10:00:00', 'request-id': 'r', 'client-request-id': 'r' } },
});
const answer = (status: number, body: unknown = '', headers: GraphAnswer['headers'] = {}): GraphAnswer => ({
  status,
  headers,
  body,
});

describe('Graph hosts per cloud', () => {
  it('public and GCC use graph.microsoft.com, GCC High graph.microsoft.us, DoD dod-graph.microsoft.us', () => {
    expect(['public', 'gcc', 'gcchigh', 'dod'].map((c) => graphHostFor(c as 'public'))).toEqual([
      'graph.microsoft.com',
      'graph.microsoft.com',
      'graph.microsoft.us',
      'dod-graph.microsoft.us',
    ]);
    expect(graphScopeFor('public')).toBe('https://graph.microsoft.com/.default');
    expect(graphScopeFor('dod')).toBe('https://dod-graph.microsoft.us/.default');
    expect(graphBaseFor('gcchigh').href).toBe('https://graph.microsoft.us/v1.0/');
  });

  it('takes an https override (the emulator) and refuses anything else', () => {
    expect(graphBaseFor('public', 'https://127.0.0.1:8443/v1.0').href).toBe('https://127.0.0.1:8443/v1.0/');
    for (const bad of [
      'http://127.0.0.1:8443/v1.0/',
      'https://user:pw@graph.example/v1.0/',
      'https://graph.example/v1.0/?x=1',
      'https://graph.example/v1.0/#x',
      'not a url',
    ]) {
      expect(() => graphBaseFor('public', bad), bad).toThrow(GraphError);
    }
  });
});

describe('the Graph URL guard', () => {
  const base = graphBaseFor('public');

  it('builds URLs under the base with every segment encoded and the filter as the docs write it', () => {
    const url = graphUrl(base, ['users', USER, 'teamwork', 'installedApps', 'a/b+c=='], {
      $expand: 'teamsApp',
      $filter: `teamsApp/id eq '${APP}'`,
    });
    expect(url.pathname).toBe(`/v1.0/users/${USER}/teamwork/installedApps/a%2Fb%2Bc%3D%3D`);
    expect(url.search).not.toContain('+');
    expect(url.searchParams.get('$filter')).toBe(`teamsApp/id eq '${APP}'`);
    expect(url.searchParams.get('$expand')).toBe('teamsApp');
  });

  it('refuses ids that would move the URL off its resource', () => {
    for (const bad of ['..', '.', '']) {
      expect(() => graphUrl(base, ['users', bad, 'teamwork']), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'GRAPH_URL_REFUSED' }),
      );
    }
  });

  it('lets through only https URLs on the base origin and path', () => {
    expect(assertOnGraphBase('https://graph.microsoft.com/v1.0/users/x', base).host).toBe('graph.microsoft.com');
    for (const bad of [
      'http://graph.microsoft.com/v1.0/users/x',
      'https://graph.microsoft.com:8443/v1.0/users/x',
      'https://graph.microsoft.com.evil.example/v1.0/users/x',
      'https://evil.example/v1.0/users/x',
      'https://smba.trafficmanager.net/teams/v3/conversations',
      'https://graph.microsoft.com/beta/users/x',
      'https://user:pw@graph.microsoft.com/v1.0/users/x',
      'https://login.microsoftonline.com/common/oauth2/v2.0/token',
      'nonsense',
    ]) {
      expect(() => assertOnGraphBase(bad, base), bad).toThrow(expect.objectContaining({ code: 'GRAPH_URL_REFUSED' }));
    }
  });
});

describe("Graph's answers as failures", () => {
  it('429 and 503 are retryable with Retry-After in ms (seconds or an HTTP date); other 5xx retryable too', () => {
    expect(
      mapGraphFailure(
        'install',
        answer(429, graphBody('TooManyRequests', 'slow down'), { 'retry-after': '7' }),
        ctx,
        now,
      ),
    ).toMatchObject({
      code: 'GraphThrottled',
      retryable: true,
      retryAfterMs: 7000,
      status: 429,
      graphCode: 'TooManyRequests',
    });
    expect(
      mapGraphFailure(
        'findInstallation',
        answer(503, '', { 'Retry-After': 'Wed, 25 Nov 2026 10:00:30 GMT' }),
        ctx,
        now,
      ),
    ).toMatchObject({ code: 'GraphUnavailable', retryable: true, retryAfterMs: 30_000 });
    for (const status of [500, 502, 504]) {
      const f = mapGraphFailure('getChat', answer(status), ctx, now);
      expect(f).toMatchObject({ code: 'GraphUnavailable', retryable: true, status });
      expect(f.retryAfterMs).toBeUndefined();
    }
  });

  it("403 is a permanent 'admin consent missing' with Graph's code and message", () => {
    const f = mapGraphFailure(
      'install',
      answer(
        403,
        graphBody(
          'Forbidden',
          "Missing role permissions on the request. API requires one of 'TeamsAppInstallation.ReadWriteSelfForUser.All'. Roles on the request ''.",
        ),
      ),
      ctx,
      now,
    );
    expect(f).toMatchObject({ code: 'GraphConsentMissing', retryable: false, graphCode: 'Forbidden', status: 403 });
    expect(f.reason).toContain(
      `admin consent missing for TeamsAppInstallation.ReadWriteSelfForUser.All in tenant ${TENANT}`,
    );
    expect(f.reason).toContain('Graph 403 Forbidden: Missing role permissions');
  });

  it("403 'not allowed to manage the Teams App' points at the manifest's webApplicationInfo.id", () => {
    const f = mapGraphFailure(
      'install',
      answer(403, graphBody('Forbidden', `AAD App Id 'x' is not allowed to manage the Teams App '${APP}'.`)),
      ctx,
      now,
    );
    expect(f).toMatchObject({ code: 'GraphAppNotManageable', retryable: false });
    expect(f.reason).toContain('webApplicationInfo.id');
  });

  it('404 says whether the user or the app is unknown when Graph says so, and neither when it does not', () => {
    expect(
      mapGraphFailure('install', answer(404, graphBody('NotFound', `User '${USER}' was not found.`)), ctx, now),
    ).toMatchObject({ code: 'GraphUserUnknown', retryable: false });
    expect(
      mapGraphFailure(
        'install',
        answer(404, graphBody('Request_ResourceNotFound', "Resource 'x' does not exist.")),
        ctx,
        now,
      ).code,
    ).toBe('GraphUserUnknown');
    const app = mapGraphFailure(
      'install',
      answer(404, graphBody('NotFound', `Teams app '${APP}' not found.`)),
      ctx,
      now,
    );
    expect(app).toMatchObject({ code: 'GraphAppUnknown', retryable: false });
    expect(app.reason).toContain(`Teams app ${APP} is not in the catalog of tenant ${TENANT}`);
    const bare = mapGraphFailure('install', answer(404, graphBody('NotFound', 'Not Found')), ctx, now);
    expect(bare).toMatchObject({ code: 'GraphNotFound', retryable: false });
    expect(bare.reason).toContain(`user ${USER} or Teams app ${APP}`);
    const chat = mapGraphFailure(
      'getChat',
      answer(404, graphBody('NotFound', "App installation 'abc' was not found.")),
      { tenantId: TENANT, userId: USER, installationId: 'abc' },
      now,
    );
    expect(chat).toMatchObject({ code: 'GraphNotFound' });
    expect(chat.reason).toContain('installation abc');
  });

  it("400 is permanent with Graph's message; 401 and any other 4xx are permanent", () => {
    const f = mapGraphFailure(
      'findInstallation',
      answer(400, graphBody('BadRequest', 'Invalid filter clause.')),
      ctx,
      now,
    );
    expect(f).toMatchObject({ code: 'GraphBadRequest', retryable: false });
    expect(f.reason).toContain('Graph 400 BadRequest: Invalid filter clause.');
    expect(mapGraphFailure('install', answer(401), ctx, now)).toMatchObject({
      code: 'GraphUnauthorized',
      retryable: false,
    });
    expect(mapGraphFailure('install', answer(418, 'teapot'), ctx, now)).toMatchObject({
      code: 'GraphRefused',
      retryable: false,
      reason: 'Graph refused the request (Graph 418: teapot)',
    });
  });

  it("keeps Graph's message to one bounded line", () => {
    const long = `first\r\nsecond ${'x'.repeat(1000)}`;
    const { message } = graphErrorOf(graphBody('BadRequest', long));
    expect(message).not.toMatch(/[\r\n]/);
    expect(message!.length).toBeLessThanOrEqual(301);
    expect(graphErrorOf(undefined)).toEqual({});
    expect(graphErrorOf({ error: 'odd' })).toEqual({});
  });

  it('says for every code whether it is retryable, and the failures follow it', () => {
    expect(
      Object.entries(GRAPH_FAILURE_CODES)
        .filter(([, v]) => v.retryable)
        .map(([k]) => k),
    ).toEqual([
      'GraphThrottled',
      'GraphUnavailable',
      'GraphNetwork',
      'GraphTokenUnavailable',
      'GraphInstallationPending',
    ]);
  });
});

describe('installAndGetChat', () => {
  type Fake = Pick<GraphClient, 'installAppForUser' | 'findInstallation' | 'getInstallationChat'>;
  const ok = <T>(value: T): GraphResult<T> => ({ ok: true, value });
  const fake = (over: Partial<Fake> = {}): Fake & { calls: string[] } => {
    const calls: string[] = [];
    const record = <T>(call: string, value: T): T => {
      calls.push(call);
      return value;
    };
    return {
      calls,
      installAppForUser: async (...args) => record(`install ${args.join(' ')}`, ok({ installed: 'new' as const })),
      findInstallation: async (...args) => record(`find ${args.join(' ')}`, ok<string | undefined>('inst-1')),
      getInstallationChat: async (...args) => record(`chat ${args.join(' ')}`, ok('19:chat@unq.gbl.spaces')),
      ...over,
    };
  };

  it('installs, finds the installation, and returns its chat', async () => {
    const graph = fake();
    expect(await installAndGetChat(graph, TENANT, USER, APP)).toEqual({
      ok: true,
      value: { installed: 'new', installationId: 'inst-1', chatId: '19:chat@unq.gbl.spaces' },
    });
    expect(graph.calls).toEqual([
      `install ${TENANT} ${USER} ${APP}`,
      `find ${TENANT} ${USER} ${APP}`,
      `chat ${TENANT} ${USER} inst-1`,
    ]);
  });

  it('an installation Graph does not list yet is GraphInstallationPending (retryable)', async () => {
    const graph = fake({ findInstallation: async () => ok(undefined) });
    const result = await installAndGetChat(graph, TENANT, USER, APP);
    expect(result).toMatchObject({ ok: false, failure: { code: 'GraphInstallationPending', retryable: true } });
  });

  it('stops at the first failure', async () => {
    const refused = { ok: false as const, failure: mapGraphFailure('install', answer(403), ctx, now) };
    const graph = fake({ installAppForUser: async () => refused });
    expect(await installAndGetChat(graph, TENANT, USER, APP)).toBe(refused);
    expect(graph.calls).toEqual([]);
  });
});
