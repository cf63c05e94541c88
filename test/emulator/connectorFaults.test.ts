import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorServer } from '../../host/emulator/connectorServer';
import {
  Faults,
  mulberry32,
  RandomFaultPlan,
  TEAMS_ERRORS,
  type RandomFaultOptions,
  type TeamsErrorName,
} from '../../host/emulator/faults';
import { SlidingWindowLimiter } from '../../host/emulator/rateLimiter';
import { TENANT_ID, call, keepAliveAgent, startConnectorStub, type ConnectorStub, type HttpResult } from './helpers';

describe('Bot Connector stub: rate limits and faults', () => {
  let stub: ConnectorStub;
  let connector: ConnectorServer;
  let token: string;
  /** Fake clock: rate limits see only what the test advances. */
  let clock = 1_800_000_000_000;
  const agent = keepAliveAgent();

  beforeAll(async () => {
    stub = await startConnectorStub({ now: () => clock }, agent);
    ({ connector, token } = stub);
  });
  afterAll(() => stub.close());
  beforeEach(() => {
    connector.reset();
    connector.clearFaults();
    connector.configure({ rateLimit: {} });
  });

  const send = (conversationId: string, text = 'hi'): Promise<HttpResult> =>
    call(agent, `${connector.serviceUrl('amer')}v3/conversations/${encodeURIComponent(conversationId)}/activities`, {
      token,
      body: { type: 'message', text, conversation: { id: conversationId, tenantId: TENANT_ID } },
    });

  describe('Teams rate limits (§4)', () => {
    it('429 with Retry-After after 7 sends in 1 s to one conversation; others unaffected', async () => {
      for (let i = 0; i < 7; i += 1) expect((await send('a:1rl')).status).toBe(201);
      const throttled = await send('a:1rl');
      expect(throttled.status).toBe(429);
      expect(throttled.headers['retry-after']).toBe('1');
      expect(throttled.json).toEqual(TEAMS_ERRORS.Throttled.body);
      expect(connector.requests.at(-1)).toMatchObject({ throttled: 'thread', delivered: false });
      expect((await send('a:1other')).status).toBe(201);
      expect(connector.stats.throttled).toBe(1);
      expect(connector.delivered).toHaveLength(8);
    });

    it('sliding windows: 8 per 2 s, 60 per 30 s', async () => {
      for (let i = 0; i < 7; i += 1) expect((await send('a:1win')).status).toBe(201);
      clock += 1_000;
      expect((await send('a:1win')).status).toBe(201); // 8th within 2 s
      const ninth = await send('a:1win');
      expect(ninth.status).toBe(429);
      expect(ninth.headers['retry-after']).toBe('1'); // the first 7 leave the 2 s window in 1 s
      clock += 1_000;
      expect((await send('a:1win')).status).toBe(201);

      // Fill the 30 s window at a pace the short windows allow, then hit its cap.
      let sent = 9;
      while (sent < 60) {
        clock += 300;
        if ((await send('a:1win')).status === 201) sent += 1;
      }
      clock += 2_000;
      const capped = await send('a:1win');
      expect(capped.status).toBe(429);
      expect(Number(capped.headers['retry-after'])).toBeGreaterThan(2);
    });

    it('per app per tenant: 50 per second across conversations', async () => {
      for (let i = 0; i < 50; i += 1) expect((await send(`a:1tenant-${i}`)).status).toBe(201);
      const res = await send('a:1tenant-50');
      expect(res.status).toBe(429);
      expect(connector.requests.at(-1)?.throttled).toBe('tenant');
      clock += 1_000;
      expect((await send('a:1tenant-50')).status).toBe(201);
    });

    it('can be turned off', async () => {
      connector.configure({ rateLimit: false });
      for (let i = 0; i < 20; i += 1) expect((await send('a:1free')).status).toBe(201);
    });

    it('limiter math: retry-after is when the blocking entry leaves its window', () => {
      let t = 0;
      const limiter = new SlidingWindowLimiter([{ windowMs: 1_000, max: 2 }], () => t);
      limiter.record('k');
      t = 400;
      limiter.record('k');
      t = 500;
      expect(limiter.check('k')).toMatchObject({ allowed: false, retryAfterMs: 500 });
      t = 1_000;
      expect(limiter.check('k')).toEqual({ allowed: true });
    });
  });

  describe('injected faults (§7)', () => {
    it('429 with Retry-After in seconds, as an HTTP-date, and without', async () => {
      connector.injectFault(Faults.throttle(3));
      connector.injectFault(Faults.throttleHttpDate(2));
      connector.injectFault(Faults.throttleWithoutRetryAfter());
      const seconds = await send('a:1t');
      expect(seconds.status).toBe(429);
      expect(seconds.headers['retry-after']).toBe('3');
      const date = await send('a:1t');
      expect(date.status).toBe(429);
      expect(new Date(String(date.headers['retry-after'])).getTime()).toBe(Math.floor((clock + 2_000) / 1000) * 1000);
      const none = await send('a:1t');
      expect(none.status).toBe(429);
      expect(none.headers['retry-after']).toBeUndefined();
      expect((await send('a:1t')).status).toBe(201);
      expect(connector.delivered).toHaveLength(1);
    });

    it('every canned error answers with its status and exact body', async () => {
      const names = Object.keys(TEAMS_ERRORS) as TeamsErrorName[];
      for (const name of names) {
        connector.injectFault(Faults.error(name));
        const res = await send('a:1err');
        expect(res.status, name).toBe(TEAMS_ERRORS[name].status);
        expect(res.json, name).toEqual(TEAMS_ERRORS[name].body);
      }
      expect(connector.delivered).toHaveLength(0);
      // The odd MessageWritesBlocked body (§7): message is a JSON string.
      expect(JSON.parse((TEAMS_ERRORS.MessageWritesBlocked.body as { message: string }).message)).toMatchObject({
        subCode: 'MessageWritesBlocked',
      });
    });

    it('plain statuses 412/500/502/503/504 and a custom one', async () => {
      for (const status of [412, 500, 502, 503, 504, 418]) {
        connector.injectFault(
          Faults.status(status, status === 418 ? { teapot: true } : undefined, { 'x-extra': 'yes' }),
        );
        const res = await send('a:1s');
        expect(res.status).toBe(status);
        expect(res.headers['x-extra']).toBe('yes');
      }
    });

    it('slow response: delays, then processes normally (or applies a follow-up fault)', async () => {
      connector.injectFault(Faults.delay(120));
      let started = performance.now();
      expect((await send('a:1slow')).status).toBe(201);
      expect(performance.now() - started).toBeGreaterThanOrEqual(110);

      connector.injectFault(Faults.delay(60, Faults.error('GatewayTimeout')));
      started = performance.now();
      expect((await send('a:1slow')).status).toBe(504);
      expect(performance.now() - started).toBeGreaterThanOrEqual(50);
    });

    it('drop before responding: connection error, nothing delivered; the client recovers', async () => {
      connector.injectFault(Faults.drop());
      await expect(send('a:1drop')).rejects.toThrow();
      expect(connector.requests.at(-1)).toMatchObject({ outcome: 'dropped', status: null, delivered: false });
      expect(connector.delivered).toHaveLength(0);
      expect((await send('a:1drop')).status).toBe(201);
    });

    it('drop after accepting: connection error, but the message WAS delivered (ambiguous window)', async () => {
      connector.injectFault(Faults.dropAfterAccept());
      await expect(send('a:1ambiguous', 'maybe')).rejects.toThrow();
      const record = await connector.waitFor((r) => r.conversationId === 'a:1ambiguous');
      expect(record).toMatchObject({ outcome: 'droppedAfterAccept', status: null, delivered: true });
      expect(connector.delivered.map((d) => d.activity?.text)).toEqual(['maybe']);
      expect(connector.stats.dropped).toBe(1);
    });

    it('matching: by conversation, operation and count; and a fault handler function', async () => {
      connector.injectFault(Faults.error('ConversationNotFound'), {
        match: { conversationId: 'a:1target', operation: 'sendToConversation' },
        times: 2,
      });
      expect((await send('a:1bystander')).status).toBe(201);
      expect((await send('a:1target')).status).toBe(404);
      expect((await send('a:1target')).status).toBe(404);
      expect((await send('a:1target')).status).toBe(201);

      connector.setFaultHandler((ctx) =>
        ctx.body !== null && typeof ctx.body === 'object' && 'text' in ctx.body && ctx.body.text === 'boom'
          ? Faults.status(500)
          : undefined,
      );
      expect((await send('a:1h', 'boom')).status).toBe(500);
      expect((await send('a:1h', 'fine')).status).toBe(201);
    });
  });

  describe('seeded random faults', () => {
    const options: RandomFaultOptions = {
      seed: 1234,
      probabilities: {
        throttle: 0.1,
        serviceError: 0.1,
        badGateway: 0.05,
        drop: 0.05,
        dropAfterAccept: 0.05,
        preconditionFailed: 0.05,
      },
    };

    async function run(opts: RandomFaultOptions): Promise<string[]> {
      connector.reset();
      connector.configure({ rateLimit: false });
      connector.setRandomFaults(opts);
      const outcomes: string[] = [];
      for (let i = 0; i < 40; i += 1) {
        try {
          outcomes.push(String((await send(`a:1seed-${i % 5}`)).status));
        } catch {
          outcomes.push('error');
        }
      }
      await connector.waitFor((_r, all) => all.length >= 40 && all.every((r) => r.outcome !== 'pending'));
      return outcomes;
    }

    it('replays the same faults for the same seed, different ones for another seed', async () => {
      const first = await run(options);
      const delivered = connector.delivered.length;
      const second = await run(options);
      expect(second).toEqual(first);
      expect(connector.delivered.length).toBe(delivered);
      expect(new Set(first).size).toBeGreaterThan(2);
      expect(await run({ ...options, seed: 99 })).not.toEqual(first);
    });

    it('the PRNG and the plan are deterministic and validated', () => {
      const a = mulberry32(7);
      const b = mulberry32(7);
      expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
      const plan1 = new RandomFaultPlan(options);
      const plan2 = new RandomFaultPlan(options);
      expect(Array.from({ length: 50 }, () => plan1.pick())).toEqual(Array.from({ length: 50 }, () => plan2.pick()));
      expect(() => new RandomFaultPlan({ seed: 1, probabilities: { throttle: 0.7, drop: 0.5 } })).toThrow(/> 1/);
    });
  });
});
