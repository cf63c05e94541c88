/**
 * GET /api/health: 200 when the configuration loads and storage answers, 503 otherwise, with the
 * same bare body either way (docs/operate.md). Anonymous: probes carry no key, and the answer tells
 * an attacker nothing. Thin: translates the trigger to a call into src/flows and back.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { handleHealth } from '../flows/health';
import { invocationLogger } from '../log';
import { getHealthCheck } from '../runtime';

app.http('health', {
  route: 'health',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  // No withConfig: a configuration that does not load is an answer here (503), not an error.
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    handleHealth(request, getHealthCheck(), invocationLogger(context)),
});
