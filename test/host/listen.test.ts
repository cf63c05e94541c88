/**
 * Where the local host listens: loopback unless asked otherwise, because it checks no function keys
 * (and in emulator mode serves a token issuer).
 */
import { expect, test } from 'vitest';
import { startHost } from '../../host/host';
import { HostConfigError } from '../../host/settings';
import { FIXTURE_APP } from './helpers';

// Nothing listens on port 9; no test here gets as far as polling anyway.
const UNREACHABLE_STORAGE =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1';

const start = (env: Record<string, string | undefined>, host?: string) =>
  startHost({
    rootDir: FIXTURE_APP,
    port: 0,
    log: () => undefined,
    ...(host === undefined ? {} : { host }),
    env: { AzureWebJobsStorage: UNREACHABLE_STORAGE, WORK_QUEUE: 'work-items', ...env },
  });

test('HOST=0.0.0.0 alone is refused, naming the flag that allows it', async () => {
  const refused = start({ HOST: '0.0.0.0' });
  await expect(refused).rejects.toThrow(HostConfigError);
  await expect(start({ HOST: '0.0.0.0' })).rejects.toThrow(
    /HOST=0\.0\.0\.0 is not a loopback address.*HOST_ALLOW_REMOTE=true/,
  );
  await expect(start({ HOST_ALLOW_REMOTE: 'false' }, '::')).rejects.toThrow(/not a loopback address/);
  await expect(start({ HOST: '0.0.0.0', HOST_ALLOW_REMOTE: 'yes please' })).rejects.toThrow(
    /HOST_ALLOW_REMOTE must be true or false/,
  );
});

test('loopback addresses need no flag', async () => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const running = await start({ HOST: host });
    expect(running.url).toMatch(new RegExp(`^http://${host}:\\d+$`));
    expect((await fetch(`${running.url}/admin/host/status`)).status).toBe(200);
    await running.close();
  }
});
