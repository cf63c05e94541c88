/** Channel thread ids: a thread's conversation id is its channel's id plus `;messageid=<root>`. */

const THREAD_SUFFIX = /;messageid=[^;]*$/;

/** `19:abc@thread.tacv2;messageid=123` -> `19:abc@thread.tacv2`: threads are recorded against their channel. */
export function toChannelConversationId(conversationId: string): string {
  return conversationId.replace(THREAD_SUFFIX, '');
}

/** True for a channel thread's id (`…;messageid=<root>`). */
export function isThreadConversationId(conversationId: string): boolean {
  return THREAD_SUFFIX.test(conversationId);
}
