/**
 * `teams-courier poison list | show <jobId> | replay`: the failed jobs in the poison queue, with
 * their reasons, and putting chosen ones back on the job queue under their own ids once the cause
 * is fixed (src/flows/replayJob.ts; docs/operate.md).
 *
 * The poison queue is read by receiving (a peek sees only 32 messages): what a command does not
 * replay is made visible again before it exits. A command that is killed leaves its messages hidden
 * for a few minutes at most; nothing is lost.
 */
import { HOST_POISONED } from '../core/poison';
import { UsageError, wantsHelp } from './args';
import type { CliContext } from './context';
import { EXIT_OK, out } from './io';
import { explainRefusal } from './operatorStorage';
import { poisonListCommand, poisonShowCommand } from './poisonList';
import { poisonReplayCommand } from './poisonReplay';

export const POISON_HELP = `usage: teams-courier poison list [--reason <code>] [--since <when>] [--parent <jobId>] [--limit <n>] [--json]
       teams-courier poison show <jobId> [--json]
       teams-courier poison replay [<jobId>...] [--reason <code>] [--since <when>] [--parent <jobId>]
                                   [--all] [--dry-run] [--limit <n>] [--json]

The poison queue (<OUTBOUND_QUEUE>-poison) holds every job that failed for good, with its reason.
After the cause is fixed (a rotated secret, a Graph consent, an expired certificate), replay puts
the chosen jobs back on the job queue under their own ids:

- a job Teams already accepted is never sent again (its record says sent: the poison message is
  only removed);
- a failed record goes back to pending first (a conditional write), and its history keeps the
  earlier attempts and a "replayed" entry; the attempts start over;
- the job keeps its caller (an Entra-authenticated flow's namespace and tenants) and its broadcast
  or batch, whose counts show it as pending again.

Jobs that would fail the same way again (InvalidJob, JobTooLarge, a job kept only in part) are
listed as not replayable and stay where they are.

  list                  the failed jobs: id, code, when, attempts, replayable, reason
  show <jobId>          one job's poison entries and its delivery record
  replay                put jobs back: the ids given, or those matching --reason / --since /
                        --parent, or --all of them
  --reason <code>       only this failure code (docs/delivery.md, "Failure reasons"), e.g.
                        Unauthorized; ${HOST_POISONED} for messages the Functions host moved
  --since <when>        only failures since then: 30m, 2h, 1d, or an ISO 8601 time
  --parent <jobId>      only the recipients of this broadcast (or the jobs of this batch)
  --all                 replay: every replayable job (needed when no id or filter is given)
  --dry-run             replay: show what would happen, change nothing
  --limit <n>           look at most at n poison messages (default 5000)
  --json                JSON on stdout

Job ids are the internal ones the poison queue shows: an Entra-authenticated caller's job is
<caller>:<id>. With Entra ID, list and show need Storage Queue Data Contributor on the poison
queue; replay also needs Storage Queue Data Message Sender on the job queue and Storage Table Data
Contributor.

exit codes: 0 ok, 1 a job was not found, not replayable, or storage failed, 2 usage error`;

const ROLES =
  'Storage Queue Data Contributor on the poison queue, Storage Queue Data Message Sender on the job queue and Storage Table Data Contributor';

export async function poisonCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new UsageError('poison needs a subcommand: list, show or replay');
  if (wantsHelp([sub, ...rest])) {
    out(ctx.io, POISON_HELP);
    return EXIT_OK;
  }
  try {
    switch (sub) {
      case 'list':
        return await poisonListCommand(rest, ctx);
      case 'show':
        return await poisonShowCommand(rest, ctx);
      case 'replay':
        return await poisonReplayCommand(rest, ctx);
      default:
        throw new UsageError(`unknown subcommand "poison ${sub}"; the subcommands are list, show and replay`);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    return explainRefusal(error, ROLES);
  }
}
