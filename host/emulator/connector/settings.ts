/** The Connector stub's behaviour switches, changeable at runtime with `configure()`. */
import type { ConnectorAuthOptions } from './auth';
import type { ConnectorRateLimitOptions } from './rateLimits';

export interface ConnectorSettings {
  /** `false` accepts any (or no) token. */
  auth: ConnectorAuthOptions | false;
  /** `false` turns rate limiting off. Default on with Teams' values. */
  rateLimit: ConnectorRateLimitOptions | false;
  /** Writes to a conversation the stub has never seen: `accept` (default, auto-register) or `reject` (404 ConversationNotFound). */
  unknownConversations: 'accept' | 'reject';
  /** Update/delete/reply of an activity id the stub did not issue: 404 ActivityNotFoundInConversation when true (default). */
  strictActivities: boolean;
  /**
   * 413 MessageSizeTooBig above this many bytes, counting the activity JSON as UTF-16 (§5: "entire
   * message payload encoded as UTF-16"); default 102400; `null` disables.
   */
  maxMessageBytes: number | null;
}

/** The settings with every default filled in. */
export function toConnectorSettings(options: Partial<ConnectorSettings>): ConnectorSettings {
  return {
    auth: options.auth ?? false,
    rateLimit: options.rateLimit ?? {},
    unknownConversations: options.unknownConversations ?? 'accept',
    strictActivities: options.strictActivities ?? true,
    maxMessageBytes: options.maxMessageBytes === undefined ? 100 * 1024 : options.maxMessageBytes,
  };
}
