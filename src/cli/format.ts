/**
 * Human-readable output: a status view (src/flows/statusView.ts) as aligned lines, one-line
 * progress for --wait / --watch, and plain text tables. Pure.
 */
import type { StatusView } from '../flows/statusView';

type Body = Record<string, unknown>;

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

export function isParentView(body: Body): boolean {
  return body.kind === 'broadcast' || body.kind === 'batch' || body.kind === 'teamsBatch';
}

/** A Teams batch job: "sent 120/250, failed 3, throttled 2, pending 125 (3 operations)". */
function batchCountsLine(body: Body): string {
  const operations = Array.isArray(body.operations) ? body.operations.length : 0;
  const n = (key: string): number => num(body[key]) ?? 0;
  const skipped = n('skipped') > 0 ? `, skipped ${n('skipped')}` : '';
  const ops = operations === 0 ? ' (no request sent yet)' : ` (${plural(operations, 'request')})`;
  return `sent ${n('sent')}/${n('total')}, failed ${n('failed')}, throttled ${n('throttled')}, pending ${n('pending')}${skipped}${ops}${body.status === 'cancelled' ? ', cancelled' : ''}`;
}

/** "sent 312/500, failed 2, pending 186" (or the counts so far while a broadcast still fans out). */
export function countsLine(body: Body): string {
  if (body.kind === 'teamsBatch') return batchCountsLine(body);
  const sent = num(body.sent) ?? 0;
  const failed = num(body.failed) ?? 0;
  const pending = num(body.pending) ?? 0;
  const total = num(body.total);
  const installed = num(body.installedByUs) ?? 0;
  const byUs = installed > 0 ? `, app installed for ${installed}` : '';
  if (total !== undefined) return `sent ${sent}/${total}, failed ${failed}, pending ${pending}${byUs}`;
  return `sent ${sent}, failed ${failed}, pending ${pending}${byUs} of ${num(body.queued) ?? 0} queued so far (fan-out continues)`;
}

function errorText(body: Body): string | undefined {
  const error = body.error as { code?: unknown; reason?: unknown } | undefined;
  if (error === undefined || error === null) return undefined;
  const code = str(error.code);
  const reason = str(error.reason);
  return [code, reason].filter(Boolean).join(': ') || undefined;
}

/** One line describing where a job is now. */
export function progressLine(view: StatusView): string {
  const body = view.body;
  const id = String(body.id);
  if (isParentView(body)) return `${id}: ${countsLine(body)}`;
  const attempts = num(body.attempts) ?? 0;
  const error = body.error as { code?: unknown } | undefined;
  switch (body.status) {
    case 'retrying':
      return `${id}: retrying (attempt ${attempts}${str(error?.code) ? `, last error ${String(error?.code)}` : ''}${str(body.nextAttemptAt) ? `, next at ${String(body.nextAttemptAt)}` : ''})`;
    case 'pending':
      if (attempts > 0) return `${id}: sending (attempt ${attempts})`;
      if (str(body.notBefore) && Date.parse(String(body.notBefore)) > Date.parse(String(body.updatedAt)))
        return `${id}: scheduled for ${String(body.notBefore)}`;
      return `${id}: pending`;
    default:
      return `${id}: ${String(body.status)}`;
  }
}

export function notYetKnownLine(id: string): string {
  return `${id}: queued; the sender has not picked it up yet`;
}

function kv(lines: string[], key: string, value: string | undefined): void {
  if (value !== undefined) lines.push(`${key.padEnd(13)}${value}`);
}

/** The whole record, for `status` and the outcome of `send --wait`. */
export function renderStatus(view: StatusView): string[] {
  const body = view.body;
  const lines: string[] = [];
  kv(lines, 'job', `${String(body.id)} (${String(body.kind)})`);
  kv(lines, 'status', String(body.status));
  if (isParentView(body)) {
    kv(lines, 'progress', countsLine(body));
    kv(lines, 'batch to', str(body.target));
    const operations = Array.isArray(body.operations) ? (body.operations as Body[]) : [];
    operations.forEach((op, i) => {
      const counts = `sent ${String(num(op.sent) ?? 0)}/${String(num(op.total) ?? 0)}, failed ${String(num(op.failed) ?? 0)}`;
      const what = [str(op.operationId) ?? '(no operation)', str(op.state) ?? str(op.status), counts, str(op.code)];
      kv(lines, i === 0 ? 'requests' : '', what.filter(Boolean).join('  '));
    });
    kv(lines, 'cancelled', str(body.cancelRequestedAt));
    kv(lines, 'next poll', str(body.nextPollAt));
  } else {
    kv(lines, 'attempts', String(num(body.attempts) ?? 0));
    kv(lines, 'conversation', str(body.conversationId));
    kv(lines, 'activity', str(body.activityId));
    kv(
      lines,
      'app',
      body.installed === 'new'
        ? 'installed for the user by teams-courier (Graph)'
        : body.installed === 'already'
          ? 'already installed for the user'
          : undefined,
    );
    kv(lines, 'part of', str(body.parentId));
  }
  kv(lines, 'error', errorText(body));
  kv(lines, 'scheduled', str(body.notBefore));
  kv(lines, 'created', str(body.createdAt));
  kv(lines, 'updated', str(body.updatedAt));
  kv(lines, 'sent', str(body.sentAt));
  kv(lines, 'failed', str(body.failedAt));
  kv(lines, 'next attempt', str(body.nextAttemptAt));
  const history = Array.isArray(body.history) ? (body.history as Body[]) : [];
  history.forEach((h, i) => {
    const parts = [
      `#${String(h.attempt ?? '?')}`,
      str(h.at),
      str(h.outcome),
      str(h.code),
      num(h.status) === undefined ? undefined : `HTTP ${String(h.status)}`,
    ];
    kv(lines, i === 0 ? 'history' : '', parts.filter(Boolean).join(' '));
  });
  if (!view.done && view.retryAfterSeconds !== undefined)
    kv(lines, 'look again', `in about ${view.retryAfterSeconds} s (or use --watch)`);
  return lines;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
