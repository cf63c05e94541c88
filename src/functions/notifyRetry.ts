/**
 * POST /api/notify/{id}/retry: a flow puts one of its failed jobs back on the queue, under the same
 * id, once the cause is fixed (docs/flows.md, docs/operate.md). Guarded like /api/notify: function
 * keys, or, with FLOW_AUTH_AUDIENCE, anonymous at the host and checked by the app (trust model).
 * Thin: translates the trigger to a call into src/flows and back.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { handleNotifyRetry } from '../flows/retryApi';
import { invocationLogger } from '../log';
import { getFlowAuthLevel, getRetryDeps } from '../runtime';
import { withConfig } from '../startup';

app.http('notifyRetry', {
  route: 'notify/{id}/retry',
  // Every method is routed here so that anything but POST gets a 405 with Allow, not a 404.
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  authLevel: getFlowAuthLevel(),
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = invocationLogger(context);
    return withConfig(log, async () => handleNotifyRetry(request, request.params.id, getRetryDeps(log)));
  },
});
