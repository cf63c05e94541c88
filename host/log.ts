/**
 * One-line, greppable log records for the local host.
 *
 *   [host] 2025-01-01T00:00:00.000Z info http.request method=POST path=/api/messages status=200 durationMs=12
 *   [func] 2025-01-01T00:00:00.000Z warning function=sendJob invocationId=9f... the message text
 *
 * Newlines inside messages are escaped so that every record stays on one line.
 */
import type { RpcLogCategory, RpcLogLevel } from './rpcTypes';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface HostLogger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A free-text line (banners, the function list), still prefixed and one line. */
  raw(text: string): void;
  /** A log record from the app (`context.log`) or from `@azure/functions` itself. */
  function(
    level: RpcLogLevel,
    category: RpcLogCategory,
    message: string,
    functionName?: string,
    invocationId?: string,
  ): void;
}

export interface LoggerOptions {
  /** Receives each finished line. Default `console.log`. */
  readonly sink?: (line: string) => void;
  /** Host records below this level are dropped; app (`user`) records are filtered the same way. Default `info`. */
  readonly minLevel?: LogLevel;
}

export function parseLogLevel(raw: string | undefined): LogLevel | undefined {
  switch (raw?.trim().toLowerCase()) {
    case 'trace':
    case 'debug':
      return 'debug';
    case 'information':
    case 'info':
      return 'info';
    case 'warning':
    case 'warn':
      return 'warning';
    case 'error':
    case 'critical':
      return 'error';
    default:
      return undefined;
  }
}

export function fromRpcLogLevel(level: RpcLogLevel): LogLevel | undefined {
  switch (level) {
    case 'trace':
    case 'debug':
      return 'debug';
    case 'information':
      return 'info';
    case 'warning':
      return 'warning';
    case 'error':
    case 'critical':
      return 'error';
    default:
      return undefined;
  }
}

export function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n');
}

function formatValue(value: string | number | boolean | null): string {
  const text = String(value);
  return text === '' || /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

export function formatFields(fields: LogFields | undefined): string {
  if (!fields) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

export function createLogger(options: LoggerOptions = {}): HostLogger {
  const sink = options.sink ?? ((line: string) => console.log(line));
  const minRank = LEVEL_RANK[options.minLevel ?? 'info'];

  const write = (prefix: string, level: LogLevel, text: string): void => {
    if (LEVEL_RANK[level] < minRank) return;
    sink(`${prefix} ${new Date().toISOString()} ${level} ${oneLine(text)}`);
  };

  return {
    debug: (event, fields) => write('[host]', 'debug', event + formatFields(fields)),
    info: (event, fields) => write('[host]', 'info', event + formatFields(fields)),
    warn: (event, fields) => write('[host]', 'warning', event + formatFields(fields)),
    error: (event, fields) => write('[host]', 'error', event + formatFields(fields)),
    raw: (text) => sink(`[host] ${oneLine(text)}`),
    function: (rpcLevel, category, message, functionName, invocationId) => {
      let level = fromRpcLogLevel(rpcLevel);
      if (level === undefined || category === 'customMetric') return;
      // The library's own records ("system") are mostly debug chatter; keep its warnings and errors.
      if (category === 'system' && level === 'info') level = 'debug';
      const head = formatFields({
        category: category === 'system' ? 'system' : undefined,
        function: functionName,
        invocationId,
      }).trimStart();
      write('[func]', level, head ? `${head} ${message}` : message);
    },
  };
}
