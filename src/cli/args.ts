/**
 * The CLI's argv parsing, on `node:util` `parseArgs`: `--name value`, `--name=value`, boolean
 * `--flag`, repeatable options, `--` to end options, and positionals. Anything unknown or
 * incomplete is a UsageError (exit code 2) that names the option.
 *
 * `parseArgs` runs with `strict: false` and its tokens are checked here: strict mode's errors do
 * not name the option in a field (only in their text), and it refuses a value that starts with "-"
 * (`--text -1`), which the CLI accepts. Negative numbers (`-5`) are positionals, not options.
 */
import { parseArgs as parseArgv } from 'node:util';

export type OptionKind = 'string' | 'boolean' | 'list';

export interface OptionSpec {
  readonly kind: OptionKind;
  /** Placeholder shown in messages, e.g. `<aadObjectId>`. */
  readonly value?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface ParsedArgs {
  readonly strings: ReadonlyMap<string, string>;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
  readonly positionals: readonly string[];
  /** Options in the order they were given (for "choose one of" messages). */
  readonly given: readonly string[];
}

/** Wrong options or arguments: the message says what; exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const HELP = new Set(['--help', '-h']);

export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (HELP.has(arg)) return true;
  }
  return false;
}

export function parseArgs(argv: readonly string[], specs: OptionSpecs, command: string): ParsedArgs {
  const { tokens } = parseArgv({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(specs).map(([name, spec]) => [
        name,
        { type: spec.kind === 'boolean' ? 'boolean' : 'string', multiple: spec.kind === 'list' },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  const given: string[] = [];
  // A short option group (`-abc`) comes as one token per letter, all with the argument's index.
  const seen = new Set<number>();

  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    const arg = argv[token.index]!;
    if (!token.rawName.startsWith('--')) {
      if (seen.has(token.index)) continue;
      seen.add(token.index);
      if (!/^-\d/.test(arg)) throw new UsageError(`unknown option ${arg} (see teams-courier ${command} --help)`);
      positionals.push(arg);
      continue;
    }
    const { name } = token;
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown option --${name} (see teams-courier ${command} --help)`);
    given.push(name);
    if (spec.kind === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      continue;
    }
    // A value may start with "-", but not with "--" (write --text=--value for that).
    const value = token.value;
    if (value === undefined || (!token.inlineValue && value.startsWith('--')))
      throw new UsageError(`--${name} needs a value${spec.value ? ` ${spec.value}` : ''}`);
    if (spec.kind === 'list') {
      lists.set(name, [...(lists.get(name) ?? []), value]);
    } else {
      if (strings.has(name)) throw new UsageError(`--${name} is given more than once`);
      strings.set(name, value);
    }
  }
  return { strings, lists, flags, positionals, given };
}

/** A number of seconds (decimals allowed), at least 0. */
export function parseSeconds(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0)
    throw new UsageError(`--${name} must be a number of seconds, 0 or more (got "${raw}")`);
  return value;
}

/** A whole number of at least `min`. */
export function parseCount(raw: string | undefined, name: string, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min)
    throw new UsageError(`--${name} must be a whole number of at least ${min} (got "${raw}")`);
  return value;
}

export interface JobArgs {
  readonly id: string;
  readonly json: boolean;
  readonly watch: boolean;
  /** --timeout of --watch, in ms (default 60 s; 0 waits without limit). */
  readonly timeoutMs: number;
}

const JOB_OPTIONS: OptionSpecs = {
  json: { kind: 'boolean' },
  watch: { kind: 'boolean' },
  timeout: { kind: 'string', value: '<seconds>' },
};

/** `<command> <jobId> [--json] [--watch [--timeout <seconds>]]`, the form of `status` and `cancel`. */
export function parseJobArgs(argv: readonly string[], command: string): JobArgs {
  const args = parseArgs(argv, JOB_OPTIONS, command);
  if (args.positionals.length === 0) throw new UsageError(`which job? teams-courier ${command} <jobId>`);
  if (args.positionals.length > 1) throw new UsageError(`one job id at a time (got ${args.positionals.length})`);
  const id = args.positionals[0]!;
  if (id.trim() === '' || id.length > 512) throw new UsageError('a job id is 1-512 characters');
  const watch = args.flags.has('watch');
  if (!watch && args.strings.has('timeout')) throw new UsageError('--timeout goes with --watch');
  const timeoutMs = parseSeconds(args.strings.get('timeout'), 'timeout', 60) * 1000;
  return { id, json: args.flags.has('json'), watch, timeoutMs };
}
