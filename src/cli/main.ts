#!/usr/bin/env node
/**
 * `teams-courier`: the operator CLI. Puts jobs on the queue (`send`), reads delivery records
 * (`status`), cancels batch jobs (`cancel`), lists stored conversations (`conversations list`), lists and replays failed jobs
 * (`poison`) and shows what the sender did (`stats`), with the app's own settings:
 * environment variables first, then local.settings.json `Values` in the current directory.
 *
 * `runCli(argv, io)` is the whole program with injectable stdout, stderr, environment and working
 * directory; the block at the end runs it as a process. Results go to stdout, progress and
 * messages to stderr; exit codes: 0 ok, 1 failure (or a job failed), 2 usage error.
 */
import { UsageError, wantsHelp } from './args';
import { CANCEL_HELP, cancelCommand } from './cancel';
import { createContext, type CliContext } from './context';
import { CONVERSATIONS_HELP, conversationsListCommand } from './conversations';
import { CliFailure, err, EXIT_FAILED, EXIT_OK, EXIT_USAGE, out, type CliIo } from './io';
import { POISON_HELP, poisonCommand } from './poison';
import { SEND_HELP, sendCommand } from './send';
import { STATS_HELP, statsCommand } from './stats';
import { STATUS_HELP, statusCommand } from './status';
import { describeStorageError } from './storage';

export type { CliIo, CliStream } from './io';

export const USAGE = `usage: teams-courier <command> [options]

Sends proactive Microsoft Teams messages through teams-courier's job queue, and reads what
happened to them.

commands:
  send                  queue a message, broadcast, update or delete, or a file of jobs
  status <jobId>        show a job's delivery record (--watch to follow it)
  cancel <jobId>        cancel a Teams batch job (to.batch) and its running operations
  conversations list    list the conversations the bot can send to
  poison list|show|replay
                        failed jobs with their reasons; put them back once the cause is fixed
  stats                 sent, failed by reason, throttled, pending, time from enqueue to sent

Run teams-courier <command> --help for the options of each.

settings (environment variables first, then local.settings.json "Values" in this directory):
  AzureWebJobsStorage     a storage connection string; UseDevelopmentStorage=true is the local
                          emulator. Or sign in with Entra ID (az login, or a managed identity):
  AzureWebJobsStorage__accountName, or AzureWebJobsStorage__queueServiceUri and __tableServiceUri
  AzureWebJobsStorage__credential=managedidentity and __clientId    (a managed identity)
  OUTBOUND_QUEUE          the job queue (default outbound-messages)

With Entra ID, send needs Storage Queue Data Message Sender on the queue; status and
conversations need Storage Table Data Reader; cancel, poison and stats say what they need in
their --help.

exit codes: 0 ok, 1 failed (a job failed, or storage refused or could not be reached),
2 usage error or invalid job`;

async function dispatch(command: string, rest: readonly string[], ctx: CliContext): Promise<number> {
  switch (command) {
    case 'send':
      if (wantsHelp(rest)) return help(ctx, SEND_HELP);
      return sendCommand(rest, ctx);
    case 'status':
      if (wantsHelp(rest)) return help(ctx, STATUS_HELP);
      return statusCommand(rest, ctx);
    case 'cancel':
      if (wantsHelp(rest)) return help(ctx, CANCEL_HELP);
      return cancelCommand(rest, ctx);
    case 'conversations': {
      const [sub, ...more] = rest;
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || wantsHelp(more)) {
        if (sub === undefined)
          throw new UsageError('conversations needs a subcommand: teams-courier conversations list');
        return help(ctx, CONVERSATIONS_HELP);
      }
      if (sub !== 'list') throw new UsageError(`unknown subcommand "conversations ${sub}"; the subcommand is: list`);
      return conversationsListCommand(more, ctx);
    }
    case 'poison':
      if (rest.length === 0) throw new UsageError('poison needs a subcommand: list, show or replay');
      if (wantsHelp(rest) || rest[0] === 'help') return help(ctx, POISON_HELP);
      return poisonCommand(rest, ctx);
    case 'stats':
      if (wantsHelp(rest)) return help(ctx, STATS_HELP);
      return statsCommand(rest, ctx);
    default:
      throw new UsageError(
        `unknown command "${command}"; the commands are send, status, cancel, conversations list, poison and stats`,
      );
  }
}

function help(ctx: CliContext, text: string): number {
  out(ctx.io, text);
  return EXIT_OK;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx = createContext(io);
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      err(io, USAGE);
      return EXIT_USAGE;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      if (command === 'help' && rest[0] !== undefined) return await dispatch(rest[0], ['--help'], ctx);
      return help(ctx, USAGE);
    }
    return await dispatch(command, rest, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      const topic = ['send', 'status', 'cancel', 'conversations', 'poison', 'stats'].includes(command ?? '')
        ? ` ${command}`
        : '';
      err(io, `teams-courier${topic}: ${ctx.redact(error.message)}`);
      err(io, `Run teams-courier${topic} --help for usage.`);
      return EXIT_USAGE;
    }
    if (error instanceof CliFailure) {
      err(io, ctx.redact(error.message));
      return error.exitCode;
    }
    err(io, `teams-courier: ${ctx.redact(describeStorageError(error, command === 'send' ? 'queue' : 'table'))}`);
    return EXIT_FAILED;
  }
}

if (require.main === module) {
  // Ctrl-C while waiting: end the progress line and stop; jobs already queued stay queued.
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted; jobs already queued stay queued\n');
    process.exit(130);
  });
  runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `teams-courier: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exitCode = EXIT_FAILED;
    },
  );
}
