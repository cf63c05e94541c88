/**
 * Bot Connector REST client (bot-connector.md §6) over one keep-alive undici Agent with explicit
 * timeouts. The serviceUrl is checked against the trusted hosts BEFORE the bot's token is attached:
 * the token never leaves for a host we do not trust, whatever a stored reference says.
 */
import type { Dispatcher } from 'undici';
import { CourierError } from '../errors';
import type { ConnectorAnswer } from '../core/deliveryDecision';
import { classifyNetworkError, clientDispatcher, requestWithToken } from './answerReader';
import { ConnectorNetworkError } from './networkError';

export { ConnectorNetworkError };

export interface TrustPolicy {
  /** Hosts trusted over https on the default port (the cloud's Bot Connector hosts). */
  readonly trustedHosts: readonly string[];
  /** Extra origins (`https://host[:port]`) from BOT_TRUSTED_SERVICE_URLS. */
  readonly trustedOrigins: readonly string[];
}

/** Throws UNTRUSTED_SERVICE_URL unless `serviceUrl` is https on a trusted host or origin. */
export function assertTrustedServiceUrl(serviceUrl: string, policy: TrustPolicy): URL {
  let url: URL;
  try {
    url = new URL(serviceUrl);
  } catch {
    throw new CourierError('UNTRUSTED_SERVICE_URL', 'serviceUrl is not a valid URL');
  }
  const trusted =
    url.protocol === 'https:' &&
    url.username === '' &&
    url.password === '' &&
    ((url.port === '' && policy.trustedHosts.includes(url.hostname.toLowerCase())) ||
      policy.trustedOrigins.includes(url.origin));
  if (!trusted)
    throw new CourierError(
      'UNTRUSTED_SERVICE_URL',
      `serviceUrl host "${url.host}" is not a trusted Bot Connector host`,
    );
  return url;
}

/**
 * `{serviceUrl}v3/conversations/{id}/...` with every path segment encoded. URL parsing resolves
 * `.` and `..` segments (encoded as `%2e` too), so an id like `..` would address another resource:
 * such segments are refused, never sent.
 */
export function connectorUrl(serviceUrl: URL, ...segments: string[]): URL {
  const bad = segments.find((s) => s === '' || /^(\.|%2e){1,2}$/i.test(s));
  if (bad !== undefined)
    throw new CourierError('INVALID_CONNECTOR_PATH', `"${bad}" cannot be an id in a Bot Connector URL`);
  const base = serviceUrl.href.endsWith('/') ? serviceUrl.href : `${serviceUrl.href}/`;
  return new URL(`v3/${segments.map(encodeURIComponent).join('/')}`, base);
}

export interface ConnectorClientOptions {
  readonly trust: TrustPolicy;
  readonly getToken: () => Promise<string>;
  /** Connect, headers and body timeouts, each. */
  readonly timeoutMs: number;
  readonly dispatcher?: Dispatcher;
}

export interface ConnectorClient {
  sendToConversation(serviceUrl: string, conversationId: string, activity: unknown): Promise<ConnectorAnswer>;
  createConversation(serviceUrl: string, parameters: unknown): Promise<ConnectorAnswer>;
  updateActivity(
    serviceUrl: string,
    conversationId: string,
    activityId: string,
    activity: unknown,
  ): Promise<ConnectorAnswer>;
  deleteActivity(serviceUrl: string, conversationId: string, activityId: string): Promise<ConnectorAnswer>;
  close(): Promise<void>;
}

const MAX_ERROR_BODY_BYTES = 16 * 1024;

export function createConnectorClient(options: ConnectorClientOptions): ConnectorClient {
  const { dispatcher, close } = clientDispatcher(options, 64);

  async function call(
    method: 'POST' | 'PUT' | 'DELETE',
    serviceUrl: string,
    segments: string[],
    body?: unknown,
  ): Promise<ConnectorAnswer> {
    const base = assertTrustedServiceUrl(serviceUrl, options.trust);
    const url = connectorUrl(base, ...segments);
    const token = await options.getToken();
    try {
      // Non-idempotent POSTs must not be replayed by the client: the sender decides on retries.
      return await requestWithToken(url, dispatcher, {
        method,
        token,
        body,
        contentType: 'application/json; charset=utf-8',
        idempotent: false,
        maxBytes: MAX_ERROR_BODY_BYTES,
      });
    } catch (err) {
      throw new ConnectorNetworkError(classifyNetworkError(err), { cause: err });
    }
  }

  return {
    sendToConversation: (serviceUrl, conversationId, activity) =>
      call('POST', serviceUrl, ['conversations', conversationId, 'activities'], activity),
    createConversation: (serviceUrl, parameters) => call('POST', serviceUrl, ['conversations'], parameters),
    updateActivity: (serviceUrl, conversationId, activityId, activity) =>
      call('PUT', serviceUrl, ['conversations', conversationId, 'activities', activityId], activity),
    deleteActivity: (serviceUrl, conversationId, activityId) =>
      call('DELETE', serviceUrl, ['conversations', conversationId, 'activities', activityId]),
    close,
  };
}
