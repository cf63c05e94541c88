/**
 * POST /api/messages: the bot's messaging endpoint (the Azure Bot points here).
 * Thin: translates the trigger to a call into src/inbound and back.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { handleMessages } from '../inbound/handleMessages';
import { invocationLogger } from '../log';
import { getChannelTokenVerifier, getConversationStore, getWelcome } from '../runtime';
import { withConfig } from '../startup';

app.http('messages', {
  route: 'messages',
  // Every method is routed here so that anything but POST gets a 405 with Allow, not a 404.
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'],
  authLevel: 'anonymous', // Authentication is the Bot Framework JWT, checked on every request.
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = invocationLogger(context);
    return withConfig(log, async () => {
      const welcome = getWelcome();
      return handleMessages(request, {
        verifier: getChannelTokenVerifier(),
        store: getConversationStore(),
        now: () => new Date(),
        log,
        ...(welcome === undefined ? {} : { welcome }),
      });
    });
  },
});
