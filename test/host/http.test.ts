import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import { waitFor } from '../../host/emulator/waitFor';
import { records, startFixtureHost, type FixtureHost } from './helpers';

let azurite: AzuriteInstance;
let fixture: FixtureHost;
let base: string;

beforeAll(async () => {
  azurite = await startAzurite();
  fixture = await startFixtureHost(azurite.connectionString);
  base = fixture.host.url;
});

afterAll(async () => {
  await fixture?.host.close();
  await azurite?.stop();
});

describe('routing', () => {
  test('route params, query and headers reach the handler; status, headers and body come back', async () => {
    const res = await fetch(`${base}/api/items/42?q=hello&multi=a&multi=b`, { headers: { 'x-test': 'abc' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fixture')).toBe('yes');
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      id: '42',
      detail: '',
      q: 'hello',
      // The host joins repeated query values with "," before the worker sees them.
      multi: 'a,b',
      header: 'abc',
      method: 'GET',
      url: `${base}/api/items/42?q=hello&multi=a&multi=b`,
      functionName: 'getItem',
      triggerMetadata: null,
    });
    expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('routes match case-insensitively, fill optional params and ignore a trailing slash', async () => {
    const res = await fetch(`${base}/API/Items/7/More/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: '7', detail: 'More' });
  });

  test('the function can set the status', async () => {
    const res = await fetch(`${base}/api/items/1?status=418`);
    expect(res.status).toBe(418);
  });

  test('unknown paths are 404', async () => {
    const res = await fetch(`${base}/api/nothing-here`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('');
  });

  test('a known route with a method it does not allow is 405 with Allow', async () => {
    const res = await fetch(`${base}/api/items/1`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'PUT']);
  });

  test('the default route is the function name, and "**" in main loads nested files', async () => {
    const res = await fetch(`${base}/api/nested/ping`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pong');
  });

  test('the landing page and host status answer', async () => {
    expect((await fetch(`${base}/`)).status).toBe(200);
    const status = await fetch(`${base}/admin/host/status`);
    expect(await status.json()).toMatchObject({ state: 'Running' });
  });
});

describe('bodies and responses', () => {
  test('binary request bodies arrive byte for byte and come back', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
    const res = await fetch(`${base}/api/echo`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'application/x-test' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/x-test');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  test('a body over the cap is 413 and the function does not run', async () => {
    const before = records('postInvocation').length;
    const res = await fetch(`${base}/api/echo`, { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024 + 1, 1) });
    expect(res.status).toBe(413);
    expect(records('postInvocation').length).toBe(before);
  });

  test('a function that returns nothing gives 200 with an empty body', async () => {
    const res = await fetch(`${base}/api/silent`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  test('cookies become Set-Cookie headers', async () => {
    const res = await fetch(`${base}/api/cookies`);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(['session=abc; max-age=60; path=/; secure; samesite=strict; httponly']);
  });

  test('an exception is a 500 with a generic body; the details only go to the log', async () => {
    const res = await fetch(`${base}/api/boom`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('Internal Server Error');
    const failure = await waitFor('failure log', 10_000, () =>
      fixture.lines.find((l) => l.includes('http.invocation.failed') && l.includes('function=boom')),
    );
    expect(failure).toContain('secret internal detail');
    // The app's own log line, with level, function and invocation id.
    expect(
      fixture.lines.some((l) => /^\[func\] \S+ error function=boom invocationId=[0-9a-f-]{36} about to fail$/.test(l)),
    ).toBe(true);
  });
});

describe('host behaviour', () => {
  test('one log line per request with method, path, status, duration and invocation id', async () => {
    await fetch(`${base}/api/items/5`);
    const line = await waitFor('request log', 10_000, () =>
      fixture.lines.find((l) => l.includes('http.request method=GET path=/api/items/5 ')),
    );
    expect(line).toMatch(
      /^\[host\] \S+ info http\.request method=GET path=\/api\/items\/5 status=200 durationMs=\d+ function=getItem invocationId=[0-9a-f-]{36}$/,
    );
  });

  test('appStart ran before serving, and invocation hooks share hookData', async () => {
    expect(records('appStart')).toHaveLength(1);
    await fetch(`${base}/api/items/9`);
    await waitFor('postInvocation hook', 10_000, () =>
      records('postInvocation').some((r) => r.functionName === 'getItem' && r.sawPre === true),
    );
    expect(records('postInvocation').find((r) => r.functionName === 'boom')).toMatchObject({
      error: 'secret internal detail',
    });
  });

  test('the startup log lists every function like func start', () => {
    expect(fixture.lines).toContain(`[host]   getItem: [GET,PUT] ${base}/api/items/{id}/{detail?}`);
    expect(
      fixture.lines.some((l) =>
        l.startsWith('[host]   recorder: queueTrigger queue=work-items connection=AzureWebJobsStorage'),
      ),
    ).toBe(true);
    expect(fixture.host.functions.map((f) => f.name).sort()).toEqual([
      'alwaysFails',
      'bodyInfo',
      'boom',
      'cookies',
      'echo',
      'getItem',
      'keyed',
      'ping',
      'recorder',
      'silent',
    ]);
    expect(fixture.host.functionErrors).toEqual([]);
  });
});

/** A POST whose framing the test controls: node:http sends `Transfer-Encoding: chunked` when no Content-Length is given. */
function rawPost(
  url: string,
  headers: Record<string, string>,
  chunks: string[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('request bodies like the Functions host (GrpcMessageConversionExtensions.ToRpcHttp: ContentLength > 0)', () => {
  test('with a Content-Length the function gets the body', async () => {
    const res = await rawPost(`${base}/api/bodyInfo`, { 'content-type': 'application/json', 'content-length': '11' }, [
      '{"a":"bc"}\n',
    ]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ hasBody: true, text: '{"a":"bc"}\n' });
  });

  test('a chunked body (no Content-Length) is not passed on: the function sees no body, and the log says why', async () => {
    const res = await rawPost(`${base}/api/bodyInfo`, { 'content-type': 'application/json' }, ['{"a":', '"bc"}']);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ hasBody: false, text: '' });
    const line = await waitFor('the bodyDropped warning', 10_000, () =>
      fixture.lines.find((l) => l.includes('http.request.bodyDropped') && l.includes('function=bodyInfo')),
    );
    expect(line).toContain('warning');
    expect(line).toContain('Transfer-Encoding: chunked');
    // The connection stays usable: the dropped body was read off it.
    expect((await fetch(`${base}/api/nested/ping`)).status).toBe(200);
  });

  test('Content-Length: 0 gives no body either (not an empty one)', async () => {
    const res = await rawPost(`${base}/api/bodyInfo`, { 'content-length': '0' }, []);
    expect(JSON.parse(res.body)).toEqual({ hasBody: false, text: '' });
  });
});

describe('function keys (not enforced locally, as with Core Tools)', () => {
  test('startup says which functions would need a key in Azure', () => {
    const line = fixture.lines.find((l) => l.includes('http.keysNotEnforced'));
    expect(line).toMatch(
      /^\[host\] \S+ warning http\.keysNotEnforced functions=keyed\(function\) detail="Authorization level is not enforced when running functions locally/,
    );
    // Only the function-level one: the others are anonymous (the library's default).
    expect(line).not.toContain('getItem');
  });

  test('a function-level function answers without a key', async () => {
    const res = await fetch(`${base}/api/keyed`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('no key needed locally');
  });
});
