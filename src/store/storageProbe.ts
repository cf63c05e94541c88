/**
 * The health check's storage request: one point read of a row that never exists, in `deliveries`.
 * A 404 means storage answered and let the app in; a refusal (403), a timeout or a 5xx means the app
 * cannot work. The cheapest request that proves both.
 */
import { guardStorage, statusOf, type TableClient } from './tableClients';

/** No job id escapes to `%health` (the key escaping only writes `%` before hex digits or `u`). */
const PROBE_PARTITION = '%health';
const PROBE_ROW = 'probe';

export async function probeTable(table: TableClient): Promise<void> {
  try {
    await guardStorage('getEntity', () => table.getEntity(PROBE_PARTITION, PROBE_ROW));
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}
