/**
 * The scale-out rig's own arithmetic and request naming (no processes, no network): what the
 * storage proxy counts each request as, and how the share of the cap is computed.
 */
import { describe, expect, it } from 'vitest';
import { classifyStorageRequest, parseBatchBody, shareOfCap } from '../helpers/instances';

describe('classifyStorageRequest', () => {
  const table = (method: string, url: string, headers: Record<string, string> = {}): string =>
    classifyStorageRequest('table', method, url, headers);
  const queue = (method: string, url: string): string => classifyStorageRequest('queue', method, url, {});

  it('names table operations by table, keys and If-Match', () => {
    expect(table('GET', "/devstoreaccount1/deliveries(PartitionKey='a%20b',RowKey='job')")).toBe(
      'table deliveries get',
    );
    expect(table('GET', "/devstoreaccount1/deliveries()?$filter=PartitionKey%20eq%20'x'")).toBe(
      'table deliveries query',
    );
    expect(table('POST', '/devstoreaccount1/deliveries')).toBe('table deliveries insert');
    expect(table('PUT', "/devstoreaccount1/deliveries(PartitionKey='a',RowKey='job')", { 'if-match': 'W/"x"' })).toBe(
      'table deliveries update (Replace, If-Match)',
    );
    expect(table('PUT', "/devstoreaccount1/deliveries(PartitionKey='a',RowKey='job')")).toBe(
      'table deliveries upsert (Replace)',
    );
    expect(table('PATCH', "/devstoreaccount1/deliveries(PartitionKey='a',RowKey='child:x')")).toBe(
      'table deliveries upsert (Merge)',
    );
    expect(table('MERGE', "/devstoreaccount1/budget(PartitionKey='t',RowKey='s')", { 'if-match': '*' })).toBe(
      'table budget update (Merge, If-Match)',
    );
    expect(table('DELETE', "/devstoreaccount1/deliveries(PartitionKey='a',RowKey='job')")).toBe(
      'table deliveries delete',
    );
    expect(table('POST', '/devstoreaccount1/Tables')).toBe('table Tables create table');
    expect(table('POST', '/devstoreaccount1/$batch')).toBe('table (batch)');
  });

  it('names queue operations', () => {
    expect(queue('GET', '/devstoreaccount1/outbound-messages/messages?numofmessages=16&visibilitytimeout=600')).toBe(
      'queue outbound-messages receive',
    );
    expect(queue('GET', '/devstoreaccount1/outbound-messages/messages?peekonly=true')).toBe(
      'queue outbound-messages peek',
    );
    expect(queue('POST', '/devstoreaccount1/outbound-messages/messages?visibilitytimeout=2')).toBe(
      'queue outbound-messages send',
    );
    expect(queue('DELETE', '/devstoreaccount1/outbound-messages/messages/abc?popreceipt=x')).toBe(
      'queue outbound-messages delete message',
    );
    expect(queue('PUT', '/devstoreaccount1/outbound-messages/messages/abc?popreceipt=x&visibilitytimeout=300')).toBe(
      'queue outbound-messages update message (visibility)',
    );
    expect(queue('PUT', '/devstoreaccount1/outbound-messages-poison')).toBe('queue outbound-messages-poison create');
    expect(queue('GET', '/devstoreaccount1/outbound-messages?comp=metadata')).toBe(
      'queue outbound-messages get properties',
    );
  });

  it('counts the operations inside a batch body', () => {
    const body = [
      '--batch_1',
      'Content-Type: multipart/mixed; boundary=changeset_1',
      '',
      '--changeset_1',
      "PATCH http://127.0.0.1:1/devstoreaccount1/deliveries(PartitionKey='p',RowKey='child%3Aa') HTTP/1.1",
      'Content-Type: application/json',
      '',
      '{}',
      '--changeset_1',
      "PATCH http://127.0.0.1:1/devstoreaccount1/deliveries(PartitionKey='p',RowKey='child%3Ab') HTTP/1.1",
      '',
      '{}',
      '--changeset_1--',
    ].join('\r\n');
    expect(parseBatchBody(body)).toEqual({ operations: 2, table: 'deliveries' });
  });
});

describe('shareOfCap', () => {
  it('is 1 for deliveries exactly at the cap, and measures the middle 80 % separately', () => {
    const even = Array.from({ length: 101 }, (_, i) => 1_000 + i * 20); // 50/s
    expect(shareOfCap(even, 50).share).toBeCloseTo(1, 5);
    expect(shareOfCap(even, 50).steadyShare).toBeCloseTo(1, 5);
    // A slow start and a straggler drag the whole span down, not the steady part.
    const ragged = [0, 2_000, ...even.map((t) => t + 2_000), 20_000];
    expect(shareOfCap(ragged, 50).share).toBeLessThan(0.6);
    expect(shareOfCap(ragged, 50).steadyShare).toBeCloseTo(1, 1);
  });
});
