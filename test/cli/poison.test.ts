/**
 * `teams-courier poison list | show | replay`, run in-process against a real Azurite: messages the
 * Functions host moved to `<queue>-poison` are listed, shown, replayed (once per job) and left
 * visible when they are not replayed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { useAzurite } from '../helpers/storage';
import { emptyDir, removeTempDirs, run, uniqueQueue } from './helpers';

const storage = useAzurite();
afterAll(removeTempDirs);

async function poisonWorld() {
  const queue = uniqueQueue('poison');
  const poison = storage().queue(`${queue}-poison`);
  await poison.create();
  const job = (id: string) => JSON.stringify({ id, to: { conversationId: 'a:1' }, text: 'hi' });
  // The host moves a message as it was; the same job twice, as when a copy was moved too.
  for (const text of [job('p-1'), job('p-2'), job('p-2'), 'not json']) await poison.sendMessage(text);
  const env = { AzureWebJobsStorage: storage().azurite.connectionString, OUTBOUND_QUEUE: queue };
  const cli = (...argv: string[]) => run(argv, { env, cwd: emptyDir() });
  const count = async (name: string) => {
    const client = storage().queue(name);
    return (await client.exists()) ? ((await client.getProperties()).approximateMessagesCount ?? 0) : 0;
  };
  return { queue, cli, count };
}

describe('teams-courier poison', () => {
  it('lists and shows the failed jobs, and leaves them where they were', async () => {
    const { queue, cli, count } = await poisonWorld();
    const listed = await cli('poison', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const entries = JSON.parse(listed.stdout) as { jobId: string | null; code: string; replayable: boolean }[];
    expect(entries).toHaveLength(4);
    expect(entries.filter((e) => e.jobId === 'p-2')).toHaveLength(2);
    expect(entries.find((e) => e.jobId === null)?.replayable).toBe(false);
    expect(listed.stderr).toContain('4 failed jobs (3 replayable)');

    const table = await cli('poison', 'list', '--limit', '10');
    expect(table.stdout).toMatch(/^JOB\s+CODE\s+FAILED\s+ATTEMPTS\s+REPLAY\s+REASON$/m);

    const shown = await cli('poison', 'show', 'p-1');
    expect(shown.code).toBe(0);
    expect(shown.stderr).toContain('replay it with: teams-courier poison replay p-1');
    const unknown = await cli('poison', 'show', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`job "nope" is not in ${queue}-poison, and no delivery record has that id`);
    expect(await count(`${queue}-poison`)).toBe(4);
  });

  it('replays each job once and keeps what it cannot replay; a dry run changes nothing', async () => {
    const { queue, cli, count } = await poisonWorld();
    const dry = await cli('poison', 'replay', '--all', '--dry-run');
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('would be: requeued      p-1');
    expect(dry.stdout).toContain('would be: duplicate     p-2');
    expect(dry.stderr).toContain('dry run: would requeue 2, already sent 0, not replayable 1, duplicates 1');
    expect(await count(queue)).toBe(0);
    expect(await count(`${queue}-poison`)).toBe(4);

    // Right after the dry run, on the same queue: it left every copy visible, the duplicate too.
    const replayed = await cli('poison', 'replay', 'p-1', 'p-2', 'p-3', '--json');
    expect(replayed.code).toBe(1);
    const body = JSON.parse(replayed.stdout) as { results: { jobId: string; result: string }[]; notFound: string[] };
    expect(body.results.map((r) => [r.jobId, r.result])).toEqual([
      ['p-1', 'requeued'],
      ['p-2', 'requeued'],
      ['p-2', 'duplicate'],
    ]);
    expect(body.notFound).toEqual(['p-3']);
    expect(replayed.stderr).toContain(`job "p-3" is not in ${queue}-poison`);
    expect(replayed.stderr).toContain('follow a job with: teams-courier status p-1 --watch');
    expect(await count(queue)).toBe(2);
    expect(await count(`${queue}-poison`)).toBe(1);
  });

  it.each([
    [['poison'], 'poison needs a subcommand: list, show or replay'],
    [['poison', 'purge'], 'unknown subcommand "poison purge"'],
    [['poison', 'replay'], 'which jobs? give job ids'],
    [['poison', 'replay', 'x', '--all'], '--all replays every job: give either job ids or --all'],
    [['poison', 'list', 'x'], 'unexpected argument "x"'],
    [['poison', 'list', '--since', 'soon'], '--since: '],
    [['poison', 'show', '--colour'], 'unknown option --colour (see teams-courier poison show --help)'],
  ])('usage error %j exits 2', async (argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});
