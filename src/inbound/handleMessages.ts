/**
 * POST /api/messages: verify -> parse -> capture -> 200. Independent of the Functions runtime: it
 * takes the few request members it needs, so tests call it directly.
 *
 * Order matters: the token is verified before the body is read, so an unauthenticated caller costs
 * no parsing and nothing it sends is ever stored. Teams retries after 10-15 s, so the work here is
 * bounded: one token verification (no network once warm) and normally one or two table operations.
 */
import type { ChannelTokenVerifier } from '../auth/verifyChannelToken';
import { assertActivityMatchesToken } from '../auth/verifyChannelToken';
import { parseActivity, toCapturePlan, type InboundActivity } from '../core/activity';
import { AuthError, BadRequestError, CourierError } from '../errors';
import type { WelcomeConfig } from '../config';
import type { Logger } from '../log';
import type { ConversationStore } from '../store/conversationStore';

export const MAX_BODY_BYTES = 256 * 1024;

export interface MessagesRequest {
  readonly method: string;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
}

export interface MessagesResponse {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly jsonBody?: unknown;
}

export interface MessagesDeps {
  readonly verifier: ChannelTokenVerifier;
  readonly store: ConversationStore;
  readonly now: () => Date;
  readonly log: Logger;
  /** The welcome for a fresh install (only when WELCOME_MESSAGE / WELCOME_CARD is set). */
  readonly welcome?: { readonly content: WelcomeConfig; enqueue(job: Record<string, unknown>): Promise<void> };
}

/**
 * The welcome job for an install, or undefined. Its id comes from the install activity's id, so a
 * redelivered activity queues the same id and the sender sends it once.
 */
export function toWelcomeJob(
  activity: InboundActivity,
  conversationId: string,
  welcome: WelcomeConfig,
): Record<string, unknown> | undefined {
  // installationUpdate `add` only: `add-upgrade` is an update of an app already there, and Teams
  // also sends a conversationUpdate for the same install, which would welcome twice.
  if (activity.type !== 'installationUpdate' || activity.action !== 'add') return undefined;
  return {
    id: `welcome-${activity.id ?? conversationId}`.slice(0, 128),
    to: { conversationId },
    ...(welcome.text === undefined ? {} : { text: welcome.text }),
    ...(welcome.adaptiveCard === undefined ? {} : { adaptiveCard: welcome.adaptiveCard }),
  };
}

/** Reads at most `limit` bytes; stops reading and throws 413 past it. */
export async function readBodyCapped(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new BadRequestError(`The body is larger than ${limit} bytes.`, 413);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function parseJsonBody(bytes: Buffer, contentType: string | null): unknown {
  if (contentType !== null && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new BadRequestError('The body must be application/json.');
  }
  if (bytes.length === 0) throw new BadRequestError('The body is empty.');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new BadRequestError('The body is not valid UTF-8.');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError('The body is not valid JSON.');
  }
}

/** The one place inbound errors become HTTP responses. 5xx and auth bodies are generic. */
export function toErrorResponse(err: unknown, log: Logger): MessagesResponse {
  if (err instanceof BadRequestError) {
    log.warn('messages.rejected', { status: err.status, reason: err.message });
    return { status: err.status, jsonBody: { error: err.message } };
  }
  if (err instanceof AuthError) {
    log.warn('messages.unauthorized', { status: err.status, code: err.code, reason: err.message });
    return err.status === 403
      ? { status: 403, jsonBody: { error: 'Forbidden' } }
      : { status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, jsonBody: { error: 'Unauthorized' } };
  }
  if (err instanceof CourierError && (err.code === 'STORAGE_UNAVAILABLE' || err.code === 'AUTH_METADATA_UNAVAILABLE')) {
    // A 5xx makes the Bot Connector retry: never acknowledge an activity that was not stored.
    log.error('messages.unavailable', { code: err.code, reason: err.message });
    return { status: 503, headers: { 'Retry-After': '5' }, jsonBody: { error: 'Service unavailable' } };
  }
  log.error('messages.failed', { error: err });
  return { status: 500, jsonBody: { error: 'Internal error' } };
}

export async function handleMessages(request: MessagesRequest, deps: MessagesDeps): Promise<MessagesResponse> {
  const { log } = deps;
  try {
    if (request.method.toUpperCase() !== 'POST') {
      return { status: 405, headers: { Allow: 'POST' }, jsonBody: { error: 'Only POST is allowed.' } };
    }
    const declaredLength = Number(request.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declaredLength) && declaredLength > MAX_BODY_BYTES) {
      throw new BadRequestError(`The body is larger than ${MAX_BODY_BYTES} bytes.`, 413);
    }

    const token = await deps.verifier.verify(request.headers.get('authorization'));
    const body = parseJsonBody(await readBodyCapped(request.body, MAX_BODY_BYTES), request.headers.get('content-type'));
    const activity = parseActivity(body);
    assertActivityMatchesToken(token, activity);

    const activityLog = log.child({
      activityId: activity.id,
      activityType: activity.type,
      conversationId: activity.conversation.id,
    });
    const plan = toCapturePlan(activity);
    if (plan.kind === 'ignore') {
      activityLog.debug('messages.ignored', { reason: plan.reason });
      return { status: 200 };
    }
    const result = await deps.store.capture(plan, deps.now());
    activityLog.info('messages.captured', {
      outcome: result.outcome,
      conversationType: plan.reference.conversationType,
      tenantId: plan.reference.tenantId,
      installed: plan.reference.installed,
      teamUpdated: result.teamUpdated || undefined,
    });
    if (deps.welcome !== undefined) {
      const job = toWelcomeJob(activity, plan.reference.conversationId, deps.welcome.content);
      if (job !== undefined) {
        // The reference is stored: a failed welcome must not make Teams resend the install.
        await deps.welcome.enqueue(job).then(
          () => activityLog.info('welcome.queued', { jobId: job.id }),
          (err: unknown) => activityLog.warn('welcome.failed', { error: err }),
        );
      }
    }
    return { status: 200 };
  } catch (err) {
    return toErrorResponse(err, log);
  }
}
