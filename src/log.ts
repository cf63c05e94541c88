/**
 * Structured logs: one JSON object per line, with the ids that matter (invocation id, job id,
 * conversation id, activity id). In Azure the line goes through `context.log`, so Application
 * Insights records it with the invocation; locally it is printed by the host.
 *
 * A safety net removes anything shaped like a JWT or a storage/account key from every line.
 * Callers must still never pass secrets: this catches mistakes, it is not a licence.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type LogSink = (level: LogLevel, line: string) => void;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/**
 * The redaction patterns. Log lines carry caller-controlled text (job fields, activity text), so
 * every pattern must run in linear time on any input: 32 K characters of `eyJ` took 0.6 s with the
 * old `eyJ[…]{5,}\.[…]{5,}\.[…]*` (each `eyJ` started a scan to the end of the run, which then
 * failed: quadratic). Each pattern is now a fixed-length literal prefix followed by ONE greedy
 * character-class quantifier and nothing else. Such a pattern can only fail within its prefix or
 * within the quantifier's minimum count (a bounded amount of work per start position), and once
 * that is met it cannot fail, so no text is scanned twice: the work is linear in the line length.
 * test/unit/log.test.ts checks this shape on every pattern. What the class cannot express (the
 * structure of a JWT) is checked by `replace` on the matched run, in one pass.
 */
export const SECRET_PATTERNS: readonly {
  readonly pattern: RegExp;
  readonly replace: (match: string, ...groups: string[]) => string;
}[] = [
  // A run that starts with `eyJ` (base64url of `{"`) over the JWT alphabet plus dots.
  { pattern: /eyJ[A-Za-z0-9_.-]*/g, replace: (run) => redactJwtsInRun(run) },
  {
    pattern: /(AccountKey|SharedAccessSignature|sig|client_secret|password)=[^;&"\s]+/gi,
    replace: (_match, name) => `${name}=[redacted]`,
  },
  // One to 16 spaces: an Authorization header has one; the bound keeps the pattern's shape.
  { pattern: /(Bearer\s{1,16})[A-Za-z0-9._~+/=-]{8,}/g, replace: (_match, prefix) => `${prefix}[redacted]` },
];

/**
 * Redacts JWTs in a run of `[A-Za-z0-9_.-]` that starts with `eyJ`, exactly where the original
 * pattern `eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*` matched, in linear time: a JWT
 * starts at the first `eyJ` of a dot-separated segment that leaves at least 5 characters after it,
 * continues over a next segment of at least 5 characters, and ends with the segment after that.
 * (A later `eyJ` in the same segment leaves fewer characters, so only the first can match.)
 */
function redactJwtsInRun(run: string): string {
  const segments = run.split('.');
  const out: string[] = [];
  for (let i = 0; i < segments.length;) {
    const segment = segments[i]!;
    const at = segment.indexOf('eyJ');
    if (at >= 0 && segment.length - at - 3 >= 5 && i + 2 < segments.length && segments[i + 1]!.length >= 5) {
      out.push(`${segment.slice(0, at)}[redacted-jwt]`);
      i += 3;
    } else {
      out.push(segment);
      i += 1;
    }
  }
  return out.join('.');
}

export function redact(text: string): string {
  let out = text;
  for (const { pattern, replace } of SECRET_PATTERNS) out = out.replace(pattern, replace);
  return out;
}

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return value;
}

export function createLogger(sink: LogSink, base: LogFields = {}): Logger {
  const emit = (level: LogLevel, event: string, fields?: LogFields): void => {
    const record: LogFields = { level, event, ...base };
    if (fields !== undefined)
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) record[k] = serialise(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ level, event, ...base, note: 'fields not serialisable' });
    }
    sink(level, redact(line));
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    child: (fields) => createLogger(sink, { ...base, ...fields }),
  };
}

/** The logger for one Functions invocation. */
export function invocationLogger(context: {
  invocationId: string;
  functionName: string;
  debug(...a: unknown[]): void;
  info(...a: unknown[]): void;
  warn(...a: unknown[]): void;
  error(...a: unknown[]): void;
}): Logger {
  return createLogger((level, line) => context[level](line), {
    invocationId: context.invocationId,
    functionName: context.functionName,
  });
}
