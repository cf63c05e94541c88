/**
 * Typed errors with stable codes. Callers branch on `err.code`, never on message text.
 * Messages never contain secrets or tokens: they are written to logs and, for 4xx, to clients.
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_ENDORSEMENT'
  | 'AUTH_FORBIDDEN'
  | 'AUTH_METADATA_UNAVAILABLE'
  | 'BAD_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'STORAGE_UNAVAILABLE'
  | 'JOB_INVALID'
  | 'TARGET_NOT_READY'
  | 'TARGET_REFUSED'
  | 'UNTRUSTED_SERVICE_URL'
  | 'INVALID_CONNECTOR_PATH'
  | 'CONNECTOR_NETWORK'
  | 'TOKEN_UNAVAILABLE';

export class CourierError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem with one setting or one field: `path` names it, `message` says what is wrong. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

/** Configuration is wrong. The message names every bad setting at once. */
export class ConfigError extends CourierError {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    super('CONFIG_INVALID', `Invalid configuration: ${formatProblems(problems)}`);
    this.problems = problems;
  }
}

/** An inbound request that is not acceptable as sent (400 / 413). */
export class BadRequestError extends CourierError {
  readonly status: 400 | 413;

  constructor(message: string, status: 400 | 413 = 400) {
    super(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', message);
    this.status = status;
  }
}

/**
 * Inbound authentication failed. `reason` is for the log only (it never contains the token);
 * clients get a short generic body.
 */
export class AuthError extends CourierError {
  readonly status: 401 | 403;

  constructor(
    code: 'AUTH_MISSING' | 'AUTH_INVALID' | 'AUTH_ENDORSEMENT' | 'AUTH_FORBIDDEN',
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(code, reason, options);
    this.status = code === 'AUTH_ENDORSEMENT' || code === 'AUTH_FORBIDDEN' ? 403 : 401;
  }
}

/** A queue job that can never be sent as written. Never retried. */
export class JobValidationError extends CourierError {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    super('JOB_INVALID', `Invalid job: ${formatProblems(problems)}`);
    this.problems = problems;
  }
}

/** Table Storage could not be reached or answered with a server error: retry later. */
export class StorageUnavailableError extends CourierError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORAGE_UNAVAILABLE', message, options);
  }
}
