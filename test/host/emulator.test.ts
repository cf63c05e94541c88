import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, expect, test } from 'vitest';
import { ensureLocalCertificate } from '../../host/emulator/certificate';
import { startHost } from '../../host/host';
import { FIXTURE_APP, records } from './helpers';

// Nothing listens on port 9: the queue listeners just back off, which is all this test needs.
const UNREACHABLE_STORAGE =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1';

// The emulator writes its control file under ./.azurite; leave no empty folder behind.
const azuriteDir = path.resolve('.azurite');
const hadAzuriteDir = existsSync(azuriteDir);
afterAll(() => {
  if (!hadAzuriteDir && existsSync(azuriteDir) && readdirSync(azuriteDir).length === 0) rmdirSync(azuriteDir);
});

test('with no MicrosoftAppId, emulator mode starts the emulator and its settings reach the app before it loads', async () => {
  const before = process.env.BOT_OPENID_METADATA_URL;
  const lines: string[] = [];
  const host = await startHost({
    rootDir: FIXTURE_APP,
    host: '127.0.0.1',
    port: 0,
    log: (line) => lines.push(line),
    emulator: 'auto',
    env: { AzureWebJobsStorage: UNREACHABLE_STORAGE, WORK_QUEUE: 'work-items', MicrosoftAppId: '' },
  });
  try {
    expect(lines.some((l) => l.includes('EMULATOR MODE — local only'))).toBe(true);
    expect(records('load').at(-1)).toMatchObject({ appId: expect.stringMatching(/\S/) });
    expect(process.env.MicrosoftAppId).toBe(records('load').at(-1)?.appId);
    const metadataUrl = process.env.BOT_OPENID_METADATA_URL;
    expect(metadataUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    // The emulator's HTTPS endpoints present this machine's certificate (.local-certs), and the app's
    // clients in this process accept it (here through the worker's NODE_EXTRA_CA_CERTS; the host
    // checked that before loading the app).
    expect(await peerCertificate(metadataUrl!)).toBe(new X509Certificate(ensureLocalCertificate().cert).fingerprint256);
    expect((await fetch(metadataUrl!)).ok).toBe(true);
    expect((await fetch(`${host.url}/api/nested/ping`)).status).toBe(200);
  } finally {
    await host.close();
  }
  expect(process.env.BOT_OPENID_METADATA_URL).toBe(before);
});

test('with a MicrosoftAppId, no emulator starts', async () => {
  const lines: string[] = [];
  const host = await startHost({
    rootDir: FIXTURE_APP,
    host: '127.0.0.1',
    port: 0,
    log: (line) => lines.push(line),
    emulator: 'auto',
    env: {
      AzureWebJobsStorage: UNREACHABLE_STORAGE,
      WORK_QUEUE: 'work-items',
      MicrosoftAppId: '11111111-2222-3333-4444-555555555555',
    },
  });
  await host.close();
  expect(lines.some((l) => l.includes('EMULATOR MODE'))).toBe(false);
  expect(records('load').at(-1)).toMatchObject({ appId: '11111111-2222-3333-4444-555555555555' });
});

function peerCertificate(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.once('error', reject);
  });
}
