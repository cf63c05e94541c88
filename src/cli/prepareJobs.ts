/** The jobs `send` queues: each checked, and given its queue message text and delay, before any is queued. */
import { admitJobs } from '../core/admission';
import type { ParsedJob } from '../core/job';
import type { Problem } from '../errors';

export interface PreparedJob {
  readonly job: ParsedJob;
  readonly body: Record<string, unknown>;
  readonly text: string;
  readonly delaySeconds: number;
  /** The job had no id of its own. */
  readonly generatedId: boolean;
}

/**
 * Admits jobs exactly as POST /api/notify and the sender do (src/core/admission.ts), without the
 * API's 100-job cap: every problem of every job, with `[i].` in front for arrays; a missing id gets
 * `newId()`. The CLI has storage rights, so it writes plain jobs to the queue, as any flow may.
 */
export function prepareJobs(
  body: unknown,
  now: Date,
  newId: () => string,
): { jobs: PreparedJob[] } | { problems: Problem[] } {
  const generated = new Set<string>();
  const admitted = admitJobs(body, {
    now,
    rootPath: '(file)',
    newId: () => {
      const id = newId();
      generated.add(id);
      return id;
    },
  });
  if ('problems' in admitted) return admitted;
  return {
    jobs: admitted.jobs.map(({ job, body: jobBody, delayMs }) => ({
      job,
      body: jobBody,
      text: JSON.stringify(jobBody),
      delaySeconds: Math.ceil(delayMs / 1000),
      generatedId: generated.has(job.id),
    })),
  };
}
