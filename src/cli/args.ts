/**
 * Hand-written argv parsing for the CLI (no dependency): `--name value`, `--name=value`, boolean
 * `--flag`, repeatable options, `--` to end options, and positionals. Anything unknown or
 * incomplete is a UsageError (exit code 2) that names the option.
 */

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
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  const given: string[] = [];

  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`unknown option ${arg} (see teams-courier ${command} --help)`);
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown option --${name} (see teams-courier ${command} --help)`);
    if (spec.kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      given.push(name);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value may start with "-", but not with "--" (write --text=--value for that).
      if (next === undefined || next.startsWith('--'))
        throw new UsageError(`--${name} needs a value${spec.value ? ` ${spec.value}` : ''}`);
      value = next;
      i += 1;
    }
    given.push(name);
    if (spec.kind === 'list') {
      const list = lists.get(name) ?? [];
      list.push(value);
      lists.set(name, list);
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
