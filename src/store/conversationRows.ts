/**
 * A conversation reference as a row of table `conversations` (PartitionKey = toTableKey(conversation
 * id), RowKey "ref"): one entity holds the whole reference (docs/storage.md).
 */
import { REFERENCE_FIELDS, type ConversationReference } from '../core/reference';
import { toTableKey } from '../core/tableKeys';
import type { Entity, NewEntity } from './tableClients';

export const REF_ROW = 'ref';

export function toEntity(reference: ConversationReference): NewEntity {
  const entity: NewEntity = {
    partitionKey: toTableKey(reference.conversationId),
    rowKey: REF_ROW,
  };
  for (const field of REFERENCE_FIELDS) {
    const value = reference[field];
    if (value !== undefined) entity[field] = value;
  }
  return entity;
}

export function fromEntity(entity: Entity): ConversationReference {
  const reference: Record<string, unknown> = {};
  for (const field of REFERENCE_FIELDS) {
    const value = entity[field];
    if (value !== undefined && value !== null) reference[field] = value;
  }
  return reference as unknown as ConversationReference;
}
