/**
 * What the CLI writes to and reads from, injectable so tests run it in-process: results go to
 * stdout, progress and messages to stderr. A progress line rewrites itself on a terminal and is
 * printed as (throttled) lines otherwise, so logs of scripted runs stay readable.
 */

export interface CliStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliIo {
  readonly stdout: CliStream;
  readonly stderr: CliStream;
  /** The environment; wins over local.settings.json `Values`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where local.settings.json and relative file paths are looked up. */
  readonly cwd: string;
  /** Test hooks. */
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Poll interval of --wait / --watch; default 1000 ms. */
  readonly pollIntervalMs?: number;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A failure already explained to the user; `message` goes to stderr. Exit code 1 unless given. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  readonly exitCode: number;

  constructor(message: string, exitCode = EXIT_FAILED) {
    super(message);
    this.exitCode = exitCode;
  }
}

export function out(io: CliIo, line = ''): void {
  io.stdout.write(`${line}\n`);
}

export function err(io: CliIo, line: string): void {
  io.stderr.write(`${line}\n`);
}

/** One progress line on stderr. */
export class Progress {
  readonly #stream: CliStream;
  readonly #now: () => number;
  readonly #minIntervalMs: number;
  #last = '';
  #lastAt = Number.NEGATIVE_INFINITY;
  #pending: string | undefined;
  #onScreen = false;

  constructor(stream: CliStream, now: () => number, minIntervalMs = 1000) {
    this.#stream = stream;
    this.#now = now;
    this.#minIntervalMs = minIntervalMs;
  }

  /** `live` (an elapsed time, say) is shown on a terminal only, so logs get a line per change. */
  update(text: string, live = ''): void {
    if (this.#stream.isTTY) {
      // At most ten redraws a second (queueing a big file updates far more often).
      const now = this.#now();
      if (now - this.#lastAt < 100) return;
      this.#lastAt = now;
      const width = this.#stream.columns ?? 0;
      const full = `${text}${live}`;
      const shown = width > 1 && full.length >= width ? `${full.slice(0, width - 2)}…` : full;
      this.#stream.write(`\r\x1b[2K${shown}`);
      this.#onScreen = true;
      this.#last = text;
      return;
    }
    if (text === this.#last) return;
    const at = this.#now();
    if (at - this.#lastAt < this.#minIntervalMs) {
      this.#pending = text;
      return;
    }
    this.#print(text, at);
  }

  /** Ends the progress line; `final` (if any) stays visible. */
  done(final?: string): void {
    if (this.#stream.isTTY) {
      if (this.#onScreen) this.#stream.write('\r\x1b[2K');
      this.#onScreen = false;
      if (final !== undefined) this.#stream.write(`${final}\n`);
      return;
    }
    const last = final ?? this.#pending;
    if (last !== undefined && last !== this.#last) this.#print(last, this.#now());
    this.#pending = undefined;
  }

  #print(text: string, at: number): void {
    this.#stream.write(`${text}\n`);
    this.#last = text;
    this.#lastAt = at;
    this.#pending = undefined;
  }
}

/**
 * Removes secrets from text shown to the user: the given setting values (the storage connection
 * string), account keys, SAS signatures and bearer tokens.
 */
export function createRedactor(secrets: readonly string[]): (text: string) => string {
  const literal = secrets.filter((s) => s.length >= 8);
  return (text) => {
    let result = text;
    for (const secret of literal) result = result.split(secret).join('***');
    return result
      .replace(/(AccountKey|SharedAccessSignature)=[^;\s"']+/gi, '$1=***')
      .replace(/([?&]sig=)[^&\s"']+/gi, '$1***')
      .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, '$1***');
  };
}
