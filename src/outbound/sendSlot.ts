/**
 * A send slot from the shared budget (sendBudget.ts), for a message (deliver.ts) and for a batch
 * request (batchPost.ts) alike.
 */
import { StorageUnavailableError } from '../errors';
import type { GrantedSlot } from '../core/rateLimiter';
import type { Logger } from '../log';
import { MAX_INLINE_WAIT_MS, type SenderDeps } from './senderTypes';

/** How soon to look again when the shared budget's roster could not be read. */
const BUDGET_UNAVAILABLE_RETRY_MS = 5_000;

/**
 * Takes a send slot, waiting in process up to about MAX_INLINE_WAIT_MS; returns 0 or the wait still
 * needed. A slot granted is described in `slot`, for `deps.budget.settle` once Teams answered.
 */
export async function acquireSlot(
  deps: SenderDeps,
  scope: string,
  tenantId: string,
  log: Logger,
  slot?: GrantedSlot,
): Promise<number> {
  const deadline = deps.now().getTime() + MAX_INLINE_WAIT_MS;
  const acquire = async (): Promise<number> => {
    try {
      return await deps.budget.acquire(scope, tenantId, slot);
    } catch (err) {
      // Without the roster no instance may assume its share: the caller gives its claim back and comes back.
      if (!(err instanceof StorageUnavailableError)) throw err;
      log.warn('budget.unavailable', { reason: err.message });
      return BUDGET_UNAVAILABLE_RETRY_MS;
    }
  };
  let wait = await acquire();
  // Bounded by time; the count only guards against a clock that does not move.
  for (let i = 0; wait > 0 && i < 1_000 && deps.now().getTime() + wait <= deadline + 50; i += 1) {
    await deps.sleep(wait);
    wait = await acquire();
  }
  return wait;
}
