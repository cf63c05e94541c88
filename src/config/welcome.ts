/** WELCOME_MESSAGE and WELCOME_CARD: what the bot sends to a conversation right after it is installed. */
import type { Problem } from '../errors';
import { read, type Env } from './parsers';

export interface WelcomeConfig {
  readonly text?: string;
  readonly adaptiveCard?: Record<string, unknown>;
}

export function loadWelcome(env: Env, problems: Problem[]): WelcomeConfig | undefined {
  const text = read(env, 'WELCOME_MESSAGE');
  const cardRaw = read(env, 'WELCOME_CARD');
  let adaptiveCard: Record<string, unknown> | undefined;
  if (cardRaw !== undefined) {
    try {
      const parsed = JSON.parse(cardRaw) as unknown;
      if (
        typeof parsed === 'object' &&
        parsed !== null &&
        !Array.isArray(parsed) &&
        (parsed as { type?: unknown }).type === 'AdaptiveCard'
      ) {
        adaptiveCard = parsed as Record<string, unknown>;
      } else {
        problems.push({
          path: 'WELCOME_CARD',
          message: 'must be an Adaptive Card JSON object ({"type":"AdaptiveCard", ...})',
        });
      }
    } catch {
      problems.push({ path: 'WELCOME_CARD', message: 'is not valid JSON' });
    }
  }
  if (text === undefined && adaptiveCard === undefined) return undefined;
  return { ...(text === undefined ? {} : { text }), ...(adaptiveCard === undefined ? {} : { adaptiveCard }) };
}
