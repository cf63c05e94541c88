/**
 * GET /api/health against a real Azurite: 200 when the configuration loads and storage answers,
 * 503 otherwise, the same bare body either way, and at most one storage request per cache period.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors';
import { createHealthCheck, handleHealth, HEALTH_CACHE_MS } from '../../src/flows/health';
import { createLogger } from '../../src/log';
import { probeTable } from '../../src/store/storageProbe';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { freePort } from '../chaos/harness';
import { useAzurite } from '../helpers/storage';

const storage = useAzurite();

function logs(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger((_level, line) => lines.push(line)) };
}

describe('the health check', () => {
  it('is 200 when storage answers (a 404 for the probe row is an answer)', async () => {
    const { log } = logs();
    const health = createHealthCheck({
      checkConfig: () => undefined,
      probeStorage: () => probeTable(storage().table(TABLES.deliveries)),
      now: Date.now,
    });
    expect(await handleHealth({ method: 'GET' }, health, log)).toEqual({
      status: 200,
      headers: { 'Cache-Control': 'no-store' },
      jsonBody: { status: 'ok' },
    });
    expect((await handleHealth({ method: 'HEAD' }, health, log)).status).toBe(200);
    expect((await handleHealth({ method: 'POST' }, health, log)).status).toBe(405);
  });

  it('is 503 with no detail when storage is unreachable, and says why in the log only', async () => {
    const { log, lines } = logs();
    const port = await freePort();
    const unreachable = createTableClient(
      {
        kind: 'connectionString',
        connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k').toString('base64')};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1`,
      },
      TABLES.deliveries,
    );
    const health = createHealthCheck({
      checkConfig: () => undefined,
      probeStorage: () => probeTable(unreachable),
      now: Date.now,
    });
    const answer = await handleHealth({ method: 'GET' }, health, log);
    expect(answer).toEqual({
      status: 503,
      headers: { 'Cache-Control': 'no-store', 'Retry-After': '10' },
      jsonBody: { status: 'unavailable' },
    });
    expect(JSON.stringify(answer)).not.toMatch(/127\.0\.0\.1|Storage|ECONN/);
    expect(lines.join('\n')).toContain('health.unhealthy');
  });

  it('is 503 when the configuration does not load, without touching storage', async () => {
    const { log, lines } = logs();
    let probes = 0;
    const health = createHealthCheck({
      checkConfig: () => {
        throw new ConfigError([{ path: 'MicrosoftAppId', message: 'is required' }]);
      },
      probeStorage: async () => {
        probes += 1;
      },
      now: Date.now,
    });
    const answer = await handleHealth({ method: 'GET' }, health, log);
    expect(answer.status).toBe(503);
    expect(JSON.stringify(answer.jsonBody)).not.toContain('MicrosoftAppId');
    expect(probes).toBe(0);
    expect(lines.join('\n')).toContain('MicrosoftAppId');
  });

  it('costs at most one storage request per cache period, however many probes arrive', async () => {
    const { log } = logs();
    let clock = 1_000_000;
    let probes = 0;
    const table = storage().table(TABLES.deliveries);
    const health = createHealthCheck({
      checkConfig: () => undefined,
      probeStorage: async () => {
        probes += 1;
        await probeTable(table);
      },
      now: () => clock,
    });
    const answers = await Promise.all(Array.from({ length: 50 }, () => handleHealth({ method: 'GET' }, health, log)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(probes).toBe(1);
    clock += HEALTH_CACHE_MS - 1;
    await handleHealth({ method: 'GET' }, health, log);
    expect(probes).toBe(1);
    clock += 1;
    await handleHealth({ method: 'GET' }, health, log);
    expect(probes).toBe(2);
  });
});
