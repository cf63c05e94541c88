/**
 * POST /api/notify and GET /api/notify/{id}: the HTTP front door for flows (Logic Apps' HTTP
 * action, Power Automate, scripts). Function-key auth: send the key as `x-functions-key` or
 * `?code=`; docs/flows.md describes Entra authentication (App Service Authentication) instead.
 * Thin: translates the trigger to a call into src/flows and back.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { handleNotifyGet, handleNotifyPost } from '../flows/notifyApi';
import { invocationLogger } from '../log';
import { getNotifyDeps } from '../runtime';
import { withConfig } from '../startup';

app.http('notify', {
  route: 'notify',
  methods: ['POST'],
  authLevel: 'function',
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = invocationLogger(context);
    return withConfig(log, async () => handleNotifyPost(request, getNotifyDeps(log)));
  },
});

app.http('notifyStatus', {
  route: 'notify/{id}',
  methods: ['GET'],
  authLevel: 'function',
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = invocationLogger(context);
    return withConfig(log, async () => handleNotifyGet(request.params.id, getNotifyDeps(log)));
  },
});
