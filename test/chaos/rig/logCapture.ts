import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Every line logged by the app and the stubs, in one file; the tail is kept for failure messages. */
export class LogCapture {
  readonly file: string;
  lines = 0;
  #fd: number | undefined;
  readonly #tail: string[] = [];
  readonly #partial = new Map<string, string>();

  constructor(file: string) {
    this.file = file;
    this.#fd = openSync(file, 'a');
  }

  /** A chunk of a stream; complete lines are written, a trailing partial line waits for the rest. */
  write(source: string, chunk: string): void {
    const text = (this.#partial.get(source) ?? '') + chunk;
    const parts = text.split('\n');
    this.#partial.set(source, parts.pop() ?? '');
    for (const line of parts) this.line(line);
  }

  line(line: string): void {
    if (this.#fd === undefined) return;
    writeSync(this.#fd, `${line}\n`);
    this.lines += 1;
    this.#tail.push(line);
    if (this.#tail.length > 80) this.#tail.shift();
  }

  tail(n = 40): string {
    return this.#tail.slice(-n).join('\n');
  }

  flush(): void {
    for (const rest of this.#partial.values()) if (rest !== '') this.line(rest);
    this.#partial.clear();
  }

  close(): void {
    this.flush();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Counts lines containing each needle (and matching each pattern); returns the hits with one example line each. */
  async search(
    needles: ReadonlyMap<string, string>,
    patterns: ReadonlyMap<string, RegExp>,
  ): Promise<{ name: string; lines: number; example: string }[]> {
    this.flush();
    const hits = new Map<string, { lines: number; example: string }>();
    const input = createReadStream(this.file, { encoding: 'utf8' });
    const reader = createInterface({ input, crlfDelay: Infinity });
    for await (const line of reader) {
      for (const [name, needle] of needles) {
        if (needle !== '' && line.includes(needle)) {
          const hit = hits.get(name) ?? { lines: 0, example: line.slice(0, 300) };
          hit.lines += 1;
          hits.set(name, hit);
        }
      }
      for (const [name, pattern] of patterns) {
        pattern.lastIndex = 0;
        if (pattern.test(line)) {
          const hit = hits.get(name) ?? { lines: 0, example: line.slice(0, 300) };
          hit.lines += 1;
          hits.set(name, hit);
        }
      }
    }
    return [...hits].map(([name, hit]) => ({ name, ...hit }));
  }
}
