/**
 * A Bot Connector request that failed below HTTP (timeout, reset, refused). Its own module, free of
 * undici, so the sender can recognise it without loading the HTTP client at start-up.
 */
import type { ConnectorFailure } from '../core/deliveryDecision';
import { CourierError } from '../errors';

export class ConnectorNetworkError extends CourierError {
  readonly failure: ConnectorFailure;
  constructor(failure: ConnectorFailure, options?: { cause?: unknown }) {
    super('CONNECTOR_NETWORK', failure.message, options);
    this.failure = failure;
  }
}
