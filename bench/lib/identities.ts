/** The benchmark's one bot, its home tenant and the customer tenant it sends to (all made up). */
export const BENCH_APP_ID = '00000000-0000-4000-8000-0000000be7c0';
export const BENCH_BOT_TENANT = '00000000-0000-4000-8000-0000000be7e0';
export const BENCH_USER_TENANT = '72f988bf-0000-4000-8000-0000000be7de';
export const BENCH_APP_SECRET = 'bench-only-secret-value';
export const BENCH_BOT_NAME = 'Courier (bench)';

/** The personal chat id of bench user `i` in a run (`prefix` keeps sections apart). */
export function benchConversationId(prefix: string, i: number): string {
  return `a:1bench-${prefix}-${String(i).padStart(6, '0')}`;
}

export function benchUserId(prefix: string, i: number): string {
  return `29:1bench-user-${prefix}-${String(i).padStart(6, '0')}`;
}

export function benchAadObjectId(i: number, salt: number): string {
  return `00000000-0000-4000-8${String(salt % 1000).padStart(3, '0')}-${String(i).padStart(12, '0')}`;
}
