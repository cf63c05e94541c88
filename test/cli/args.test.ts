/**
 * The CLI's argv parsing (node:util parseArgs underneath): what it accepts, and that every
 * refusal is a UsageError naming the option.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError, wantsHelp, type OptionSpecs } from '../../src/cli/args';

const SPECS: OptionSpecs = {
  to: { kind: 'list', value: '<aadObjectId>' },
  text: { kind: 'string', value: '"..."' },
  wait: { kind: 'boolean' },
};

const parse = (argv: string[]) => parseArgs(argv, SPECS, 'send');

describe('parseArgs', () => {
  it('reads values, repeated lists, flags and positionals, in the order given', () => {
    const args = parse(['--to', 'a', 'pos', '--text=-1', '--wait', '--to=b', '-5', '-', '--', '--wait', '-x']);
    expect(args.strings).toEqual(new Map([['text', '-1']]));
    expect(args.lists).toEqual(new Map([['to', ['a', 'b']]]));
    expect(args.flags).toEqual(new Set(['wait']));
    expect(args.positionals).toEqual(['pos', '-5', '-', '--wait', '-x']);
    expect(args.given).toEqual(['to', 'text', 'wait', 'to']);
  });

  it('takes a value that starts with one dash, and one with two only inline', () => {
    expect(parse(['--text', '-hello']).strings.get('text')).toBe('-hello');
    expect(parse(['--text=--hello']).strings.get('text')).toBe('--hello');
    expect(parse(['--text=']).strings.get('text')).toBe('');
  });

  it.each([
    [['--colour', 'red'], 'unknown option --colour (see teams-courier send --help)'],
    [['-x'], 'unknown option -x (see teams-courier send --help)'],
    [['-abc'], 'unknown option -abc (see teams-courier send --help)'],
    [['--constructor'], 'unknown option --constructor (see teams-courier send --help)'],
    [['--text'], '--text needs a value "..."'],
    [['--text', '--wait'], '--text needs a value "..."'],
    [['--to', '--'], '--to needs a value <aadObjectId>'],
    [['--wait=yes'], '--wait takes no value'],
    [['--text', 'a', '--text', 'b'], '--text is given more than once'],
  ])('refuses %j', (argv, message) => {
    expect(() => parse(argv)).toThrow(UsageError);
    expect(() => parse(argv)).toThrow(message);
  });

  it('finds --help and -h before a --', () => {
    expect(wantsHelp(['--to', 'x', '-h'])).toBe(true);
    expect(wantsHelp(['--', '--help'])).toBe(false);
  });
});
