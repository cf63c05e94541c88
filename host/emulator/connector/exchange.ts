/**
 * One request and its answer: JSON with a correlation id, a canned Teams error, a 400 BadArgument,
 * or no answer at all (the connection dropped, before or after the message was accepted). Every way
 * out finishes the request's record.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TEAMS_ERRORS, type TeamsErrorName } from '../faults';
import { sendJson } from '../localServer';
import type { ConnectorRequestRecord, RequestRecorder } from './recorder';

export class Exchange {
  readonly record: ConnectorRequestRecord;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #recorder: RequestRecorder;
  #dropAfterAccept = false;

  constructor(req: IncomingMessage, res: ServerResponse, record: ConnectorRequestRecord, recorder: RequestRecorder) {
    this.#req = req;
    this.#res = res;
    this.record = record;
    this.#recorder = recorder;
  }

  /** The next answer is recorded, then the connection is destroyed instead of sending it (§4's ambiguous window). */
  dropAfterAccept(): void {
    this.#dropAfterAccept = true;
  }

  respond(status: number, body: unknown, headers: Record<string, string> = {}): void {
    const record = this.record;
    const allHeaders = { 'x-correlating-operationid': randomUUID(), ...headers };
    record.status = status;
    record.response = body;
    record.responseHeaders = allHeaders;
    if (this.#dropAfterAccept) {
      // The ambiguous window (§4): the message was accepted but the client never hears back.
      record.status = null;
      record.fault = 'drop after accept';
      this.#req.socket.destroy();
      this.#recorder.finish(record, 'droppedAfterAccept');
      return;
    }
    sendJson(this.#res, status, body, allHeaders);
    this.#recorder.finish(record, 'responded');
  }

  respondError(name: TeamsErrorName, headers: Record<string, string> = {}): void {
    const canned = TEAMS_ERRORS[name];
    this.respond(canned.status, canned.body, headers);
  }

  badArgument(message: string): void {
    this.respond(400, { error: { code: 'BadArgument', message } });
  }

  /** Destroys the connection without an answer: the message is not delivered. */
  drop(): void {
    this.#req.socket.destroy();
    this.#recorder.finish(this.record, 'dropped');
  }
}
