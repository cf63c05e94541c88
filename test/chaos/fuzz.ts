/**
 * Part 3, fuzzing.
 *
 * a) Generated requests to /api/messages: bodies (broken, wrong types, huge, deep, wide, odd
 *    encodings, `__proto__` / `constructor` keys), content types, header shapes (over raw sockets:
 *    chunked, wrong Content-Length, duplicates, bad bytes, odd methods and paths) and tokens (every
 *    way one can be wrong). While storage is up: never a 5xx; nothing stored without a valid token;
 *    the process stays up; memory stays bounded.
 * b) Generated queue messages (wrong encodings, invalid JSON, wrong types, oversize content,
 *    conflicting targets, unknown targets, deep nesting) mixed with valid jobs: each invalid one
 *    fails with a reason that names the problem (record and poison queue), each valid one is
 *    delivered, and the sender keeps going.
 */
import { gzipSync } from 'node:zlib';
import net from 'node:net';
import { expect } from 'vitest';
import { ChannelTokenIssuer, Faults, personalMessage, type Activity } from '../../host/emulator';
import {
  APP_ID,
  BOT_TENANT,
  OUTBOUND_QUEUE,
  PLAN,
  SEED,
  SIZE,
  jobIdOfText,
  mapLimit,
  percentile,
  printTable,
  rngFor,
  sleep,
  waitFor,
  type ChaosRig,
  type Rng,
} from './harness';

const TENANT = '7c0a0000-0000-4000-8000-00000000f022';
const SIGNED_PREFIX = `a:chaos-fuzz-s-${SEED}-`;
const UNSIGNED_PREFIX = `a:chaos-fuzz-u-${SEED}-`;

// ---- a) /api/messages ------------------------------------------------------------------------

type Transport =
  | { readonly kind: 'http'; readonly method: string; readonly headers: Record<string, string>; readonly body: Buffer }
  | { readonly kind: 'raw'; readonly bytes: Buffer; readonly hangUpAfterMs?: number };

interface HttpCase {
  readonly category: string;
  readonly label: string;
  /** Carries a valid channel token (the body may still be refused). */
  readonly signed: boolean;
  readonly transport: Transport;
}

interface Tokens {
  readonly valid: Map<string, string>;
  readonly invalid: Map<string, { label: string; token: string; serviceUrl: string }[]>;
  readonly rs512: Map<string, string>;
  readonly cty: Map<string, string>;
  readonly noSlash: Map<string, string>;
}

async function mintTokens(rig: ChaosRig, serviceUrls: readonly string[]): Promise<Tokens> {
  const other = await ChannelTokenIssuer.create();
  const kid = (await rig.token(serviceUrls[0]!)).split('.')[0]!;
  const ourKid = (JSON.parse(Buffer.from(kid, 'base64url').toString('utf8')) as { kid: string }).kid;
  const now = Math.floor(Date.now() / 1000);
  const tokens: Tokens = { valid: new Map(), invalid: new Map(), rs512: new Map(), cty: new Map(), noSlash: new Map() };
  for (const serviceUrl of serviceUrls) {
    tokens.valid.set(serviceUrl, await rig.token(serviceUrl));
    tokens.rs512.set(serviceUrl, await rig.mint({ appId: APP_ID, serviceUrl, alg: 'RS512' }));
    tokens.cty.set(serviceUrl, await rig.mint({ appId: APP_ID, serviceUrl, extraHeader: { cty: 'JWT' } }));
    tokens.noSlash.set(serviceUrl, await rig.mint({ appId: APP_ID, serviceUrl: serviceUrl.replace(/\/$/, '') }));
    const otherServiceUrl = serviceUrls.find((s) => s !== serviceUrl)!;
    const valid = tokens.valid.get(serviceUrl)!;
    const [h, p, s] = valid.split('.') as [string, string, string];
    const flip = (text: string, at: number): string =>
      `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
    const list = [
      {
        label: 'expired an hour ago',
        token: await rig.mint({ appId: APP_ID, serviceUrl, now: now - 7_200, expiresInSeconds: 3_600 }),
      },
      {
        label: 'not valid for another hour',
        token: await rig.mint({ appId: APP_ID, serviceUrl, notBefore: now + 3_600 }),
      },
      {
        label: 'audience api.botframework.com',
        token: await rig.mint({ appId: APP_ID, serviceUrl, audience: 'https://api.botframework.com' }),
      },
      {
        label: 'audience another bot',
        token: await rig.mint({ appId: '00000000-0000-4000-8000-00000000dead', serviceUrl }),
      },
      {
        label: 'issuer api.botframework.us',
        token: await rig.mint({ appId: APP_ID, serviceUrl, issuer: 'https://api.botframework.us' }),
      },
      {
        label: 'Entra issuer',
        token: await rig.mint({ appId: APP_ID, serviceUrl, issuer: `https://sts.windows.net/${BOT_TENANT}/` }),
      },
      { label: 'alg none', token: await rig.mint({ appId: APP_ID, serviceUrl, alg: 'none' }) },
      { label: 'HS256', token: await rig.mint({ appId: APP_ID, serviceUrl, alg: 'HS256' }) },
      { label: 'PS256', token: await rig.mint({ appId: APP_ID, serviceUrl, alg: 'PS256' }) },
      { label: 'no kid', token: await rig.mint({ appId: APP_ID, serviceUrl, kid: null }) },
      { label: 'unknown kid', token: await rig.mint({ appId: APP_ID, serviceUrl, kid: 'chaos-unknown-kid' }) },
      {
        label: 'no serviceurl claim',
        token: await rig.mint({ appId: APP_ID, serviceUrl, claims: { serviceurl: undefined } }),
      },
      { label: 'no exp', token: await rig.mint({ appId: APP_ID, serviceUrl, claims: { exp: undefined } }) },
      { label: 'serviceurl of another region', token: await rig.mint({ appId: APP_ID, serviceUrl: otherServiceUrl }) },
      {
        label: 'signed by another key with our kid',
        token: await other.mintChannelToken({ appId: APP_ID, serviceUrl, kid: ourKid }),
      },
      { label: 'payload tampered', token: `${h}.${flip(p, 10)}.${s}` },
      { label: 'signature tampered', token: `${h}.${p}.${flip(s, 5)}` },
      { label: 'signature cut', token: `${h}.${p}.${s.slice(0, 20)}` },
      { label: 'four parts', token: `${h}.${p}.${s}.${s}` },
      { label: 'garbage', token: 'not-a-jwt' },
      { label: '__proto__', token: '__proto__' },
      { label: '12 KB of letters', token: 'A'.repeat(12_000) },
    ];
    for (const entry of list) rig.mintedTokens.add(entry.token);
    tokens.invalid.set(
      serviceUrl,
      list.map((entry) => ({ ...entry, serviceUrl })),
    );
  }
  return tokens;
}

function activityFor(rng: Rng, serviceUrl: string, conversationId: string, i: number): Activity {
  const base = personalMessage({
    appId: APP_ID,
    tenantId: TENANT,
    serviceUrl,
    conversationId,
    user: {
      id: `29:chaos-fuzz-user-${i % 50}`,
      name: `Fuzz User ${i % 50}`,
      aadObjectId: `f0000000-0000-4000-8000-${String(i % 50).padStart(12, '0')}`,
    },
    text: `fuzz ${i}`,
  });
  const shape = rng.int(4);
  if (shape === 1)
    return { ...base, type: 'conversationUpdate', membersAdded: [{ id: `28:${APP_ID}` }], text: undefined } as Activity;
  if (shape === 2)
    return {
      ...base,
      type: 'installationUpdate',
      action: rng.pick(['add', 'remove', 'add-upgrade', 'remove-upgrade']),
    } as Activity;
  return base;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function deletePath(target: Record<string, unknown>, dotted: string): void {
  const keys = dotted.split('.');
  let node: Record<string, unknown> | undefined = target;
  for (const key of keys.slice(0, -1)) node = (node?.[key] as Record<string, unknown> | undefined) ?? undefined;
  if (node) delete node[keys[keys.length - 1]!];
}

/** Adds `"key": value` as the first member of the object at `dotted` ('' = top level), in the JSON text. */
function injectKey(json: string, dotted: string, key: string, valueJson: string): string {
  if (dotted === '') return json.replace(/^\{/, `{${JSON.stringify(key)}:${valueJson},`);
  const marker = `"${dotted.split('.').pop()!}":{`;
  const at = json.indexOf(marker);
  return at < 0
    ? json
    : `${json.slice(0, at + marker.length)}${JSON.stringify(key)}:${valueJson},${json.slice(at + marker.length)}`;
}

const WRONG_VALUES: readonly unknown[] = [5, true, null, [], {}, 'text', -1.5e308, [1, [2]], { id: { id: 1 } }];
const TYPED_FIELDS = [
  'type',
  'serviceUrl',
  'conversation',
  'conversation.id',
  'conversation.tenantId',
  'conversation.conversationType',
  'channelId',
  'from',
  'from.id',
  'from.aadObjectId',
  'recipient',
  'recipient.id',
  'membersAdded',
  'membersRemoved',
  'channelData',
  'channelData.tenant',
  'channelData.team',
  'action',
  'locale',
  'entities',
];
const ODD_STRINGS: readonly string[] = [
  '\ud800',
  'a\udc00b',
  '\u0000nul',
  '\u202eevil\u202c',
  '😀'.repeat(50),
  '\uffff\ufffe',
  'x'.repeat(600),
  '',
  ' ',
  '../../etc/passwd',
  "' OR 1=1 --",
  '%00%2F%',
  "PartitionKey eq 'x'",
  '$metadata',
];

function mutatedBody(
  rng: Rng,
  activity: Activity,
  otherServiceUrl: string,
): { label: string; body: Buffer; contentType?: string; contentEncoding?: string } {
  const json = JSON.stringify(activity);
  const clone = (): Record<string, unknown> => JSON.parse(json) as Record<string, unknown>;
  const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
  const choice = rng.int(24);
  switch (choice) {
    case 0:
      return { label: 'truncated JSON', body: utf8(json.slice(0, rng.int(json.length))) };
    case 1:
      return { label: 'trailing garbage', body: utf8(`${json}}}garbage`) };
    case 2:
      return { label: 'empty body', body: Buffer.alloc(0) };
    case 3:
      return {
        label: 'JSON that is not an object',
        body: utf8(rng.pick(['null', '[]', '[{}]', '"activity"', '123', 'true', '1e999', '{}'])),
      };
    case 4: {
      const field = rng.pick(TYPED_FIELDS);
      const body = clone();
      setPath(body, field, rng.pick(WRONG_VALUES));
      return { label: `wrong type: ${field}`, body: utf8(JSON.stringify(body)) };
    }
    case 5: {
      const field = rng.pick([
        'type',
        'serviceUrl',
        'conversation',
        'conversation.id',
        'recipient',
        'channelId',
        'conversation.tenantId',
        'from',
      ]);
      const body = clone();
      deletePath(body, field);
      if (field === 'conversation.tenantId') deletePath(body, 'channelData.tenant');
      return { label: `missing: ${field}`, body: utf8(JSON.stringify(body)) };
    }
    case 6: {
      const field = rng.pick([
        'conversation.id',
        'from.name',
        'from.aadObjectId',
        'recipient.name',
        'locale',
        'conversation.tenantId',
        'from.id',
        'text',
        'action',
      ]);
      const body = clone();
      setPath(body, field, rng.pick(ODD_STRINGS));
      return { label: `odd string: ${field}`, body: utf8(JSON.stringify(body)) };
    }
    case 7: {
      // Table Storage refuses a string property over 64 KiB (32 K UTF-16 units): 40 000 characters.
      const field = rng.pick(['from.name', 'recipient.name', 'locale', 'conversation.name']);
      const body = clone();
      setPath(body, field, 'ü'.repeat(40_000));
      return { label: `40,000-character ${field}`, body: utf8(JSON.stringify(body)) };
    }
    case 8: {
      const where = rng.pick(['', 'conversation', 'channelData', 'from', 'recipient']);
      const key = rng.pick(['__proto__', 'constructor', 'prototype']);
      const value = rng.pick([
        '{"polluted":"yes","id":"a:polluted","isAdmin":true}',
        '{"prototype":{"polluted":"yes"}}',
        'null',
        '"x"',
      ]);
      return {
        label: `${key} key ${where === '' ? 'at the top' : `in ${where}`}`,
        body: utf8(injectKey(json, where, key, value)),
      };
    }
    case 9:
      return {
        label: 'duplicate keys',
        body: utf8(json.replace(/^\{/, '{"type":"invoke","serviceUrl":"https://evil.example/",')),
      };
    case 10: {
      const depth = rng.pick([1_000, 10_000, 100_000]);
      return { label: `array nested ${depth} deep`, body: utf8(`${'['.repeat(depth)}${']'.repeat(depth)}`) };
    }
    case 11: {
      const depth = rng.pick([5_000, 20_000]);
      return {
        label: `object nested ${depth} deep in channelData`,
        body: utf8(injectKey(json, 'channelData', 'deep', `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)),
      };
    }
    case 12: {
      const wide = Object.fromEntries(Array.from({ length: 15_000 }, (_, k) => [`k${k}`, k]));
      return {
        label: '15,000 keys in channelData',
        body: utf8(injectKey(json, 'channelData', 'wide', JSON.stringify(wide))),
      };
    }
    case 13:
      return {
        label: 'over 256 KB (300 KB)',
        body: utf8(injectKey(json, '', 'pad', JSON.stringify('p'.repeat(300 * 1024)))),
      };
    case 14:
      return { label: 'over the host limit (5 MB)', body: Buffer.alloc(5 * 1024 * 1024, 0x20) };
    case 15:
      return {
        label: 'just under 256 KB, valid',
        body: utf8(injectKey(json, '', 'pad', JSON.stringify('p'.repeat(250 * 1024)))),
      };
    case 16:
      return {
        label: 'UTF-16LE body',
        body: Buffer.from(json, 'utf16le'),
        contentType: 'application/json; charset=utf-16',
      };
    case 17:
      return { label: 'UTF-8 BOM then JSON', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(json)]) };
    case 18:
      return { label: 'Latin-1 bytes (invalid UTF-8)', body: Buffer.from(json.replace('fuzz', 'füzz'), 'latin1') };
    case 19:
      return { label: 'gzip with Content-Encoding', body: gzipSync(utf8(json)), contentEncoding: 'gzip' };
    case 20:
      return { label: 'base64 of the JSON', body: utf8(Buffer.from(json).toString('base64')) };
    case 21: {
      const contentType = rng.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonp',
        'Application/JSON',
        'application/vnd.bot+json',
        'application/json; charset=iso-8859-1',
        '*/*',
        'application/xml',
      ]);
      return { label: `Content-Type ${contentType}`, body: utf8(json), contentType };
    }
    case 22: {
      const body = clone();
      body.serviceUrl = otherServiceUrl;
      return { label: "serviceUrl not the token's", body: utf8(JSON.stringify(body)) };
    }
    default: {
      const body = clone();
      body.type = rng.pick(['invoke', 'messageReaction', 'typing', 'event', 'endOfConversation', 'MESSAGE', '']);
      if (rng.chance(0.3)) body.channelId = rng.pick(['slack', 'webchat', 'emulator', '']);
      return {
        label: `type ${String(body.type) || '(empty)'} / channel ${String(body.channelId) || '(empty)'}`,
        body: utf8(JSON.stringify(body)),
      };
    }
  }
}

function rawRequest(port: number, head: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(`${head.replace(/\{port\}/g, String(port))}\r\n\r\n`, 'latin1'), body]);
}

/** Raw-socket variants that do not carry a usable token: their activity must use an unsigned id. */
const RAW_UNSIGNED = new Set([3, 13, 14]);
const RAW_VARIANTS = 16;

function rawCase(
  rng: Rng,
  port: number,
  token: string,
  activityFor: (signed: boolean) => Activity,
): { label: string; signed: boolean; transport: Transport } {
  const choice = rng.int(RAW_VARIANTS);
  const json = Buffer.from(JSON.stringify(activityFor(!RAW_UNSIGNED.has(choice))));
  const common = `Host: 127.0.0.1:{port}\r\nConnection: close`;
  const signedHead = (
    extra: string,
    contentLength: number | undefined = json.length,
    method = 'POST',
    path = '/api/messages',
    version = 'HTTP/1.1',
  ): string =>
    [
      `${method} ${path} ${version}`,
      common,
      'Content-Type: application/json',
      `Authorization: Bearer ${token}`,
      ...(contentLength === undefined ? [] : [`Content-Length: ${contentLength}`]),
      ...(extra === '' ? [] : [extra]),
    ].join('\r\n');
  switch (choice) {
    case 0: {
      const chunks: Buffer[] = [];
      for (let at = 0; at < json.length;) {
        const size = 1 + rng.int(200);
        const part = json.subarray(at, at + size);
        chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
        at += size;
      }
      chunks.push(Buffer.from('0\r\n\r\n'));
      return {
        label: 'chunked transfer encoding',
        signed: true,
        transport: {
          kind: 'raw',
          bytes: rawRequest(port, signedHead('Transfer-Encoding: chunked', undefined), Buffer.concat(chunks)),
        },
      };
    }
    case 1:
      return {
        label: 'Content-Length shorter than the body',
        signed: true,
        transport: {
          kind: 'raw',
          bytes: rawRequest(port, signedHead('', Math.max(1, json.length - 1 - rng.int(50))), json),
        },
      };
    case 2:
      return {
        label: 'Content-Length longer than the body, then hang up',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('', json.length + 100)), hangUpAfterMs: 300 },
      };
    case 3:
      return {
        label: 'two Authorization headers',
        signed: false,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('Authorization: Bearer not-a-jwt'), json) },
      };
    case 4:
      return {
        label: 'two Content-Type headers',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('Content-Type: text/plain'), json) },
      };
    case 5:
      return {
        label: '15 KB header',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead(`X-Pad: ${'a'.repeat(15_000)}`), json) },
      };
    case 6:
      return {
        label: '150 headers',
        signed: true,
        transport: {
          kind: 'raw',
          bytes: rawRequest(
            port,
            signedHead(Array.from({ length: 150 }, (_, k) => `X-H${k}: ${k}`).join('\r\n')),
            json,
          ),
        },
      };
    case 7:
      return {
        label: 'control byte in a header',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('X-Bad: a\u0001b'), json) },
      };
    case 8:
      return {
        label: 'obsolete line folding',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('X-Fold: a\r\n b'), json) },
      };
    case 9:
      return {
        label: 'HTTP/1.0',
        signed: true,
        transport: {
          kind: 'raw',
          bytes: rawRequest(port, signedHead('', json.length, 'POST', '/api/messages', 'HTTP/1.0'), json),
        },
      };
    case 10: {
      const method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO', 'CONNECT']);
      return {
        label: `method ${method}`,
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('', json.length, method), json) },
      };
    }
    case 11: {
      const path = rng.pick([
        '/api/messages/',
        '/api/Messages',
        '/api/messages?x=%00',
        '//api/messages',
        '/api/messages/%2e%2e/messages',
        '/api/%6Dessages',
        '/api/messages%2F',
        '/api/messages;x=1',
        `http://127.0.0.1:${port}/api/messages`,
        '/api/messages/../../admin/host/status',
      ]);
      return {
        label: `path ${path.replace(String(port), '{port}')}`,
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('', json.length, 'POST', path), json) },
      };
    }
    case 12:
      return {
        label: 'Expect: 100-continue',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('Expect: 100-continue'), json) },
      };
    case 13:
      return {
        label: 'Authorization with a non-ASCII byte',
        signed: false,
        transport: {
          kind: 'raw',
          bytes: rawRequest(
            port,
            signedHead('').replace(/Authorization: Bearer .*/, `Authorization: Bearer ${token}\u00ff`),
            json,
          ),
        },
      };
    case 14:
      return {
        label: 'lower-case "bearer"',
        signed: false,
        transport: {
          kind: 'raw',
          bytes: rawRequest(port, signedHead('').replace('Authorization: Bearer', 'Authorization: bearer'), json),
        },
      };
    default:
      return {
        label: 'Content-Length: -1',
        signed: true,
        transport: { kind: 'raw', bytes: rawRequest(port, signedHead('', -1), json) },
      };
  }
}

/** One raw request; the status of the first response, or 0 when none came (the client hung up or the server closed). */
function sendRaw(port: number, bytes: Buffer, hangUpAfterMs?: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(data.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
      resolve(match ? Number(match[1]) : 0);
    };
    const timer = setTimeout(finish, hangUpAfterMs ?? 15_000);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (/^HTTP\/1\.[01] (?!100)\d{3}[^\r\n]*\r\n/.test(data.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')))
        finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', () => socket.write(bytes));
  });
}

export async function fuzzMessagesEndpoint(rig: ChaosRig): Promise<void> {
  const rng = rngFor('fuzz-http');
  const serviceUrls = [
    rig.connector.serviceUrl('amer'),
    rig.connector.serviceUrl('emea'),
    rig.connector.serviceUrl('apac'),
  ];
  const tokens = await mintTokens(rig, serviceUrls);
  const pid = rig.app.pid;
  const restartsBefore = rig.app.starts;
  // Warm up first, so the memory figures compare like with like.
  expect((await rig.postSigned(activityFor(rng, serviceUrls[0]!, `${SIGNED_PREFIX}warm`, 0))).status).toBe(200);
  const cases: HttpCase[] = Array.from({ length: PLAN.fuzzRequests }, (_, i) => {
    const serviceUrl = rng.pick(serviceUrls);
    const category = rng.weighted([
      [15, 'valid activity, valid token'],
      [40, 'valid token, fuzzed body'],
      [30, 'invalid token, valid body'],
      [15, 'header shapes (raw socket)'],
    ] as const);
    const signedId = `${SIGNED_PREFIX}${i}`;
    const unsignedId = `${UNSIGNED_PREFIX}${i}`;
    const otherServiceUrl = serviceUrls.find((s) => s !== serviceUrl)!;
    const json = (contentType = 'application/json; charset=utf-8'): Record<string, string> => ({
      'content-type': contentType,
    });
    switch (category) {
      case 'valid activity, valid token': {
        const activity = activityFor(rng, serviceUrl, signedId, i);
        const variant = rng.int(4);
        const token =
          variant === 0
            ? tokens.rs512.get(serviceUrl)!
            : variant === 1
              ? tokens.cty.get(serviceUrl)!
              : variant === 2
                ? tokens.noSlash.get(serviceUrl)!
                : tokens.valid.get(serviceUrl)!;
        const label = ['RS512', 'cty: JWT', 'serviceurl claim without the trailing slash', 'RS256'][variant]!;
        return {
          category,
          label,
          signed: true,
          transport: {
            kind: 'http',
            method: 'POST',
            headers: { ...json(), authorization: `Bearer${variant === 3 && rng.chance(0.3) ? '  ' : ' '}${token}` },
            body: Buffer.from(JSON.stringify(activity)),
          },
        };
      }
      case 'valid token, fuzzed body': {
        const mutation = mutatedBody(rng, activityFor(rng, serviceUrl, signedId, i), otherServiceUrl);
        const headers: Record<string, string> = { authorization: `Bearer ${tokens.valid.get(serviceUrl)!}` };
        if (mutation.contentType !== undefined) headers['content-type'] = mutation.contentType;
        else if (!rng.chance(0.1)) headers['content-type'] = 'application/json';
        if (mutation.contentEncoding !== undefined) headers['content-encoding'] = mutation.contentEncoding;
        return {
          category,
          label: mutation.label,
          signed: true,
          transport: { kind: 'http', method: 'POST', headers, body: mutation.body },
        };
      }
      case 'invalid token, valid body': {
        const body = Buffer.from(JSON.stringify(activityFor(rng, serviceUrl, unsignedId, i)));
        const shape = rng.int(10);
        if (shape < 7) {
          const bad = rng.pick(tokens.invalid.get(serviceUrl)!);
          return {
            category,
            label: `token: ${bad.label}`,
            signed: false,
            transport: {
              kind: 'http',
              method: 'POST',
              headers: { ...json(), authorization: `Bearer ${bad.token}` },
              body,
            },
          };
        }
        const valid = tokens.valid.get(serviceUrl)!;
        const header = rng.pick([
          ['no Authorization', undefined],
          ['empty Authorization', ''],
          ['"Bearer" alone', 'Bearer'],
          ['Basic credentials', 'Basic dXNlcjpwYXNzd29yZA=='],
          ['lower-case "bearer" scheme', `bearer ${valid}`],
          ['token then another word', `Bearer ${valid} extra`],
          ['two tokens, comma-separated', `Bearer ${valid}, Bearer ${valid}`],
          ['"Bearer:" with a colon', `Bearer:${valid}`],
        ] as const);
        const headers: Record<string, string> = json();
        if (header[1] !== undefined) headers.authorization = header[1];
        return {
          category,
          label: `Authorization: ${header[0]}`,
          signed: false,
          transport: { kind: 'http', method: 'POST', headers, body },
        };
      }
      default:
        return {
          category,
          ...rawCase(rng, rig.app.port, tokens.valid.get(serviceUrl)!, (signed) =>
            activityFor(rng, serviceUrl, signed ? signedId : unsignedId, i),
          ),
        };
    }
  });
  const rssStart = rig.app.rssMb() ?? NaN;
  let rssPeak = rssStart;
  const sampler = setInterval(() => {
    const rss = rig.app.rssMb();
    if (rss !== undefined && rss > rssPeak) rssPeak = rss;
  }, 250);
  let results: number[];
  try {
    results = await mapLimit(cases, 16, async (c) => {
      if (c.transport.kind === 'http') {
        const answer = await rig.post(c.transport.body, c.transport.headers, {
          method: c.transport.method,
          timeoutMs: 30_000,
        });
        return answer.status;
      }
      return sendRaw(rig.app.port, c.transport.bytes, c.transport.hangUpAfterMs);
    });
  } finally {
    clearInterval(sampler);
  }
  await verdictHttp(rig, cases, results, { pid, restartsBefore, rssStart, rssPeak });
}

async function verdictHttp(
  rig: ChaosRig,
  cases: readonly HttpCase[],
  results: readonly number[],
  before: { pid: number | undefined; restartsBefore: number; rssStart: number; rssPeak: number },
): Promise<void> {
  const { pid, restartsBefore, rssStart } = before;
  await sleep(500);
  const rssEnd = rig.app.rssMb() ?? NaN;

  // ---- Verdict ------------------------------------------------------------------------------
  const byStatus = new Map<string, number>();
  const byCategory = new Map<string, { n: number; s2: number; s4: number; s5: number; none: number }>();
  const fiveHundreds: string[] = [];
  const signedOk = new Set<string>();
  for (const [i, c] of cases.entries()) {
    const status = results[i]!;
    const key = status === 0 ? 'no response' : String(status);
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    const row = byCategory.get(c.category) ?? { n: 0, s2: 0, s4: 0, s5: 0, none: 0 };
    row.n += 1;
    if (status >= 500) {
      row.s5 += 1;
      fiveHundreds.push(`${status} for ${c.category} / ${c.label}`);
    } else if (status >= 400) row.s4 += 1;
    else if (status >= 200) row.s2 += 1;
    else row.none += 1;
    byCategory.set(c.category, row);
    if (c.signed && status === 200) signedOk.add(`${SIGNED_PREFIX}${i}`);
  }
  const stored = (await rig.scan('conversations', ['conversationId'])).map((r) => String(r.conversationId));
  const storedUnsigned = stored.filter((id) => id.startsWith(UNSIGNED_PREFIX) || id.includes('polluted'));
  const storedSigned = stored.filter((id) => id.startsWith(SIGNED_PREFIX));
  const storedWithoutOk = storedSigned.filter((id) => id !== `${SIGNED_PREFIX}warm` && !signedOk.has(id));
  const noResponse = cases.filter((c, i) => results[i] === 0);
  // Hanging up is the client's doing; over the host's 4 MiB the host answers 413 and may close the
  // connection while the client is still sending, which the client can see as a reset (EPIPE).
  const unexpectedSilence = noResponse.filter((c) => !/hang up|over the host limit/.test(c.label));

  printTable('3a. Fuzzing /api/messages', [
    ['requests', cases.length],
    ...[...byCategory].map(
      ([category, r]) =>
        [`  ${category}`, `${r.n}: 2xx ${r.s2}, 4xx ${r.s4}, 5xx ${r.s5}, no answer ${r.none}`] as const,
    ),
    [
      'answers by status',
      [...byStatus]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([s, n]) => `${s}: ${n}`)
        .join(', '),
    ],
    ['**5xx while storage was up**', fiveHundreds.length],
    [
      'no answer (the client hung up on purpose / other)',
      `${noResponse.length - unexpectedSilence.length} / ${unexpectedSilence.length}${unexpectedSilence.length === 0 ? '' : ` (${[...new Set(unexpectedSilence.map((c) => c.label))].join('; ')})`}`,
    ],
    ['references stored from signed requests (answered 200)', storedSigned.length],
    ['**references stored without a valid token**', storedUnsigned.length + storedWithoutOk.length],
    [
      'app process: same pid, restarts, still serving',
      `${rig.app.pid === pid ? 'yes' : 'NO'}, ${rig.app.starts - restartsBefore}, ${(await rig.app.running()) ? 'yes' : 'NO'}`,
    ],
    [
      'app RSS at start / peak / end (MiB)',
      `${rssStart.toFixed(0)} / ${Math.max(before.rssPeak, rssEnd).toFixed(0)} / ${rssEnd.toFixed(0)}`,
    ],
  ]);

  expect(fiveHundreds, fiveHundreds.slice(0, 20).join('\n')).toEqual([]);
  expect(storedUnsigned, 'stored from requests without a valid token').toEqual([]);
  expect(storedWithoutOk, 'stored although the request was not answered 200').toEqual([]);
  expect(
    unexpectedSilence.map((c) => `${c.category} / ${c.label}`),
    'requests that got no answer',
  ).toEqual([]);
  expect(rig.app.alive).toBe(true);
  expect(rig.app.pid).toBe(pid);
  expect(await rig.app.running()).toBe(true);
  expect(rssEnd).toBeLessThan(rssStart + 300);
}

// ---- b) the queue ----------------------------------------------------------------------------

interface QueueCase {
  readonly kind: string;
  readonly text: string;
  readonly valid: boolean;
  /** A string id the app can record the job under (invalid cases that carry one). */
  readonly id?: string;
  /** What the failure reason must say. */
  readonly reason?: RegExp;
  readonly code?: string;
  /**
   * Never reaches the app: @azure/functions converts the trigger metadata (which holds the message
   * text, parsed) with a recursive function that overflows the stack on JSON nested thousands deep,
   * so the invocation fails before the handler runs and the host moves the message to the poison
   * queue unchanged after maxDequeueCount. The same happens under the real Functions host.
   */
  readonly hostPoisons?: boolean;
  /** A valid job that may also end failed, with a reason matching this, instead of delivered. */
  readonly mayFailWith?: RegExp;
}

/** What the Functions library hands the app for a queue message: JSON text parsed, anything else as the string. */
function asTriggerInput(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function decodedBase64(text: string): unknown {
  if (!/^[A-Za-z0-9+/\s]+={0,2}\s*$/.test(text)) return undefined;
  try {
    return JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function canonical(value: unknown): string {
  if (typeof value === 'string') return `s:${value}`;
  try {
    return `j:${JSON.stringify(value)}`;
  } catch {
    return 'unserialisable';
  }
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function invalidCase(rng: Rng, i: number, targets: { conversationId: string; aadObjectId: string }[]): QueueCase {
  const id = `qf-${SEED}-${i}`;
  const target = rng.pick(targets);
  const text = `[job:${id}] fuzz`;
  const job = (extra: Record<string, unknown>): string =>
    JSON.stringify({ id, to: { conversationId: target.conversationId }, text, ...extra });
  const choice = rng.int(40);
  switch (choice) {
    case 0:
      return {
        kind: 'not JSON, not base64',
        text: rng.pick(['hello world', '<job id="1"/>', 'id=1&text=hi', 'Invoice 4711 is overdue!', '{not json']),
        valid: false,
        reason: /\(message\): (is neither JSON nor base64|is not valid JSON)/,
      };
    case 1:
      return {
        kind: 'empty or blank',
        text: rng.pick(['', ' ', '\n\t ']),
        valid: false,
        reason: /\(message\): (is empty|must be a JSON object)/,
      };
    case 2:
      return {
        kind: 'truncated JSON',
        text: job({}).slice(0, 10 + rng.int(30)),
        valid: false,
        reason: /\(message\): is not valid JSON/,
      };
    case 3:
      return {
        kind: 'base64 of text that is not JSON',
        text: b64(`not json ${i}`),
        valid: false,
        reason: /\(message\): is base64 but does not decode to JSON/,
      };
    case 4:
      return {
        kind: 'base64 of UTF-16LE JSON',
        text: Buffer.from(job({}), 'utf16le').toString('base64'),
        valid: false,
        reason: /\(message\): is base64 but does not decode to JSON/,
      };
    case 5:
      return {
        kind: 'base64 of base64 of JSON',
        text: b64(b64(job({}))),
        valid: false,
        reason: /\(message\): is base64 but does not decode to JSON/,
      };
    case 6:
      return {
        kind: 'JSON that is not an object',
        text: rng.pick(['[]', '[{"to":{}}]', '123', 'true', 'null', '-1.5e308']),
        valid: false,
        reason: /\(message\): must be a JSON object \(got (an array|number|boolean|null)\)/,
      };
    case 7:
      return {
        kind: 'wrong type: to',
        text: job({ to: rng.pick(['a:1', 5, [], true]) }),
        id,
        valid: false,
        reason: /to: must be an object/,
      };
    case 8:
      return {
        kind: 'wrong type: to.conversationId',
        text: job({ to: { conversationId: rng.pick([5, true, [], {}]) } }),
        id,
        valid: false,
        reason: /to\.conversationId: must be a string/,
      };
    case 9:
      return { kind: 'empty target', text: job({ to: {} }), id, valid: false, reason: /to: has no target/ };
    case 10:
      return {
        kind: 'wrong type: text',
        text: job({ text: rng.pick([42, [], {}, false]) }),
        id,
        valid: false,
        reason: /text: must be a string/,
      };
    case 11:
      return {
        kind: 'bad textFormat',
        text: job({ textFormat: rng.pick(['html', 'MARKDOWN', 5, '']) }),
        id,
        valid: false,
        reason: /textFormat: must be one of markdown, plain, xml/,
      };
    case 12:
      return {
        kind: 'wrong type: mentions',
        text: job({ mentions: rng.pick(['x', { id: 'a' }, 5]) }),
        id,
        valid: false,
        reason: /mentions: must be an array/,
      };
    case 13:
      return {
        kind: 'bad mention',
        text: job({ mentions: [{ id: 1 }] }),
        id,
        valid: false,
        reason: /mentions\[0\]\.id: must be a string/,
      };
    case 14:
      return {
        kind: 'wrong type: adaptiveCard',
        text: job({ adaptiveCard: rng.pick([[], 'card', 5]) }),
        id,
        valid: false,
        reason: /adaptiveCard: must be an Adaptive Card JSON object/,
      };
    case 15:
      return {
        kind: 'adaptiveCard without type AdaptiveCard',
        text: job({ adaptiveCard: { type: 'Card', body: [] } }),
        id,
        valid: false,
        reason: /adaptiveCard\.type: must be "AdaptiveCard"/,
      };
    case 16:
      return {
        kind: 'wrong type: summary',
        text: job({ summary: rng.pick([{}, 5, []]) }),
        id,
        valid: false,
        reason: /summary: must be a string/,
      };
    case 17:
      return {
        kind: 'wrong type: activity',
        text: job({ activity: rng.pick(['x', 5, []]) }),
        id,
        valid: false,
        reason: /activity: must be an object/,
      };
    case 18:
      return {
        kind: 'unknown field',
        text: job({ priority: 'high' }),
        id,
        valid: false,
        reason: /priority: is not a job field/,
      };
    case 19:
      return {
        kind: 'no content',
        text: JSON.stringify({ id, to: { conversationId: target.conversationId } }),
        id,
        valid: false,
        reason: /text: a job needs content/,
      };
    case 20:
      return {
        kind: 'wrong type: id',
        text: JSON.stringify({
          id: rng.pick([7_000_000 + i, true, ['x']]),
          to: { conversationId: target.conversationId },
          text,
        }),
        valid: false,
        reason: /id: must be a string/,
      };
    case 21:
      return {
        kind: 'id over 128 characters',
        text: JSON.stringify({ id: `${id}-${'x'.repeat(200)}`, to: { conversationId: target.conversationId }, text }),
        valid: false,
        reason: /id: must be at most 128 characters/,
      };
    case 22:
      return {
        kind: 'wrong type: to.tenantId',
        text: job({ to: { aadObjectId: target.aadObjectId, tenantId: 5 } }),
        id,
        valid: false,
        reason: /to\.tenantId: must be a string/,
      };
    case 23:
      return {
        kind: 'threadId with a conversationId',
        text: job({ to: { conversationId: target.conversationId, threadId: '1' } }),
        id,
        valid: false,
        reason: /to\.threadId: is not allowed with to\.conversationId/,
      };
    case 24:
      return {
        kind: 'channelId with ;messageid=',
        text: job({ to: { channelId: '19:x@thread.tacv2;messageid=1' } }),
        id,
        valid: false,
        reason: /to\.channelId: must be the channel id without/,
      };
    case 25: {
      const to = rng.pick([
        { conversationId: target.conversationId, aadObjectId: target.aadObjectId },
        { conversationId: target.conversationId, channelId: '19:c@thread.tacv2' },
        { aadObjectId: target.aadObjectId, channelId: '19:c@thread.tacv2', conversationId: target.conversationId },
      ]);
      return {
        kind: 'conflicting targets',
        text: job({ to }),
        id,
        valid: false,
        reason: /to: has conflicting targets/,
      };
    }
    case 26:
      return {
        kind: 'forged envelope',
        text: JSON.stringify({ teamsCourier: { jobId: 5 }, job: JSON.parse(job({})) as unknown }),
        valid: false,
        reason: /teamsCourier\.jobId: must be a job id/,
      };
    case 27:
      return {
        kind: '__proto__ key',
        text: job({}).replace(/^\{/, '{"__proto__":{"to":{"conversationId":"a:polluted"}},'),
        id,
        valid: false,
        reason: /__proto__: is not a job field/,
      };
    case 28:
      return {
        kind: 'constructor key',
        text: job({}).replace(/^\{/, '{"constructor":{"prototype":{"polluted":true}},'),
        id,
        valid: false,
        reason: /constructor: is not a job field/,
      };
    case 29:
      return {
        kind: 'raw activity with a wrong conversation.id',
        text: JSON.stringify({ id, type: 'message', conversation: { id: rng.pick([5, [], '']) }, text }),
        id,
        valid: false,
        reason: /conversation\.id: (must be a string|must not be empty)/,
      };
    case 30:
      return {
        kind: 'base64 of a job with a wrong type',
        text: b64(job({ to: 5 })),
        id,
        valid: false,
        reason: /to: must be an object/,
      };
    case 31:
      return {
        kind: 'unknown conversation',
        text: job({ to: { conversationId: `a:chaos-unknown-${SEED}-${i}` } }),
        id,
        valid: false,
        code: 'ConversationUnknown',
        reason: new RegExp(
          `no conversation reference is stored for to\\.conversationId "a:chaos-unknown-${SEED}-${i}"`,
        ),
      };
    case 32:
      return {
        kind: 'unknown channel',
        text: job({ to: { channelId: `19:chaos-unknown-${SEED}-${i}@thread.tacv2` } }),
        id,
        valid: false,
        code: 'ChannelUnknown',
        reason: /no channel reference is stored for to\.channelId/,
      };
    case 33:
      return {
        kind: 'unknown user, no tenant',
        text: job({ to: { aadObjectId: `e0000000-0000-4000-8000-${String(i).padStart(12, '0')}` } }),
        id,
        valid: false,
        code: 'TenantRequired',
        reason: /to\.tenantId is required/,
      };
    case 34:
      return {
        kind: "text over Teams' 100 KB (55,000 characters)",
        text: job({ text: `${text} ${'x'.repeat(55_000)}` }),
        id,
        valid: false,
        code: 'MessageSizeTooBig',
        reason: /as UTF-16; Teams accepts at most/,
      };
    case 35:
      return {
        kind: "card over Teams' 100 KB",
        text: job({
          adaptiveCard: {
            type: 'AdaptiveCard',
            version: '1.5',
            body: [{ type: 'TextBlock', text: 'y'.repeat(58_000) }],
          },
        }),
        id,
        valid: false,
        code: 'MessageSizeTooBig',
        reason: /as UTF-16; Teams accepts at most/,
      };
    case 36: {
      // 65,500 bytes: within the queue's 64 KiB, too big for Teams, and too big to be dead-lettered
      // with the sender's envelope around it unless the sender makes room.
      const bare = job({ text: `${text} ` });
      return {
        kind: 'message of 65,500 bytes (queue limit 65,536)',
        text: job({ text: `${text} ${'z'.repeat(65_500 - Buffer.byteLength(bare))}` }),
        id,
        valid: false,
        reason: /Teams accepts at most|KiB|too large|\d+ bytes/i,
      };
    }
    case 37: {
      // Built as text: JSON.stringify itself gives up (RangeError) on an object this deep.
      const depth = 6_000;
      return {
        kind: `activity nested ${depth} deep (never reaches the app)`,
        text: job({}).replace(/\}$/, `,"activity":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
        id,
        valid: false,
        hostPoisons: true,
      };
    }
    case 38:
      return {
        kind: 'mentions without text',
        text: JSON.stringify({
          id,
          to: { conversationId: target.conversationId },
          adaptiveCard: { type: 'AdaptiveCard', body: [] },
          mentions: [{ id: '29:x', name: 'X' }],
        }),
        id,
        valid: false,
        reason: /mentions: need text/,
      };
    default:
      return {
        kind: 'several problems at once',
        text: JSON.stringify({ id, to: { conversationId: 5, channelId: 'x' }, textFormat: 'rtf', extra: 1 }),
        id,
        valid: false,
        reason: /^(?=.*extra: is not a job field)(?=.*to: has conflicting targets)(?=.*textFormat: must be one of)/,
      };
  }
}

function validCase(rng: Rng, i: number, targets: { conversationId: string; aadObjectId: string }[]): QueueCase {
  const id = `qv-${SEED}-${i}`;
  const target = rng.pick(targets);
  const text = `[job:${id}] valid ${i} ${rng.pick(['plain', 'ünïcödé ✓', '<at>nobody</at>', 'a\nb', '😀'])}`;
  const body = rng.weighted([
    [50, { id, to: { conversationId: target.conversationId }, text }],
    [15, { id, to: { aadObjectId: target.aadObjectId, tenantId: TENANT }, text, textFormat: 'plain' }],
    [10, { id, to: { aadObjectId: target.aadObjectId }, text, summary: 'fuzz' }],
    [10, { id, type: 'message', conversation: { id: target.conversationId }, text }],
    [
      15,
      {
        id,
        to: { conversationId: target.conversationId },
        text,
        adaptiveCard: { type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'card' }] },
      },
    ],
  ] as const);
  const json = JSON.stringify(body);
  const encoding = rng.weighted([
    [55, 'plain'],
    [20, 'base64'],
    [10, 'base64 with line breaks'],
    [10, 'whitespace around'],
    [5, 'UTF-8 BOM'],
  ] as const);
  const encoded =
    encoding === 'plain'
      ? json
      : encoding === 'base64'
        ? b64(json)
        : encoding === 'base64 with line breaks'
          ? // LF, not CRLF: Azurite hands a CR back as the literal text "&#xD;" (Azure Storage does not).
            (b64(json).match(/.{1,76}/g) ?? []).join('\n')
          : encoding === 'whitespace around'
            ? `  \n${json}\n\t`
            : `\ufeff${json}`;
  return { kind: `valid job, ${encoding}`, text: encoded, valid: true, id };
}

/**
 * A valid job just under the queue's 64 KiB (non-ASCII text: 3 bytes a character in the queue, 2 in
 * Teams' UTF-16 count, so Teams takes it), throttled once with Retry-After 15 s. The sender must put
 * it back on the queue, with its envelope, which no longer fits. It must still end delivered, or
 * failed with a reason about its size: never lost.
 */
function bigThrottledCase(i: number, target: { conversationId: string }): QueueCase {
  const id = `qb-${SEED}-${i}`;
  const bare = JSON.stringify({ id, to: { conversationId: target.conversationId }, text: `[job:${id}] ` });
  const text = `[job:${id}] ${'漢'.repeat(Math.floor((65_500 - Buffer.byteLength(bare)) / 3))}`;
  return {
    kind: 'valid job of 65,500 bytes, throttled once (Retry-After 15 s)',
    text: JSON.stringify({ id, to: { conversationId: target.conversationId }, text }),
    valid: true,
    id,
    mayFailWith: /KiB|bytes|too large/i,
  };
}

export async function fuzzQueue(rig: ChaosRig): Promise<void> {
  const rng = rngFor('fuzz-queue');
  const targets = Array.from({ length: 30 }, (_, k) => ({
    conversationId: `a:chaos-qfuzz-${SEED}-${k}`,
    aadObjectId: `c0000000-0000-4000-8000-${String(k).padStart(12, '0')}`,
  }));
  await mapLimit(targets, 8, async (t, k) => {
    const answer = await rig.postSigned(
      personalMessage({
        appId: APP_ID,
        tenantId: TENANT,
        serviceUrl: rig.connector.serviceUrl('amer'),
        conversationId: t.conversationId,
        user: { id: `29:chaos-qfuzz-${k}`, name: `Q ${k}`, aadObjectId: t.aadObjectId },
        text: 'hi',
      }),
    );
    expect(answer.status).toBe(200);
  });
  await rig.readPoison();
  const poisonBefore = rig.poison.length;
  const deliveredBefore = rig.connector.delivered.length;
  const validCount = Math.max(10, Math.round(PLAN.fuzzMessages / 10));
  const cases: QueueCase[] = [];
  for (let i = 0, v = 0; i < PLAN.fuzzMessages; i += 1) {
    cases.push(invalidCase(rng, i, targets));
    // Valid jobs spread evenly through the invalid ones.
    while (v < validCount && v * PLAN.fuzzMessages <= i * validCount) cases.push(validCase(rng, v++, targets));
  }
  const big = Array.from({ length: SIZE === 'full' ? 6 : 2 }, (_, k) => bigThrottledCase(k, targets[k]!));
  cases.push(...big);
  for (const c of big) {
    rig.connector.injectFault(Faults.throttle(15), {
      match: (ctx) => jobIdOfText((ctx.body as { text?: unknown } | undefined)?.text) === c.id,
      times: 1,
    });
  }
  const rssStart = rig.app.rssMb() ?? NaN;
  const started = Date.now();
  // Fed the way a producer would, in chunks, keeping the backlog under ~1,500 messages: Azurite's
  // queue slows down with its length (every receive scans it), which would measure Azurite, not the
  // sender.
  const refusals: (number | undefined)[] = [];
  const enqueuedAt = new Map<string, number>();
  for (let at = 0; at < cases.length; at += 500) {
    await waitFor(
      'the backlog to go down',
      120_000,
      async () => ((await rig.queueLength(OUTBOUND_QUEUE)) < 1_000 ? true : undefined),
      250,
    ).catch(() => undefined);
    const chunk = cases.slice(at, at + 500);
    const chunkStarted = Date.now();
    refusals.push(
      ...(await rig.enqueue(
        chunk.map((c) => c.text),
        24,
      )),
    );
    // A job's wait is counted from the start of its chunk: an upper bound on its time in the queue.
    for (const c of chunk) if (c.valid) enqueuedAt.set(c.id!, chunkStarted);
  }
  const enqueuedMs = Date.now() - started;
  const refused = new Set(cases.filter((_, k) => refusals[k] !== undefined));

  const validIds = new Set(cases.filter((c) => c.valid).map((c) => c.id!));
  /** When the stub received each valid job (its own clock). */
  const deliveredAt = new Map<string, number>();
  let scanned = deliveredBefore;
  const collect = (): void => {
    const all = rig.connector.delivered;
    for (; scanned < all.length; scanned += 1) {
      const delivery = all[scanned]!;
      const id = jobIdOfText(delivery.activity?.text);
      if (id !== undefined && validIds.has(id) && !deliveredAt.has(id)) deliveredAt.set(id, delivery.time);
    }
  };
  let drained = true;
  try {
    await waitFor(
      'the fuzzed queue to drain',
      PLAN.partTimeoutMs - 60_000,
      async () => {
        collect();
        return (await rig.queueLength(OUTBOUND_QUEUE)) === 0 ? true : undefined;
      },
      1_000,
    );
  } catch {
    drained = false;
  } finally {
    // The throttle rules for the big jobs are spent by now, or never will be (a job failed early).
    rig.connector.clearFaults();
  }
  collect();
  const drainMs = Date.now() - started;
  const rssEnd = rig.app.rssMb() ?? NaN;
  await rig.readPoison();
  const poison = rig.poison.slice(poisonBefore);

  // ---- Verdict ------------------------------------------------------------------------------
  const poisonByCanonical = new Map<string, string[]>();
  for (const entry of poison) {
    if (entry.teamsCourier === undefined) continue;
    const key = canonical(entry.job);
    poisonByCanonical.set(key, [...(poisonByCanonical.get(key) ?? []), entry.teamsCourier.reason]);
  }
  // Taken off this list as the cases that expect it are checked: what is left is unexpected.
  const hostPoisoned = poison.filter((p) => p.teamsCourier === undefined);
  const hostPoisonedTotal = hostPoisoned.length;
  const records = new Map(
    (await rig.scan('deliveries', ['jobId', 'status', 'lastErrorCode', 'lastErrorReason'])).map((r) => [
      String(r.jobId),
      r,
    ]),
  );
  const kinds = new Map<string, { n: number; ok: number }>();
  const problems: string[] = [];
  for (const c of cases) {
    const row = kinds.get(c.kind) ?? { n: 0, ok: 0 };
    row.n += 1;
    kinds.set(c.kind, row);
    if (refused.has(c)) {
      // The queue itself refused it (the producer sees the error); nothing for the app to do.
      if (c.valid) problems.push(`${c.kind} ${c.id}: the queue refused a valid job`);
      else row.ok += 1;
      continue;
    }
    if (c.valid) {
      const record = records.get(c.id!);
      const failedForSize =
        c.mayFailWith !== undefined &&
        record?.status === 'failed' &&
        c.mayFailWith.test(String(record.lastErrorReason)) &&
        poison.some((p) => p.teamsCourier?.jobId === c.id && c.mayFailWith!.test(p.teamsCourier?.reason ?? ''));
      if ((deliveredAt.has(c.id!) && record?.status === 'sent') || failedForSize) row.ok += 1;
      else
        problems.push(
          `${c.kind} ${c.id}: not delivered (record ${String(record?.status)} ${String(record?.lastErrorCode ?? '')} ${String(record?.lastErrorReason ?? '').slice(0, 160)})`,
        );
      continue;
    }
    if (c.hostPoisons) {
      const at = hostPoisoned.findIndex((p) => p.raw === c.text);
      if (at >= 0) {
        hostPoisoned.splice(at, 1);
        row.ok += 1;
      } else problems.push(`${c.kind}: not in the poison queue`);
      continue;
    }
    let why: string | undefined;
    // Found by job id when the case has one; otherwise by content: the sender dead-letters what it
    // was handed, or the decoded job (base64).
    const reason =
      c.id !== undefined
        ? poison.find((p) => p.teamsCourier?.jobId === c.id)?.teamsCourier?.reason
        : (
            poisonByCanonical.get(canonical(asTriggerInput(c.text))) ??
            poisonByCanonical.get(canonical(decodedBase64(c.text)))
          )?.shift();
    if (reason === undefined) why = 'not in the poison queue with a reason';
    else if (c.reason !== undefined && !c.reason.test(reason))
      why = `poison reason does not name the problem: ${reason.slice(0, 200)}`;
    if (why === undefined && c.id !== undefined) {
      const record = records.get(c.id);
      if (record?.status !== 'failed')
        why = `record is ${String(record?.status ?? 'missing')} ${String(record?.lastErrorReason ?? '').slice(0, 120)}`;
      else if (c.code !== undefined && record.lastErrorCode !== c.code)
        why = `record code ${String(record.lastErrorCode)}, expected ${c.code}`;
      else if (c.reason !== undefined && !c.reason.test(String(record.lastErrorReason)))
        why = `record reason does not name the problem: ${String(record.lastErrorReason).slice(0, 200)}`;
    }
    if (why === undefined) row.ok += 1;
    else problems.push(`${c.kind}${c.id === undefined ? '' : ` ${c.id}`}: ${why}`);
  }
  const leaked = rig.connector.delivered.slice(deliveredBefore).filter((d) => {
    const id = jobIdOfText(d.activity?.text);
    return id !== undefined && id.startsWith(`qf-${SEED}-`);
  });
  // From the start of a valid job's chunk to its arrival at the stub (the throttled big ones wait 15 s on purpose).
  const bigIds = new Set(big.map((c) => c.id!));
  const latencies = [...deliveredAt]
    .filter(([id]) => !bigIds.has(id) && enqueuedAt.has(id))
    .map(([id, at]) => at - enqueuedAt.get(id)!)
    .sort((a, b) => a - b);

  printTable('3b. Fuzzing the job queue', [
    ['messages', `${cases.length} (${cases.length - validIds.size} invalid, ${validIds.size} valid mixed in)`],
    ['  refused by the queue itself at enqueue', refused.size],
    ...[...kinds]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, r]) => [`  ${kind}`, `${r.n}${r.ok === r.n ? '' : `, **${r.n - r.ok} wrong**`}`] as const),
    [
      'invalid failed with a reason naming the problem',
      `${cases.filter((c) => !c.valid && !c.hostPoisons).length - problems.filter((p) => !p.includes('not delivered')).length} of ${cases.filter((c) => !c.valid && !c.hostPoisons).length}`,
    ],
    ['valid delivered', `${[...validIds].filter((id) => deliveredAt.has(id)).length} of ${validIds.size}`],
    [
      '  of the 65,500-byte throttled ones: delivered / failed naming their size',
      `${big.filter((c) => deliveredAt.has(c.id!)).length} / ${big.filter((c) => records.get(c.id!)?.status === 'failed').length}`,
    ],
    ['invalid jobs that reached the Bot Connector', leaked.length],
    [
      'moved to poison by the host, without a reason: expected / unexpected',
      `${hostPoisonedTotal - hostPoisoned.length} / ${hostPoisoned.length}`,
    ],
    [
      'enqueue time / drain time',
      `${(enqueuedMs / 1000).toFixed(1)} s / ${(drainMs / 1000).toFixed(1)} s${drained ? '' : ' (NOT drained)'}`,
    ],
    [
      'valid job, enqueued to delivered: p50 / p99 / max',
      [50, 99, 100].map((p) => `${(percentile(latencies, p) / 1000).toFixed(1)} s`).join(' / '),
    ],
    ['throughput (messages handled per second)', (cases.length / (drainMs / 1000)).toFixed(0)],
    ['app RSS at start / end (MiB)', `${rssStart.toFixed(0)} / ${rssEnd.toFixed(0)}`],
  ]);

  expect(drained, 'the queue drained').toBe(true);
  expect(problems, `${problems.length} problems:\n${problems.slice(0, 25).join('\n')}`).toEqual([]);
  expect(leaked).toHaveLength(0);
  expect(
    hostPoisoned.map((p) => p.raw.slice(0, 120)),
    'messages the host gave up on (no reason recorded)',
  ).toEqual([]);
  expect(rig.app.alive).toBe(true);
}
