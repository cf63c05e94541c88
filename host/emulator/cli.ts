/**
 * `npm run emulator -- <command>`: talks to the emulator that `npm start` runs (without MicrosoftAppId)
 * through the control endpoint named in .azurite/emulator-control.json.
 *
 *   say <text...>     send a signed personal-chat message from the emulator user to the app
 *   send <text...>    put a job for the emulator user on the app's queue and wait for the bot's message
 *   batch <text...>   put a Teams batch job for users of the emulator tenant on the queue; show its counts until done
 *   install           send installationUpdate (add): the app stores the personal chat reference
 *   uninstall         send installationUpdate (remove)
 *   status            show the emulator's endpoints, counters and the bot's recent messages
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import type { QueueClient } from '@azure/storage-queue';
import type { StorageConfig } from '../../src/config';
import { createQueueClient } from '../../src/store/jobQueue';
import { readLocalSettings } from '../settings';
import { EMULATOR_USER } from './activities';
import { sendBatch } from './cliBatch';
import type { ControlFile, EmulatorStatus, InboundResult } from './index';
import { loadTestCertificate } from './localServer';

export interface CliIo {
  readonly cwd: string;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const USAGE = [
  'usage: npm run emulator -- <command>',
  '  say <text...>   send a personal-chat message from the emulator user to the app',
  '  send <text...>  put a job for the emulator user on the queue; prints what the bot sent',
  '  batch <text...> a Teams batch job to users of the emulator tenant; shows its counts until done',
  '  install         send installationUpdate (add) so the app stores the conversation',
  '  uninstall       send installationUpdate (remove)',
  '  status          show endpoints, counters and what the bot sent recently',
].join('\n');

const NOT_RUNNING =
  'The emulator is not running. Start it with `npm start` without MicrosoftAppId set (in local.settings.json and the environment), then try again.';

function readControlFile(cwd: string): ControlFile | undefined {
  try {
    const parsed = JSON.parse(
      readFileSync(path.join(cwd, '.azurite', 'emulator-control.json'), 'utf8'),
    ) as Partial<ControlFile>;
    if (typeof parsed.controlUrl !== 'string' || typeof parsed.token !== 'string') return undefined;
    return parsed as ControlFile;
  } catch {
    return undefined;
  }
}

async function call(
  control: ControlFile,
  method: 'GET' | 'POST',
  command: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  // Trust only the emulator's test certificate for this one connection; nothing global.
  const dispatcher = new Agent({ connect: { ca: loadTestCertificate().cert } });
  try {
    const response = await request(`${control.controlUrl}${command}`, {
      method,
      dispatcher,
      headers: {
        authorization: `Bearer ${control.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await response.body.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // keep text
    }
    return { status: response.statusCode, json };
  } finally {
    await dispatcher.close();
  }
}

function printInbound(result: InboundResult, io: CliIo): void {
  const ok = result.status >= 200 && result.status < 300;
  io.out(
    `sent ${result.activity.type}${result.activity.text ? ` "${result.activity.text}"` : ''} to the app as ${result.activity.from?.id ?? '?'} in ${result.activity.conversation?.id ?? '?'}`,
  );
  io.out(`app answered ${result.status}${ok ? '' : ` (${result.body.slice(0, 500)})`}`);
  for (const d of result.deliveries) io.out(`bot -> ${d.conversationId}: ${d.activity?.text ?? `(${d.operation})`}`);
}

function printStatus(status: EmulatorStatus, io: CliIo): void {
  io.out(`emulator bot ${status.appId} (tenant ${status.tenantId}) -> app ${status.appBaseUrl}`);
  io.out(`  connector ${status.connectorOrigin} (serviceUrl ${status.serviceUrl})`);
  io.out(`  openid    ${status.openIdMetadataUrl}`);
  io.out(`  entra     ${status.authorityHost}`);
  io.out(
    `  connector requests ${status.stats.requests}, delivered ${status.stats.delivered}, throttled ${status.stats.throttled}, unauthorized ${status.stats.unauthorized}`,
  );
  io.out(`  token requests ${status.tokenRequests}, key downloads ${status.keyDownloads}`);
  if (status.recent.length === 0) io.out('  the bot has not sent anything yet');
  for (const r of status.recent)
    io.out(
      `  ${r.time} ${r.operation} ${r.conversationId} #${r.activityId}${r.text !== undefined ? ` : ${r.text}` : ''}`,
    );
}

/** The app's storage and queue name, read as the host reads them: environment first, then local.settings.json. */
function appStorage(cwd: string): { readonly storage: StorageConfig; readonly queueName: string } {
  let values: Record<string, string> = {};
  try {
    values = readLocalSettings(cwd).values;
  } catch {
    // unreadable local settings: defaults below
  }
  const setting = (name: string): string | undefined => process.env[name] || values[name] || undefined;
  const connectionString = setting('AzureWebJobsStorage') ?? 'UseDevelopmentStorage=true';
  return {
    storage: { kind: 'connectionString', connectionString },
    queueName: setting('OUTBOUND_QUEUE') ?? 'outbound-messages',
  };
}

function appQueue(cwd: string): QueueClient {
  const { storage, queueName } = appStorage(cwd);
  return createQueueClient(storage, queueName);
}

/** Enqueues a job for the emulator user, then waits (bounded) for the bot's message at the emulator. */
async function sendJob(control: ControlFile, text: string, io: CliIo): Promise<number> {
  if (text === '') {
    io.err('send needs a message, e.g. npm run emulator -- send "Invoice 4711 is overdue"');
    return 1;
  }
  const id = `emulator-${Date.now()}`;
  const queue = appQueue(io.cwd);
  await queue.createIfNotExists();
  await queue.sendMessage(JSON.stringify({ id, to: { aadObjectId: EMULATOR_USER.aadObjectId }, text }));
  io.out(`queued job ${id} for ${EMULATOR_USER.aadObjectId} on ${queue.name}`);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const { status, json } = await call(control, 'GET', 'status');
    const recent = status === 200 ? (json as EmulatorStatus).recent : [];
    const hit = recent.find((r) => r.text === text);
    if (hit !== undefined) {
      io.out(`bot -> ${hit.conversationId}: ${hit.text}`);
      return 0;
    }
  }
  io.err(
    `no message from the bot within 20 s; is npm start running? The delivery record is ${id} in the deliveries table.`,
  );
  return 1;
}

/** Runs one CLI command; returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (!['say', 'send', 'batch', 'install', 'uninstall', 'status'].includes(command)) {
    io.err(`unknown command "${command}"\n${USAGE}`);
    return 1;
  }
  const control = readControlFile(io.cwd);
  if (!control) {
    io.err(NOT_RUNNING);
    return 2;
  }
  try {
    if (command === 'status') {
      const { status, json } = await call(control, 'GET', 'status');
      if (status !== 200) throw new Error(`control endpoint answered ${status}: ${JSON.stringify(json)}`);
      printStatus(json as EmulatorStatus, io);
      return 0;
    }
    if (command === 'send') return await sendJob(control, rest.join(' ').trim(), io);
    if (command === 'batch') {
      const { storage, queueName } = appStorage(io.cwd);
      return await sendBatch(rest.join(' ').trim(), io, {
        install: () => call(control, 'POST', 'install', { action: 'add' }),
        queue: createQueueClient(storage, queueName),
        storage,
      });
    }
    let response: { status: number; json: unknown };
    if (command === 'say') {
      const text = rest.join(' ').trim();
      if (text === '') {
        io.err('say needs a message, e.g. npm run emulator -- say "hello"');
        return 1;
      }
      response = await call(control, 'POST', 'say', { text });
    } else {
      response = await call(control, 'POST', 'install', { action: command === 'install' ? 'add' : 'remove' });
    }
    if (response.status !== 200) {
      const error =
        typeof response.json === 'object' && response.json !== null && 'error' in response.json
          ? String(response.json.error)
          : JSON.stringify(response.json);
      io.err(`emulator: ${error}`);
      return 1;
    }
    const result = response.json as InboundResult;
    printInbound(result, io);
    return result.status >= 200 && result.status < 300 ? 0 : 1;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT') {
      io.err(`${NOT_RUNNING} (found a stale .azurite/emulator-control.json pointing at ${control.controlUrl})`);
      return 2;
    }
    io.err(`emulator: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), {
    cwd: process.cwd(),
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
