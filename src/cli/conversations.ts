/**
 * `teams-courier conversations list`: pages through the stored conversation references
 * (listConversations), so an operator sees where the bot can send.
 */
import type { ConversationType } from '../core/activity';
import { listConversations, type ListedConversation } from '../store/conversationList';
import { statusOf } from '../store/tableClients';
import { parseArgs, parseCount, UsageError, type OptionSpecs } from './args';
import type { CliContext } from './context';
import { plural, renderTable } from './format';
import { err, EXIT_OK, out } from './io';

export const CONVERSATIONS_HELP = `usage: teams-courier conversations list [--tenant <tenantId>] [--type <type>] [--installed]
                                        [--limit <n>] [--json]

Lists the conversations the bot has seen (the conversations table): personal chats, group chats
and channels, with their tenant, whether the bot is installed there now, a name and when the bot
last heard from them. Use an id with: teams-courier send --conversation <id> ...

  --tenant <tenantId>   only this tenant
  --type <type>         only personal, groupChat or channel
  --installed           only where the bot is installed now
  --limit <n>           at most n conversations (default: all)
  --json                a JSON array on stdout

exit codes: 0 ok (also when none match), 1 storage could not be read, 2 usage error`;

const OPTIONS: OptionSpecs = {
  tenant: { kind: 'string', value: '<tenantId>' },
  type: { kind: 'string', value: 'personal|groupChat|channel' },
  installed: { kind: 'boolean' },
  limit: { kind: 'string', value: '<n>' },
  json: { kind: 'boolean' },
};

const TYPES: readonly ConversationType[] = ['personal', 'groupChat', 'channel'];
const PAGE_SIZE = 200;

export async function conversationsListCommand(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, OPTIONS, 'conversations list');
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const type = args.strings.get('type');
  if (type !== undefined && !(TYPES as readonly string[]).includes(type))
    throw new UsageError(`--type must be one of ${TYPES.join(', ')} (got "${type}")`);
  const tenant = args.strings.get('tenant');
  if (tenant !== undefined && tenant.trim() === '') throw new UsageError('--tenant must not be empty');
  const limit = parseCount(args.strings.get('limit'), 'limit');
  const json = args.flags.has('json');

  const table = ctx.storage().conversationsTable();
  const filter = {
    ...(args.flags.has('installed') ? { installedOnly: true } : {}),
    ...(tenant === undefined ? {} : { tenantId: tenant }),
    ...(type === undefined ? {} : { conversationType: type as ConversationType }),
  };
  const found: ListedConversation[] = [];
  const progress = ctx.progress();
  let token: string | undefined;
  let pages = 0;
  let more = false;
  try {
    do {
      const pageSize = limit === undefined ? PAGE_SIZE : Math.min(PAGE_SIZE, limit - found.length);
      let page: Awaited<ReturnType<typeof listConversations>>;
      try {
        page = await listConversations(table, filter, {
          pageSize,
          ...(token === undefined ? {} : { continuationToken: token }),
        });
      } catch (error) {
        // The app creates the table when it stores its first conversation.
        if (statusOf(error) !== 404 || pages > 0) throw error;
        page = { conversations: [] };
      }
      pages += 1;
      found.push(...page.conversations);
      token = page.continuationToken;
      if (pages > 1 || token !== undefined) progress.update(`read ${plural(found.length, 'conversation')}…`);
      if (limit !== undefined && found.length >= limit) {
        more = token !== undefined || found.length > limit;
        found.length = Math.min(found.length, limit);
        break;
      }
    } while (token !== undefined);
  } finally {
    progress.done();
  }

  if (json) {
    out(ctx.io, JSON.stringify(found, null, 2));
  } else if (found.length > 0) {
    const rows = found.map((c) => [
      c.conversationId,
      c.conversationType,
      c.tenantId,
      c.installed ? 'yes' : 'no',
      c.name ?? '',
      c.lastSeenAt ?? '',
    ]);
    for (const line of renderTable(['ID', 'TYPE', 'TENANT', 'INSTALLED', 'NAME', 'LAST SEEN'], rows)) out(ctx.io, line);
  }
  const filtered = Object.keys(filter).length > 0 ? ' matching' : '';
  err(
    ctx.io,
    found.length === 0
      ? `no${filtered} conversations are stored${filtered ? '' : ' yet: the bot learns a conversation when it is installed there or receives a message'}`
      : `${plural(found.length, 'conversation')}${filtered}${more ? ` (stopped at --limit ${limit}; there are more)` : ''}`,
  );
  return EXIT_OK;
}
