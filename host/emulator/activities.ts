/**
 * Builders for signed inbound activities: realistic Teams payloads (test/fixtures/activities, the
 * shapes of bot-connector.md §8) re-pointed at the local stubs and signed by the local issuer, ready
 * to POST to the app's /api/messages.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { request, type Dispatcher } from 'undici';
import type { ChannelTokenIssuer, MintChannelTokenOptions } from './tokens';
import type { Activity, ChannelAccount } from './types';

/** The emulator's one bot (see index.ts). */
export const EMULATOR_APP_ID = '00000000-0000-4000-8000-00000000e001';
export const EMULATOR_TENANT_ID = '00000000-0000-4000-8000-00000000e0de';
export const EMULATOR_BOT_NAME = 'Courier (emulator)';
export const EMULATOR_USER: Readonly<Required<Pick<ChannelAccount, 'id' | 'name' | 'aadObjectId'>>> = Object.freeze({
  id: '29:emulator-user',
  name: 'Emulator User',
  aadObjectId: '00000000-0000-4000-8000-0000000000a1',
});
export const EMULATOR_CONVERSATION_ID = 'a:emulator-personal-chat';

export const FIXTURE_NAMES = [
  'conversationUpdate.channel.botAdded',
  'conversationUpdate.channel.teamDeleted',
  'conversationUpdate.personal.membersAdded',
  'installationUpdate.add.channel',
  'installationUpdate.add.personal',
  'installationUpdate.remove.personal',
  'message.channel.threadReply',
  'message.groupChat',
  'message.personal',
] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/** test/fixtures/activities, found by walking up from this module (works from host/ and dist/host/). */
export function fixturesDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i += 1) {
    const candidate = path.join(dir, 'test', 'fixtures', 'activities');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve(process.cwd(), 'test', 'fixtures', 'activities');
}

/** A fresh deep copy of a fixture. */
export function loadFixture(name: FixtureName, dir: string = fixturesDir()): Activity {
  return JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Activity;
}

export interface RetargetOptions {
  /** The stub's serviceUrl (e.g. connector.serviceUrl('amer')). Default: keep the fixture's. */
  readonly serviceUrl?: string;
  /** Replaces the fixture bot's id (`28:<appId>`) everywhere: recipient, membersAdded/Removed, mentions. */
  readonly appId?: string;
  /** Replaces conversation.tenantId and channelData.tenant.id. */
  readonly tenantId?: string;
  readonly conversationId?: string;
  readonly from?: ChannelAccount;
  readonly text?: string;
  /** Default: a new unique id. */
  readonly id?: string;
  /** Default: now. */
  readonly timestamp?: string;
}

let idCounter = 0;
function newActivityId(): string {
  idCounter += 1;
  return `${Date.now()}${String(idCounter).padStart(3, '0')}`;
}

/** Deep-copies an activity and re-points it (serviceUrl, bot id, tenant, conversation, ...). */
export function retargetActivity(source: Activity, options: RetargetOptions = {}): Activity {
  const activity = structuredClone(source);
  if (options.serviceUrl !== undefined) activity.serviceUrl = options.serviceUrl;
  if (options.appId !== undefined) {
    const oldBotId = activity.recipient?.id;
    const newBotId = `28:${options.appId}`;
    const swap = (account: ChannelAccount | undefined): void => {
      if (account && oldBotId !== undefined && account.id === oldBotId) account.id = newBotId;
    };
    activity.recipient = { ...(activity.recipient ?? {}), id: newBotId };
    for (const member of [...(activity.membersAdded ?? []), ...(activity.membersRemoved ?? [])]) swap(member);
    for (const entity of activity.entities ?? []) {
      if (entity.type === 'mention' && typeof entity.mentioned === 'object' && entity.mentioned !== null)
        swap(entity.mentioned as ChannelAccount);
    }
  }
  if (options.tenantId !== undefined) {
    if (activity.conversation) activity.conversation.tenantId = options.tenantId;
    activity.channelData = { ...(activity.channelData ?? {}), tenant: { id: options.tenantId } };
  }
  if (options.conversationId !== undefined)
    activity.conversation = { ...(activity.conversation ?? {}), id: options.conversationId };
  if (options.from !== undefined) activity.from = { ...options.from };
  if (options.text !== undefined) activity.text = options.text;
  activity.id = options.id ?? newActivityId();
  activity.timestamp = options.timestamp ?? new Date().toISOString();
  return activity;
}

export function fixtureActivity(name: FixtureName, options: RetargetOptions = {}): Activity {
  return retargetActivity(loadFixture(name), options);
}

export interface SignedActivity {
  readonly activity: Activity;
  readonly token: string;
  /** Authorization, Content-Type and the Teams x-ms-* headers (§8). */
  readonly headers: Record<string, string>;
}

/**
 * Mints a channel token for an activity: audience = the recipient's app id (`28:` stripped),
 * `serviceurl` = activity.serviceUrl, unless `token` overrides them (to test each rejection).
 */
export async function signActivity(
  activity: Activity,
  issuer: ChannelTokenIssuer,
  token: Partial<MintChannelTokenOptions> = {},
): Promise<SignedActivity> {
  const appId = token.appId ?? activity.recipient?.id.replace(/^28:/, '') ?? '';
  const jwt = await issuer.mintChannelToken({
    ...token,
    appId,
    serviceUrl: token.serviceUrl ?? activity.serviceUrl ?? '',
  });
  return {
    activity,
    token: jwt,
    headers: {
      authorization: `Bearer ${jwt}`,
      'content-type': 'application/json; charset=utf-8',
      'x-ms-conversation-id': activity.conversation?.id ?? '',
      'x-ms-tenant-id': activity.conversation?.tenantId ?? activity.channelData?.tenant?.id ?? '',
    },
  };
}

export interface PersonalActivityOptions {
  readonly appId: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly user?: ChannelAccount;
  readonly conversationId?: string;
  readonly botName?: string;
  readonly locale?: string;
}

function personalBase(options: PersonalActivityOptions): Activity {
  const user = options.user ?? EMULATOR_USER;
  return {
    type: 'message',
    id: newActivityId(),
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: options.serviceUrl,
    from: { ...user },
    conversation: {
      conversationType: 'personal',
      tenantId: options.tenantId,
      id: options.conversationId ?? EMULATOR_CONVERSATION_ID,
    },
    recipient: { id: `28:${options.appId}`, name: options.botName ?? EMULATOR_BOT_NAME },
    channelData: { tenant: { id: options.tenantId } },
    locale: options.locale ?? 'en-US',
  };
}

/** A personal-chat `message` shaped like fixtures/activities/message.personal.json. */
export function personalMessage(options: PersonalActivityOptions & { readonly text: string }): Activity {
  return {
    ...personalBase(options),
    type: 'message',
    text: options.text,
    textFormat: 'plain',
    entities: [
      { locale: options.locale ?? 'en-US', country: 'US', platform: 'Web', timezone: 'UTC', type: 'clientInfo' },
    ],
    localTimezone: 'UTC',
  };
}

/** A personal-scope `installationUpdate` (add or remove), like fixtures/activities/installationUpdate.*.personal.json. */
export function personalInstallationUpdate(
  options: PersonalActivityOptions & { readonly action: 'add' | 'remove' },
): Activity {
  const base = personalBase(options);
  return {
    ...base,
    type: 'installationUpdate',
    action: options.action,
    channelData: { ...base.channelData, source: { name: 'message' } },
  };
}

export interface PostResult {
  readonly status: number;
  readonly body: string;
}

/** POSTs a signed activity to `<appBaseUrl>/api/messages` (or to `url` if it already ends in a path). */
export async function postActivity(
  url: string,
  signed: SignedActivity,
  options: { dispatcher?: Dispatcher; timeoutMs?: number } = {},
): Promise<PostResult> {
  const target = /\/api\/messages\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/api/messages`;
  const timeout = options.timeoutMs ?? 15_000;
  const response = await request(target, {
    method: 'POST',
    headers: signed.headers,
    body: JSON.stringify(signed.activity),
    headersTimeout: timeout,
    bodyTimeout: timeout,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  return { status: response.statusCode, body: await response.body.text() };
}
