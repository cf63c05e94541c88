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

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [/(AccountKey|SharedAccessSignature|sig|client_secret|password)=([^;&"\s]+)/gi, '$1=[redacted]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, '$1[redacted]'],
];

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
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
    if (fields !== undefined) for (const [k, v] of Object.entries(fields)) if (v !== undefined) record[k] = serialise(v);
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
  return createLogger((level, line) => context[level](line), { invocationId: context.invocationId, functionName: context.functionName });
}
