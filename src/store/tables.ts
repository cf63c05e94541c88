/**
 * Table names. The deployment (infra/) creates exactly these; a test checks that they agree.
 * - conversations: one entity per conversation reference (personal chat, group chat, channel).
 * - userchats: index (user aadObjectId, tenant) -> personal chat conversation id; point lookups only.
 * - deliveries: one entity per outbound job id: status, attempts, outcome.
 * - budget: per tenant, the instances sending there and Teams' pauses (src/store/budgetRoster.ts).
 * - stats: hourly outcome counts per instance and tenant, for `teams-courier stats` (src/store/statsRollup.ts).
 */
export const TABLES = Object.freeze({
  conversations: 'conversations',
  userChats: 'userchats',
  deliveries: 'deliveries',
  budget: 'budget',
  stats: 'stats',
} as const);
