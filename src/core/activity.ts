/**
 * Inbound activities: parsing `unknown` JSON into the few fields teams-courier uses, and deciding
 * what an activity means for the conversation store. Pure: no I/O, time passed in.
 *
 * Teams adds fields over time; everything not read here is ignored, never rejected.
 * Sources: ../shared/reference/bot-connector.md §8 (activities to capture), §9 (reference contents).
 *
 * The parts live in ./activity/: types, fields (what is stored, and its limits), parseActivity,
 * capturePlan (toCapturePlan), conversationIds (channel thread ids).
 */
export type {
  CapturePlan,
  ChannelAccount,
  ConversationType,
  InboundActivity,
  ObservedReference,
} from './activity/types';
export { MAX_ID_LENGTH, MAX_LOCALE_LENGTH, MAX_NAME_LENGTH } from './activity/fields';
export { parseActivity } from './activity/parseActivity';
export { toCapturePlan } from './activity/capturePlan';
export { isThreadConversationId, toChannelConversationId } from './activity/conversationIds';
