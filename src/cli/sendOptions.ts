/**
 * `send`'s options: which exist, which go together, and the job they describe (validated later,
 * with the sender's own rules). A problem in that job names the option the user typed (flagFor).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UsageError, type OptionSpecs, type ParsedArgs } from './args';
import type { CliContext } from './context';

export const SEND_OPTIONS: OptionSpecs = {
  to: { kind: 'list', value: '<aadObjectId>' },
  tenant: { kind: 'string', value: '<tenantId>' },
  conversation: { kind: 'string', value: '<conversationId>' },
  channel: { kind: 'string', value: '<channelId>' },
  thread: { kind: 'string', value: '<rootMessageId>' },
  'all-installed': { kind: 'boolean' },
  'batch-to': { kind: 'list', value: '<aadObjectId or 29: id>' },
  'batch-tenant': { kind: 'string', value: '<tenantId>' },
  'batch-team': { kind: 'string', value: '<teamId>' },
  'batch-channel': { kind: 'list', value: '<channelId>' },
  type: { kind: 'string', value: 'personal|groupChat|channel' },
  update: { kind: 'string', value: '<jobId>' },
  delete: { kind: 'string', value: '<jobId>' },
  file: { kind: 'string', value: '<jobs.json>' },
  text: { kind: 'string', value: '"..."' },
  format: { kind: 'string', value: 'markdown|plain|xml' },
  card: { kind: 'string', value: '<card.json>' },
  summary: { kind: 'string', value: '"..."' },
  id: { kind: 'string', value: '<jobId>' },
  'not-before': { kind: 'string', value: '<ISO 8601 date-time>' },
  wait: { kind: 'boolean' },
  timeout: { kind: 'string', value: '<seconds>' },
  json: { kind: 'boolean' },
  'dry-run': { kind: 'boolean' },
};

const TARGETS = [
  'to',
  'conversation',
  'channel',
  'all-installed',
  'batch-to',
  'batch-tenant',
  'batch-team',
  'batch-channel',
  'update',
  'delete',
  'file',
] as const;
export type Target = (typeof TARGETS)[number];
const CONTENT = ['text', 'format', 'card', 'summary'] as const;

/** The option that set each job field, so a problem names what the user typed. */
const FLAG_OF: readonly (readonly [string, string])[] = [
  ['to.aadObjectIds', '--to'],
  ['to.aadObjectId', '--to'],
  ['to.tenantId', '--tenant'],
  ['to.conversationId', '--conversation'],
  ['to.channelId', '--channel'],
  ['to.threadId', '--thread'],
  ['to.conversationType', '--type'],
  ['to.allInstalled', '--all-installed'],
  ['to.users', '--batch-to'],
  ['to.teamId', '--batch-team'],
  ['to.channelIds', '--batch-channel'],
  ['textFormat', '--format'],
  ['text', '--text'],
  ['summary', '--summary'],
  ['adaptiveCard', '--card'],
  ['mentions', '--text'],
  ['notBefore', '--not-before'],
  ['update', '--update'],
  ['delete', '--delete'],
  ['id', '--id'],
];

export function flagFor(path: string): string | undefined {
  return FLAG_OF.find(([field]) => path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`))?.[1];
}

export function readJsonFile(ctx: CliContext, file: string, option: string): unknown {
  const full = ctx.resolvePath(file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${option}: cannot read ${full}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
  } catch (error) {
    throw new UsageError(`${option}: ${full} is not valid JSON: ${(error as Error).message}`);
  }
}

/** The job the options describe (not yet validated). */
export function buildJob(ctx: CliContext, target: Target, args: ParsedArgs): Record<string, unknown> {
  const s = (name: string): string | undefined => args.strings.get(name);
  const tenant = s('tenant');
  const body: Record<string, unknown> = { id: s('id') ?? randomUUID() };
  switch (target) {
    case 'to': {
      const users = args.lists.get('to') ?? [];
      body.to =
        users.length === 1
          ? { aadObjectId: users[0], ...(tenant === undefined ? {} : { tenantId: tenant }) }
          : { aadObjectIds: users, ...(tenant === undefined ? {} : { tenantId: tenant }) };
      break;
    }
    case 'conversation':
      body.to = { conversationId: s('conversation') };
      break;
    case 'channel':
      body.to = { channelId: s('channel'), ...(s('thread') === undefined ? {} : { threadId: s('thread') }) };
      break;
    case 'all-installed':
      body.to = {
        allInstalled: true,
        ...(tenant === undefined ? {} : { tenantId: tenant }),
        ...(s('type') === undefined ? {} : { conversationType: s('type') }),
      };
      break;
    case 'batch-to':
      body.to = {
        batch: 'users',
        users: args.lists.get('batch-to') ?? [],
        ...(tenant === undefined ? {} : { tenantId: tenant }),
      };
      break;
    case 'batch-tenant':
      body.to = { batch: 'tenant', tenantId: s('batch-tenant') };
      break;
    case 'batch-team':
      body.to = { batch: 'team', teamId: s('batch-team'), ...(tenant === undefined ? {} : { tenantId: tenant }) };
      break;
    case 'batch-channel':
      body.to = {
        batch: 'channels',
        channelIds: args.lists.get('batch-channel') ?? [],
        ...(tenant === undefined ? {} : { tenantId: tenant }),
      };
      break;
    case 'update':
      body.update = s('update');
      break;
    case 'delete':
      body.delete = s('delete');
      break;
    case 'file':
      throw new Error('unreachable');
  }
  if (s('text') !== undefined) body.text = s('text');
  if (s('format') !== undefined) body.textFormat = s('format');
  if (s('summary') !== undefined) body.summary = s('summary');
  const card = s('card');
  if (card !== undefined) body.adaptiveCard = readJsonFile(ctx, card, '--card');
  if (s('not-before') !== undefined) body.notBefore = s('not-before');
  return body;
}

export function checkCombination(args: ParsedArgs): Target {
  const given = (name: string): boolean => args.given.includes(name);
  const targets = TARGETS.filter(given);
  if (targets.length === 0)
    throw new UsageError(
      'say where the message goes: --to, --conversation, --channel, --all-installed, --batch-to, --batch-tenant, --batch-team, --batch-channel, --update, --delete or --file',
    );
  if (targets.length > 1) throw new UsageError(`choose one target, not ${targets.map((t) => `--${t}`).join(' and ')}`);
  const target = targets[0]!;
  if (args.positionals.length > 0)
    throw new UsageError(`unexpected argument "${args.positionals[0]}" (put the message in --text "...")`);
  const misplaced = (names: readonly string[], why: string): void => {
    const found = names.filter(given);
    if (found.length > 0) throw new UsageError(`${found.map((n) => `--${n}`).join(', ')} ${why}`);
  };
  if (target === 'file')
    misplaced(
      [...CONTENT, 'tenant', 'thread', 'type', 'id', 'not-before'],
      'cannot be combined with --file (put them in the file)',
    );
  if (target === 'delete') misplaced(CONTENT, 'cannot be combined with --delete (a delete job has no content)');
  if (!['to', 'all-installed', 'batch-to', 'batch-team', 'batch-channel'].includes(target))
    misplaced(['tenant'], 'goes with --to, --all-installed, --batch-to, --batch-team or --batch-channel');
  if (target !== 'channel') misplaced(['thread'], 'goes with --channel');
  if (target !== 'all-installed') misplaced(['type'], 'goes with --all-installed');
  if (!args.flags.has('wait')) misplaced(['timeout'], 'goes with --wait');
  if (args.flags.has('dry-run')) misplaced(['wait'], 'cannot be combined with --dry-run');
  return target;
}
