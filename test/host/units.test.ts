import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CoreApiError, FunctionsCore } from '../../host/functionsCore';
import { expandBraces, findFiles, matchPath } from '../../host/glob';
import { serializeCookie, toRpcQuery } from '../../host/httpServer';
import { indexFunctions } from '../../host/indexing';
import {
  RandomizedExponentialBackoff,
  classifyStorageError,
  decodeBase64Strict,
  isValidQueueName,
  parseJsonNetDate,
  poisonQueueNameFor,
  toBindingDataValue,
  toDotNetDateJson,
  toDotNetNumberString,
  toQueueTriggerMetadata,
} from '../../host/queueListener';
import { isLoopbackHost } from '../../host/host';
import { compileRoute, comparePrecedence, decodePath, matchRoute } from '../../host/routes';
import {
  HostConfigError,
  applyHostJsonOverrides,
  mergeSettings,
  parseTimeSpan,
  readLocalSettings,
  resolveQueueOptions,
  resolveStorageConnection,
} from '../../host/settings';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'host-units-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function touch(rel: string): void {
  const file = path.join(tmp, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '');
}

describe('glob (package.json main)', () => {
  test('brace expansion, nested', () => {
    expect(expandBraces('dist/src/{index.js,functions/*.js}')).toEqual([
      'dist/src/index.js',
      'dist/src/functions/*.js',
    ]);
    expect(expandBraces('a/{b,{c,d}}/e')).toEqual(['a/b/e', 'a/c/e', 'a/d/e']);
  });

  test('* stays in a segment, ** spans segments, dot files and node_modules are skipped', () => {
    expect(matchPath('src/*.js', 'src/a.js')).toBe(true);
    expect(matchPath('src/*.js', 'src/x/a.js')).toBe(false);
    expect(matchPath('src/**/*.js', 'src/a.js')).toBe(true);
    expect(matchPath('src/**/*.js', 'src/x/y/a.js')).toBe(true);
    expect(matchPath('src/*.js', 'src/.hidden.js')).toBe(false);
    expect(matchPath('src/**/*.js', 'src/node_modules/a.js')).toBe(false);
    expect(matchPath('src/?.js', 'src/a.js')).toBe(true);
  });

  test('finds files on disk, sorted, without duplicates or directories', () => {
    for (const f of [
      'dist/src/index.js',
      'dist/src/functions/a.js',
      'dist/src/functions/b.js',
      'dist/src/functions/b.js.map',
      'dist/src/functions/sub/c.js',
    ])
      touch(f);
    mkdirSync(path.join(tmp, 'dist/src/functions/dir.js'), { recursive: true });
    expect(findFiles('dist/src/functions/*.js', tmp)).toEqual(['dist/src/functions/a.js', 'dist/src/functions/b.js']);
    expect(findFiles('dist/src/{index.js,functions/**/*.js}', tmp)).toEqual([
      'dist/src/functions/a.js',
      'dist/src/functions/b.js',
      'dist/src/functions/sub/c.js',
      'dist/src/index.js',
    ]);
    expect(findFiles('dist/src/index.js', tmp)).toEqual(['dist/src/index.js']);
    expect(findFiles('dist/missing/*.js', tmp)).toEqual([]);
  });
});

describe('host.json and settings', () => {
  test('TimeSpan strings', () => {
    expect(parseTimeSpan('00:00:02', 'x')).toBe(2_000);
    expect(parseTimeSpan('00:01:00', 'x')).toBe(60_000);
    expect(parseTimeSpan('00:00:00.250', 'x')).toBe(250);
    expect(parseTimeSpan('1.00:00:01', 'x')).toBe(86_401_000);
    expect(() => parseTimeSpan('2 seconds', 'x')).toThrow(HostConfigError);
    expect(() => parseTimeSpan('00:61:00', 'x')).toThrow(/out of range/);
  });

  test('queue defaults and limits follow QueuesOptions', () => {
    expect(resolveQueueOptions({}, true)).toEqual({
      batchSize: 16,
      newBatchThreshold: 8,
      maxPollingIntervalMs: 2_000,
      visibilityTimeoutMs: 0,
      maxDequeueCount: 5,
      messageEncoding: 'base64',
    });
    expect(resolveQueueOptions({}, false).maxPollingIntervalMs).toBe(60_000);
    const q = (queues: Record<string, unknown>) => ({ extensions: { queues } });
    expect(resolveQueueOptions(q({ batchSize: 5 }), true).newBatchThreshold).toBe(2);
    expect(resolveQueueOptions(q({ MessageEncoding: 'None', visibilityTimeout: '00:00:10' }), true)).toMatchObject({
      messageEncoding: 'none',
      visibilityTimeoutMs: 10_000,
    });
    expect(() => resolveQueueOptions(q({ batchSize: 33 }), true)).toThrow(/not be greater than 32/);
    expect(() => resolveQueueOptions(q({ maxPollingInterval: '00:00:00.050' }), true)).toThrow(/less than/);
    expect(() => resolveQueueOptions(q({ maxDequeueCount: 0 }), true)).toThrow(/greater than zero/);
    expect(() => resolveQueueOptions(q({ messageEncoding: 'utf8' }), true)).toThrow(/base64/);
  });

  test('AzureFunctionsJobHost__ settings override host.json, case-insensitively', () => {
    const hostJson = { version: '2.0', extensions: { queues: { batchSize: 16 } } };
    const result = applyHostJsonOverrides(hostJson, {
      AzureFunctionsJobHost__Extensions__Queues__BatchSize: '4',
      azurefunctionsjobhost__logging__logLevel__default: 'Warning',
    });
    expect(result).toEqual({
      version: '2.0',
      extensions: { queues: { batchSize: '4' } },
      logging: { logLevel: { default: 'Warning' } },
    });
    expect(resolveQueueOptions(result, true).batchSize).toBe(4);
    expect(hostJson.extensions.queues.batchSize).toBe(16);
  });

  test('local.settings.json < environment < explicit overrides', () => {
    const dir = path.join(tmp, 'settings');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'local.settings.json'),
      JSON.stringify({
        IsEncrypted: false,
        Values: { A: 'local', B: 'local', C: 'local', N: 5 },
        Host: { LocalHttpPort: 7072 },
      }),
    );
    const local = readLocalSettings(dir);
    expect(local.localHttpPort).toBe(7072);
    const merged = mergeSettings(local.values, { B: 'env', C: 'env' }, { C: 'override', A: undefined });
    expect(merged).toEqual({ B: 'env', C: 'override', N: '5' });
    expect(readLocalSettings(path.join(tmp, 'nowhere')).values).toEqual({});
  });

  test('queue connections resolve like the storage extension', () => {
    expect(resolveStorageConnection(undefined, { AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).toMatchObject({
      kind: 'connectionString',
      settingName: 'AzureWebJobsStorage',
    });
    expect(resolveStorageConnection('Jobs', { AzureWebJobsJobs: 'cs' })).toMatchObject({
      kind: 'connectionString',
      settingName: 'AzureWebJobsJobs',
    });
    expect(
      resolveStorageConnection('Jobs', {
        Jobs__queueServiceUri: 'https://x.queue.core.windows.net',
        Jobs__credential: 'managedidentity',
        Jobs__clientId: 'c',
      }),
    ).toEqual({
      kind: 'identity',
      settingName: 'Jobs',
      queueServiceUri: 'https://x.queue.core.windows.net',
      credential: 'managedidentity',
      clientId: 'c',
    });
    expect(resolveStorageConnection('AzureWebJobsStorage', { AzureWebJobsStorage__accountName: 'acct' })).toMatchObject(
      { queueServiceUri: 'https://acct.queue.core.windows.net' },
    );
    // An exact connection string wins over __ settings with the same prefix.
    expect(resolveStorageConnection('Jobs', { Jobs: 'cs', Jobs__queueServiceUri: 'https://x' })).toMatchObject({
      kind: 'connectionString',
    });
    expect(() => resolveStorageConnection('Missing', {})).toThrow(/'AzureWebJobsMissing' does not exist/);
  });
});

describe('routes', () => {
  test('literal segments, parameters and optional parameters; case-insensitive, trailing slash ignored', () => {
    const notify = compileRoute('api', 'notify/{id?}');
    expect(matchRoute(notify, '/api/notify')).toEqual({ id: '' });
    expect(matchRoute(notify, '/API/Notify/job-1/')).toEqual({ id: 'job-1' });
    expect(matchRoute(notify, '/api/notify/a/b')).toBeUndefined();
    const items = compileRoute('api', 'items/{id}/{detail?}');
    expect(matchRoute(items, '/api/items/5')).toEqual({ id: '5', detail: '' });
    expect(matchRoute(items, '/API/ITEMS/5/x/')).toEqual({ id: '5', detail: 'x' });
    expect(matchRoute(items, '/api/items')).toBeUndefined();
    expect(matchRoute(compileRoute('api', 'messages'), '/api/messages')).toEqual({});
    expect(matchRoute(compileRoute('', 'root'), '/root')).toEqual({});
  });

  test('the rest of the ASP.NET template grammar is refused, so the function is reported and does not run', () => {
    for (const route of ['items/{id:int}', 'p/{name=home}', 'files/{*path}', 'r/{a}.{b}', 'x/{v:regex(^a)}']) {
      expect(() => compileRoute('api', route), route).toThrow(/not supported by the local host/);
    }
    expect(() => compileRoute('api', 'a/{id}/{ID}')).toThrow(/appears twice/);
  });

  test('literal segments outrank parameters', () => {
    const literal = compileRoute('api', 'items/special');
    const param = compileRoute('api', 'items/{id}');
    expect(comparePrecedence(literal, param)).toBeLessThan(0);
    expect([param, literal].sort(comparePrecedence)).toEqual([literal, param]);
  });

  test('paths are decoded except for %2F', () => {
    expect(decodePath('/api/a%20b/c%2Fd')).toBe('/api/a b/c%2Fd');
  });
});

describe('HTTP conversions', () => {
  test('query values are joined per key', () => {
    expect(toRpcQuery(new URLSearchParams('a=1&a=2&b=&c'))).toEqual({ a: '1,2', b: '', c: '' });
  });

  test('cookies serialize like ASP.NET Core', () => {
    expect(serializeCookie({ name: 'a', value: 'b' })).toBe('a=b; path=/');
    expect(
      serializeCookie({
        name: 'a',
        value: 'b',
        domain: { value: 'x.test' },
        path: { value: '/p' },
        sameSite: 'explicitNone',
        expires: { value: { seconds: 0 } },
      }),
    ).toBe('a=b; expires=Thu, 01 Jan 1970 00:00:00 GMT; domain=x.test; path=/p; samesite=none');
  });
});

describe('queue pieces', () => {
  test('strict base64 like Convert.FromBase64String', () => {
    expect(decodeBase64Strict('aGVsbG8=')?.toString()).toBe('hello');
    expect(decodeBase64Strict('aGVs\nbG8=')?.toString()).toBe('hello');
    expect(decodeBase64Strict('hello')).toBeUndefined();
    expect(decodeBase64Strict('{"a":1}')).toBeUndefined();
    expect(decodeBase64Strict('aGVsbG8')).toBeUndefined();
    expect(decodeBase64Strict('aG=sbG8=')).toBeUndefined();
  });

  test('poison queue names and queue name validation', () => {
    expect(poisonQueueNameFor('jobs')).toBe('jobs-poison');
    expect(poisonQueueNameFor('jobs-poison')).toBeUndefined();
    expect(poisonQueueNameFor('a'.repeat(60))).toBeUndefined();
    expect(isValidQueueName('outbound-messages')).toBe(true);
    expect(isValidQueueName('Outbound')).toBe(false);
    expect(isValidQueueName('a--b')).toBe(false);
    expect(isValidQueueName('ab')).toBe(false);
  });

  test('dates are written like Newtonsoft writes DateTimeOffset', () => {
    expect(toDotNetDateJson(new Date('2025-01-02T03:04:05Z'))).toBe('"2025-01-02T03:04:05+00:00"');
    expect(toDotNetDateJson(new Date('2025-01-02T03:04:05.120Z'))).toBe('"2025-01-02T03:04:05.12+00:00"');
  });

  test('trigger metadata: PascalCase keys, typed values, payload properties merged', () => {
    const meta = toQueueTriggerMetadata(
      {
        messageId: 'm1',
        popReceipt: 'p1',
        dequeueCount: 2,
        insertedOn: new Date('2025-01-01T00:00:00Z'),
        text: '{"id":"x","n":1.5,"nested":{"A":1}}',
      },
      'fn',
    );
    expect(meta).toMatchObject({
      QueueTrigger: { string: '{"id":"x","n":1.5,"nested":{"A":1}}' },
      DequeueCount: { int: 2 },
      Id: { string: 'x' },
      PopReceipt: { string: 'p1' },
      InsertionTime: { json: '"2025-01-01T00:00:00+00:00"' },
      n: { string: '1.5' },
      nested: { json: '{"A":1}' },
    });
    expect(Object.keys(meta)).not.toContain('id');
    expect(
      toQueueTriggerMetadata({ messageId: 'm', popReceipt: 'p', dequeueCount: 1, text: 'plain' }, 'fn').Id,
    ).toEqual({ string: 'm' });
  });

  test('payload merge follows Utility.ApplyBindingData: arrays and nulls skipped, scalars as (string)JValue, objects as JSON', () => {
    const meta = toQueueTriggerMetadata(
      {
        messageId: 'queue-id',
        popReceipt: 'p',
        dequeueCount: 1,
        text: '{"id":null,"tags":["a"],"ok":true,"no":false,"n":7,"s":"text","o":{"at":"2025-06-01T10:00:00.1200Z","list":[null]}}',
      },
      'fn',
    );
    // A null id leaves the message id in place (WorkerFunctionInvoker.TransformInput); an array is not merged.
    expect(meta.Id).toEqual({ string: 'queue-id' });
    expect(meta.tags).toBeUndefined();
    expect(meta).toMatchObject({
      ok: { string: 'True' },
      no: { string: 'False' },
      n: { string: '7' },
      s: { string: 'text' },
      o: { json: '{"at":"2025-06-01T10:00:00.12Z","list":[null]}' },
    });
    // An array payload adds nothing (JObject.Parse throws; the host ignores it).
    expect(
      Object.keys(
        toQueueTriggerMetadata({ messageId: 'm', popReceipt: 'p', dequeueCount: 1, text: '[{"a":1}]' }, 'fn'),
      ).sort(),
    ).toEqual(['DequeueCount', 'Id', 'PopReceipt', 'QueueTrigger', 'sys']);
  });

  test('binding data values: dates as Json.NET reads them, numbers as .NET prints them', () => {
    // DateParseHandling.DateTime, then Convert.ToString(DateTime, InvariantCulture); Azure's local time is UTC.
    expect(toBindingDataValue('2025-06-01T10:00:00Z')).toEqual({ string: '06/01/2025 10:00:00' });
    expect(toBindingDataValue('2025-06-01T10:00:00.9999999+02:00')).toEqual({ string: '06/01/2025 08:00:00' });
    expect(toBindingDataValue('2025-06-01T23:30:00-01:00')).toEqual({ string: '06/02/2025 00:30:00' });
    expect(toBindingDataValue('2025-06-01T10:00:00')).toEqual({ string: '06/01/2025 10:00:00' });
    expect(toBindingDataValue('2024-02-29T24:00:00')).toEqual({ string: '03/01/2024 00:00:00' });
    // Not dates to Json.NET: left as they are.
    for (const text of [
      '2025-06-01',
      '2025-06-01 10:00:00',
      '2025-02-29T10:00:00Z',
      '2025-06-01T10:00:00.12345678Z',
      '2025-06-01T10:00Z',
      'x2025-06-01T10:00:00Z',
    ]) {
      expect(toBindingDataValue(text)).toEqual({ string: text });
    }
    expect(parseJsonNetDate('2025-06-01T10:00:00+0530')).toMatchObject({ hour: 4, minute: 30, kind: 'local' });
    expect(toBindingDataValue({ at: '2025-06-01T10:00:00+02:00', plain: '2025-06-01T10:00:00' })).toEqual({
      json: '{"at":"2025-06-01T08:00:00+00:00","plain":"2025-06-01T10:00:00"}',
    });
    expect(toBindingDataValue(null)).toBeUndefined();
    expect(toBindingDataValue([1])).toBeUndefined();
    expect(
      [
        '0',
        '-3',
        '1.5',
        '0.0001',
        '1E-05',
        '1.5E-07',
        '123456789012345.6',
        '1.2345678901234568E+17',
        '100000000000000000000',
      ]
        .map(Number)
        .map(toDotNetNumberString),
    ).toEqual([
      '0',
      '-3',
      '1.5',
      '0.0001',
      '1E-05',
      '1.5E-07',
      '123456789012345.6',
      '123456789012345680',
      '100000000000000000000',
    ]);
    expect(toDotNetNumberString(1.2345678901234568e17 + 0.5)).toBe('123456789012345680');
    expect(toDotNetNumberString(1e-7 * 3)).toBe('3E-07');
  });

  test('storage errors: what the queue extension handles, and what stops the host', () => {
    const err = (statusCode: number | undefined, code?: string, name = 'RestError'): unknown =>
      Object.assign(new Error('x'), { name, statusCode, code });
    // Poll (QueueListener.ExecuteAsync).
    expect(classifyStorageError('poll', err(404, 'QueueNotFound'))).toBe('backOff');
    expect(classifyStorageError('poll', err(409, 'QueueBeingDeleted'))).toBe('backOff');
    expect(classifyStorageError('poll', err(503, 'ServerBusy'))).toBe('backOff');
    expect(classifyStorageError('poll', err(403, 'AuthorizationPermissionMismatch'))).toBe('fatal');
    expect(classifyStorageError('poll', err(404, 'ResourceNotFound'))).toBe('fatal');
    expect(classifyStorageError('poll', err(409, 'QueueDisabled'))).toBe('fatal');
    expect(classifyStorageError('poll', err(400, 'InvalidQueryParameterValue'))).toBe('fatal');
    // A credential that fails (no HTTP status, not a transport error).
    expect(classifyStorageError('poll', err(undefined, undefined, 'CredentialUnavailableError'))).toBe('fatal');
    expect(classifyStorageError('poll', err(401, 'invalid_client', 'AuthenticationError'))).toBe('fatal');
    // No answer at all: the local host waits for storage.
    expect(classifyStorageError('poll', err(undefined, 'ECONNREFUSED'))).toBe('noAnswer');
    expect(classifyStorageError('poll', err(undefined, undefined, 'AbortError'))).toBe('noAnswer');
    // Lease renewal (UpdateQueueMessageVisibilityCommand): losing the message is fine, a 5xx is not.
    expect(classifyStorageError('renewLease', err(400, 'PopReceiptMismatch'))).toBe('lost');
    expect(classifyStorageError('renewLease', err(404, 'MessageNotFound'))).toBe('lost');
    expect(classifyStorageError('renewLease', err(409, 'QueueBeingDeleted'))).toBe('lost');
    expect(classifyStorageError('renewLease', err(500, 'InternalError'))).toBe('fatal');
    // Delete and release (QueueProcessor).
    expect(classifyStorageError('complete', err(404, 'QueueNotFound'))).toBe('lost');
    expect(classifyStorageError('complete', err(400, 'InvalidHeaderValue'))).toBe('fatal');
    expect(classifyStorageError('complete', err(503, 'ServerBusy'))).toBe('fatal');
    // Copy to poison: nothing is handled.
    expect(classifyStorageError('poison', err(404, 'QueueNotFound'))).toBe('fatal');
  });

  test('loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(host)).toBe(true);
    for (const host of [
      '0.0.0.0',
      '::',
      '',
      '10.0.0.5',
      '192.168.1.10',
      'example.com',
      'localhost.example.com',
      '128.0.0.1',
    ])
      expect(isLoopbackHost(host)).toBe(false);
  });

  test('randomized exponential backoff from the minimum to the maximum, reset by success', () => {
    const backoff = new RandomizedExponentialBackoff(100, 1_000, () => 0.5);
    expect([1, 2, 3, 4, 5].map(() => backoff.next(false))).toEqual([200, 300, 500, 900, 1_000]);
    expect(backoff.next(true)).toBe(100);
    expect(backoff.next(false)).toBe(200);
  });
});

describe('core API', () => {
  test('registration is locked after startup; duplicate ids and unknown hooks throw', () => {
    const core = new FunctionsCore(() => undefined);
    const metadata = { name: 'f', bindings: { req: { type: 'httpTrigger', direction: 'in' as const } } };
    const disposable = core.api.registerFunction(metadata, () => undefined);
    expect(() => core.api.registerFunction(metadata, () => undefined)).toThrow(/already been registered/);
    disposable.dispose();
    expect(core.functions.size).toBe(0);
    core.api.registerFunction(metadata, () => undefined);
    core.lockIndexing();
    expect(() => core.api.registerFunction({ ...metadata, name: 'g' }, () => undefined)).toThrow(CoreApiError);
    expect(() => core.api.registerHook('nope', () => undefined)).toThrow(RangeError);
  });

  test('hooks run in order, awaited, and can be disposed', async () => {
    const core = new FunctionsCore(() => undefined);
    const order: string[] = [];
    core.api.registerHook('appStart', async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      order.push('a');
    });
    const second = core.api.registerHook('appStart', () => order.push('b'));
    await core.runAppStart('/app');
    second.dispose();
    await core.runAppStart('/app');
    expect(order).toEqual(['a', 'b', 'a']);
  });

  test('log hooks may rewrite user logs but not system logs', () => {
    const seen: string[] = [];
    const core = new FunctionsCore((level, category, message) => seen.push(`${level}:${category}:${message}`));
    core.api.registerHook('log', (context: { message: string; level: string }) => {
      context.message = `[redacted] ${context.message}`;
      context.level = 'warning';
    });
    core.log('information', 'user', 'secret');
    core.log('information', 'system', 'internal');
    expect(seen).toEqual(['warning:user:[redacted] secret', 'information:system:internal']);
  });

  test('indexing reports bad functions and keeps the good ones', () => {
    const core = new FunctionsCore(() => undefined);
    const reg = (name: string, bindings: Record<string, Record<string, unknown>>) =>
      core.api.registerFunction({ name, bindings }, () => undefined);
    reg('ok', { t: { type: 'queueTrigger', direction: 'in', queueName: '%Q%', connection: 'AzureWebJobsStorage' } });
    reg('timer', { t: { type: 'timerTrigger', direction: 'in', schedule: '0 * * * * *' } });
    reg('badQueue', {
      t: { type: 'queueTrigger', direction: 'in', queueName: '%MISSING%', connection: 'AzureWebJobsStorage' },
    });
    reg('1bad', { t: { type: 'httpTrigger', direction: 'in' } });
    reg('blobIn', { t: { type: 'httpTrigger', direction: 'in' }, b: { type: 'blob', direction: 'in' } });
    reg('off', { t: { type: 'httpTrigger', direction: 'in' } });
    reg('constrained', { t: { type: 'httpTrigger', direction: 'in', route: 'items/{id:int}' } });
    reg('queueOut', {
      t: { type: 'httpTrigger', direction: 'in' },
      q: { type: 'queue', direction: 'out', queueName: 'work', connection: 'AzureWebJobsStorage' },
    });
    const result = indexFunctions(
      core.functions.values(),
      { Q: 'My-Queue', AzureWebJobsStorage: 'UseDevelopmentStorage=true', 'AzureWebJobs.off.Disabled': 'true' },
      { routePrefix: 'api' },
    );
    expect(result.disabled).toEqual(['off']);
    expect(
      indexFunctions(core.functions.values(), {}, { routePrefix: 'api', only: ['OFF'] }).http.map((h) => h.fn.name),
    ).toEqual(['off']);
    expect(result.queue.map((q) => [q.fn.name, q.target.queueName])).toEqual([['ok', 'my-queue']]);
    expect(result.http.map((h) => h.fn.name)).toEqual(['blobIn', 'queueOut']);
    expect(result.errors.map((e) => e.name).sort()).toEqual(['1bad', 'badQueue', 'constrained', 'timer']);
    expect(result.errors.find((e) => e.name === 'badQueue')?.message).toMatch(/'%MISSING%' does not resolve/);
    expect(result.errors.find((e) => e.name === 'constrained')?.message).toMatch(/not supported by the local host/);
    expect(result.warnings).toEqual([
      { name: 'blobIn', message: expect.stringContaining('b (in blob)') },
      { name: 'queueOut', message: expect.stringContaining('q (out queue)') },
    ]);
  });
});
