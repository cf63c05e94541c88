/**
 * Queue trigger: one outbound job per message (queue `OUTBOUND_QUEUE`, default outbound-messages).
 * Thin: trigger metadata in, a call into src/outbound, nothing out. A thrown error (storage down)
 * lets the host retry the message and, after maxDequeueCount, move it to the poison queue.
 */
import { app, type InvocationContext } from '@azure/functions';
import { invocationLogger } from '../log';
import { processJobMessage } from '../outbound/processJob';
import { getSenderDeps } from '../runtime';
import { withConfig } from '../startup';

app.storageQueue('sendJob', {
  // %OUTBOUND_QUEUE% is resolved by the Functions host from app settings; the default lives in
  // local.settings / the deployment, so the binding and the app always agree.
  queueName: '%OUTBOUND_QUEUE%',
  connection: 'AzureWebJobsStorage',
  handler: async (message: unknown, context: InvocationContext): Promise<void> => {
    const log = invocationLogger(context);
    const meta = context.triggerMetadata ?? {};
    // When the message was queued, for the time from enqueue to sent (teams-courier stats).
    const insertedAt =
      typeof meta.insertionTime === 'string' || meta.insertionTime instanceof Date
        ? new Date(meta.insertionTime)
        : undefined;
    const queuedAt = insertedAt === undefined || Number.isNaN(insertedAt.getTime()) ? {} : { queuedAt: insertedAt };
    const result = await withConfig(log, async () => {
      const outcome = await processJobMessage(
        message,
        { messageId: String(meta.id ?? context.invocationId), dequeueCount: Number(meta.dequeueCount ?? 1) },
        getSenderDeps(log, queuedAt),
      );
      return { status: 200, outcome };
    });
    if (result.status !== 200) throw new Error('teams-courier is not configured; see the config.invalid log line');
  },
});
