/**
 * Job admission: the one set of rules for a job that enters teams-courier, whoever brings it (the
 * HTTP API, the CLI, or a flow writing the queue, checked again by the sender). Pure.
 *
 * Beyond the job contract (parseJob), admission decides:
 * - the job's internal id: a caller authenticated with Entra ID gets its own namespace
 *   (`<caller>:<id>`), so it can neither read nor change another caller's jobs;
 * - ids reserved for teams-courier's own jobs (`<broadcast>~<n>`, `welcome-…`) are refused;
 * - a caller limited to tenants may only name those tenants;
 * - the job must fit a queue message inside the sender's envelope, and a schedule at most 7 days out.
 */
import type { Problem } from '../errors';
import { JobValidationError } from '../errors';
import { MAX_SCHEDULE_MS, parseJob, toEnvelope, type Envelope, type ParsedJob } from './job';
import { MAX_ENVELOPED_JOB_BYTES, queueMessageBytes } from './queueMessage';

/** Who submits: absent for full-trust submitters (function key, CLI, the queue itself). */
export interface Submitter {
  /** Caller name: the namespace of its job ids. */
  readonly name: string;
  /** Tenants the caller may reach; undefined means any. */
  readonly tenants?: readonly string[];
}

export interface AdmitOptions {
  readonly now: Date;
  /** Id for a job that names none (`id` absent or null). */
  readonly newId: () => string;
  readonly submitter?: Submitter;
  /** The batch a job belongs to (its record's parent). */
  readonly parentId?: string;
  /** The submitter writes the job's record before queueing it (the HTTP API's `pending`). */
  readonly recorded?: boolean;
}

export interface AdmittedJob {
  /** The id the submitter knows the job by. */
  readonly id: string;
  /** The job, with its internal id (`<caller>:<id>` for a namespaced caller). */
  readonly job: ParsedJob;
  /** The job body as the submitter wrote it (id filled in). */
  readonly body: Record<string, unknown>;
  readonly envelope: Envelope;
  /** What to put on the queue: the body in teams-courier's envelope. */
  readonly queueText: string;
  /** How long the message stays invisible (notBefore). */
  readonly delayMs: number;
}

const RESERVED_ID = /^welcome-|~\d+$/;

/** Ids teams-courier gives its own jobs: a broadcast's children and install welcomes. */
export function isReservedJobId(id: string): boolean {
  return RESERVED_ID.test(id);
}

/** `<caller>:<id>` for a namespaced caller, the id itself otherwise. */
export function toInternalId(id: string, submitter: Submitter | undefined): string {
  return submitter === undefined ? id : `${submitter.name}:${id}`;
}

/** The id a submitter knows, from an internal one (undefined when it is not the submitter's). */
export function fromInternalId(internal: string, submitter: Submitter | undefined): string | undefined {
  if (submitter === undefined) return internal;
  const prefix = `${submitter.name}:`;
  return internal.startsWith(prefix) ? internal.slice(prefix.length) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Tenant ids a job names explicitly. A batch to a team or channels may leave it to the store (checked when sent). */
function namedTenant(job: ParsedJob): string | undefined {
  return job.kind === 'message' || job.kind === 'broadcast' || job.kind === 'teamsBatch'
    ? (job.to as { tenantId?: string }).tenantId
    : undefined;
}

function tenantProblems(job: ParsedJob, tenants: readonly string[] | undefined): Problem[] {
  if (tenants === undefined) return [];
  const tenantId = namedTenant(job);
  if (tenantId !== undefined && !tenants.includes(tenantId))
    return [{ path: 'to.tenantId', message: 'is not a tenant this caller may reach' }];
  if (job.kind === 'broadcast' && job.to.kind === 'allInstalled' && tenantId === undefined) {
    return [{ path: 'to.tenantId', message: 'is required: this caller may only reach some tenants' }];
  }
  return [];
}

/** Admits one job, or throws JobValidationError listing every problem. */
export function admitJob(item: unknown, options: AdmitOptions): AdmittedJob {
  if (!isObject(item)) throw new JobValidationError([{ path: '(job)', message: 'must be a JSON object' }]);
  const body: Record<string, unknown> = { ...item };
  // `"id": null` is what many flow designers write for "no id": it means the same as no id.
  if (body.id === undefined || body.id === null) body.id = options.newId();
  const problems: Problem[] = [];
  let parsed: ParsedJob | undefined;
  try {
    parsed = parseJob(body, String(body.id));
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    problems.push(...err.problems);
  }
  if (typeof body.id === 'string' && isReservedJobId(body.id))
    problems.push({ path: 'id', message: 'is reserved for teams-courier\'s own jobs ("welcome-…", "…~<n>")' });
  if (parsed === undefined) throw new JobValidationError(problems);

  const { submitter } = options;
  const id = parsed.id;
  const jobId = toInternalId(id, submitter);
  const job: ParsedJob =
    parsed.kind === 'update' || parsed.kind === 'delete'
      ? { ...parsed, id: jobId, target: toInternalId(parsed.target, submitter) }
      : { ...parsed, id: jobId };
  problems.push(...tenantProblems(job, submitter?.tenants));

  const delayMs = Math.max(0, (job.notBefore?.getTime() ?? 0) - options.now.getTime());
  if (delayMs > MAX_SCHEDULE_MS)
    problems.push({ path: 'notBefore', message: 'is more than 7 days ahead; a queue cannot hold a message that long' });

  const envelope: Envelope = {
    jobId,
    deferrals: 0,
    ...(options.parentId === undefined ? {} : { parentId: options.parentId }),
    ...(submitter === undefined ? {} : { caller: submitter.name }),
    ...(options.recorded === true ? { recorded: true } : {}),
  };
  const queueText = toEnvelope(body, envelope);
  const bytes = queueMessageBytes(queueText);
  if (bytes > MAX_ENVELOPED_JOB_BYTES) {
    problems.push({
      path: '(job)',
      message: `is ${bytes} bytes as a queue message; a job must fit in ${MAX_ENVELOPED_JOB_BYTES} bytes (a queue message is 64 KiB, less room for retries)`,
    });
  }
  if (problems.length > 0) throw new JobValidationError(problems);
  return { id, job, body, envelope, queueText, delayMs };
}

export interface AdmitManyOptions extends Omit<AdmitOptions, 'parentId'> {
  /** At most this many jobs in one submission. */
  readonly maxJobs?: number;
  /** How problems with the submission as a whole are labelled: `(body)` for HTTP, `(file)` for the CLI. */
  readonly rootPath?: string;
  /** The batch id, for an array of jobs. */
  readonly batchId?: string;
}

/**
 * One job or an array of jobs. Every job is checked before anything is queued; problems are
 * prefixed with the job's index (`[3].to`) in an array.
 */
export function admitJobs(
  input: unknown,
  options: AdmitManyOptions,
): { jobs: AdmittedJob[] } | { problems: Problem[] } {
  const root = options.rootPath ?? '(body)';
  const isArray = Array.isArray(input);
  const items = isArray ? (input as unknown[]) : [input];
  if (isArray && items.length === 0) return { problems: [{ path: root, message: 'is an empty array' }] };
  if (options.maxJobs !== undefined && items.length > options.maxJobs)
    return { problems: [{ path: root, message: `has ${items.length} jobs; at most ${options.maxJobs} per request` }] };

  const problems: Problem[] = [];
  const jobs: AdmittedJob[] = [];
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const at = (path: string): string => (!isArray ? path : path === '(job)' ? `[${i}]` : `[${i}].${path}`);
    const ownId = isObject(item) && typeof item.id === 'string' ? item.id : undefined;
    if (ownId !== undefined) {
      if (seen.has(ownId))
        problems.push({
          path: at('id'),
          message: `"${ownId}" appears more than once in this ${root === '(body)' ? 'request' : 'file'}`,
        });
      seen.add(ownId);
    }
    try {
      jobs.push(
        admitJob(item, {
          ...options,
          ...(isArray && options.batchId !== undefined ? { parentId: options.batchId } : {}),
        }),
      );
    } catch (err) {
      if (!(err instanceof JobValidationError)) throw err;
      for (const p of err.problems) problems.push({ path: at(p.path), message: p.message });
    }
  });
  return problems.length > 0 ? { problems } : { jobs };
}
