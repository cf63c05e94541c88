/**
 * A Graph call that failed below HTTP, named for graphClient.ts (the HTTP itself is shared with the
 * Bot Connector clients: src/connector/answerReader.ts).
 */
import { undiciFailure } from '../connector/answerReader';
import { failure, type GraphFailure } from './graphResult';

export function networkFailure(err: unknown): GraphFailure {
  const fail = (what: string) => failure('GraphNetwork', `no answer from Graph: ${what}`);
  const named = undiciFailure(err);
  if (named !== undefined) return fail(named.message);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return fail(code);
  return fail(err instanceof Error ? err.name : 'network error');
}
