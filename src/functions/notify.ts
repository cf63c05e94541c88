/**
 * POST /api/notify, GET /api/notify/{id} and DELETE /api/notify/{id} (cancel a batch job): the HTTP
 * front door for flows (Logic Apps' HTTP action, Power Automate, scripts). One function for every route, so a key scoped to it works for
 * submitting and polling. Guarded by function keys, or, with FLOW_AUTH_AUDIENCE, anonymous at the
 * host and checked by the app against Entra ID (docs/flows.md, trust model).
 * Thin: translates the trigger to a call into src/flows and back.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { handleNotify } from '../flows/notifyApi';
import { invocationLogger } from '../log';
import { getFlowAuthLevel, getNotifyDeps } from '../runtime';
import { withConfig } from '../startup';

app.http('notify', {
  route: 'notify/{id?}',
  methods: ['GET', 'POST', 'DELETE'],
  authLevel: getFlowAuthLevel(),
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = invocationLogger(context);
    return withConfig(log, async () => handleNotify(request, request.params.id, getNotifyDeps(log)));
  },
});
