/** Inbound activities as teams-courier reads them, and what they mean for the conversation store. */

export interface ChannelAccount {
  readonly id: string;
  readonly name?: string;
  readonly aadObjectId?: string;
}

/** The validated subset of a Bot Framework activity. */
export interface InboundActivity {
  readonly type: string;
  readonly id?: string;
  readonly channelId: string;
  readonly serviceUrl: string;
  readonly conversation: {
    readonly id: string;
    readonly conversationType?: string;
    readonly tenantId?: string;
    readonly isGroup?: boolean;
    readonly name?: string;
  };
  readonly from?: ChannelAccount;
  readonly recipient?: ChannelAccount;
  readonly membersAdded: readonly ChannelAccount[];
  readonly membersRemoved: readonly ChannelAccount[];
  readonly action?: string;
  readonly locale?: string;
  readonly channelData: {
    readonly eventType?: string;
    readonly tenantId?: string;
    readonly team?: { readonly id: string; readonly name?: string; readonly aadGroupId?: string };
    readonly channel?: { readonly id: string; readonly name?: string };
  };
}

export type ConversationType = 'personal' | 'groupChat' | 'channel';

/** What an inbound activity tells us about one conversation. */
export interface ObservedReference {
  readonly conversationId: string;
  readonly conversationType: ConversationType;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly botId: string;
  readonly botName?: string;
  readonly userId?: string;
  readonly userAadObjectId?: string;
  readonly userName?: string;
  readonly teamId?: string;
  readonly teamName?: string;
  readonly teamAadGroupId?: string;
  readonly channelId?: string;
  readonly channelName?: string;
  readonly locale?: string;
  /** `undefined`: this activity says nothing about installation (unchanged; new references count as installed). */
  readonly installed?: boolean;
}

export type CapturePlan =
  | { readonly kind: 'ignore'; readonly reason: string }
  | {
      readonly kind: 'capture';
      readonly reference: ObservedReference;
      /** Also set the install state of every stored channel of this team (team-wide install, delete, restore). */
      readonly team?: { readonly teamId: string; readonly installed: boolean };
    };
