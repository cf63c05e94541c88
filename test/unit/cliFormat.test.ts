import { describe, expect, it } from 'vitest';
import { countsLine, renderStatus } from '../../src/cli/format';

describe('teams-courier status: what Graph installation adds', () => {
  it('a job sent after installing the app says so; one that found it installed says already', () => {
    const view = (installed?: string) =>
      renderStatus({
        done: true,
        body: { id: 'j1', kind: 'message', status: 'sent', attempts: 1, ...(installed ? { installed } : {}) },
      }).join('\n');
    expect(view('new')).toMatch(/^app {10}installed for the user by teams-courier \(Graph\)$/m);
    expect(view('already')).toMatch(/^app {10}already installed for the user$/m);
    expect(view()).not.toMatch(/^app /m);
  });

  it("a broadcast's counts name the users the app was installed for, and only when there were any", () => {
    const body = { id: 'b1', kind: 'broadcast', status: 'sent', total: 3, sent: 3, failed: 0, pending: 0 };
    expect(countsLine({ ...body, installedByUs: 2 })).toBe('sent 3/3, failed 0, pending 0, app installed for 2');
    expect(countsLine(body)).toBe('sent 3/3, failed 0, pending 0');
  });
});
