/** The suite's figures as Markdown tables: printed as they come, and kept for the run's report (docs/reliability.md). */
import { SEED, SIZE } from './plan';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** A Markdown table, printed as is and copied into docs/reliability.md. */
export function markdownTable(title: string, rows: readonly (readonly [string, string | number])[]): string {
  const width = Math.max(6, ...rows.map(([k]) => k.length));
  const lines = [`#### ${title}`, '', `| ${'What'.padEnd(width)} | Value |`, `|${'-'.repeat(width + 2)}|-------|`];
  for (const [k, v] of rows) lines.push(`| ${k.padEnd(width)} | ${v} |`);
  return lines.join('\n');
}

export function printTable(title: string, rows: readonly (readonly [string, string | number])[]): void {
  const table = markdownTable(`${title} (CHAOS_SIZE=${SIZE}, CHAOS_SEED=${SEED})`, rows);
  console.log(`\n${table}\n`);
  REPORT.push(table);
}

/** Every table printed so far, in order (written to the run's folder at the end). */
export const REPORT: string[] = [];
