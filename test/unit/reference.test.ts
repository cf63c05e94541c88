import { describe, expect, it } from 'vitest';
import type { ObservedReference } from '../../src/core/activity';
import { LAST_SEEN_RESOLUTION_MS, mergeReference, withInstallState } from '../../src/core/reference';

const observed: ObservedReference = {
  conversationId: 'a:1',
  conversationType: 'personal',
  tenantId: 't1',
  serviceUrl: 'https://smba.trafficmanager.net/amer/',
  botId: '28:bot',
  userId: '29:u',
  userAadObjectId: 'aad-1',
  locale: 'en-US',
  installed: true,
};
const t0 = new Date('2026-11-20T10:00:00.000Z');
const later = (ms: number) => new Date(t0.getTime() + ms);

describe('mergeReference', () => {
  it('creates a reference with first/last seen and installed', () => {
    expect(mergeReference(undefined, observed, t0)).toMatchObject({
      conversationId: 'a:1',
      installed: true,
      firstSeenAt: t0.toISOString(),
      lastSeenAt: t0.toISOString(),
      installedChangedAt: t0.toISOString(),
    });
  });

  it('a new reference with no install information counts as installed', () => {
    const { installed: _installed, ...rest } = observed;
    expect(mergeReference(undefined, rest, t0)?.installed).toBe(true);
  });

  it('an identical repeat within the hour writes nothing', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    expect(mergeReference(stored, observed, later(LAST_SEEN_RESOLUTION_MS - 1))).toBeUndefined();
  });

  it('an identical repeat an hour later moves lastSeenAt only', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    const next = mergeReference(stored, observed, later(LAST_SEEN_RESOLUTION_MS))!;
    expect(next.lastSeenAt).toBe(later(LAST_SEEN_RESOLUTION_MS).toISOString());
    expect(next.firstSeenAt).toBe(t0.toISOString());
  });

  it('a changed serviceUrl is taken at once', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    const next = mergeReference(
      stored,
      { ...observed, serviceUrl: 'https://smba.trafficmanager.net/emea/t1/' },
      later(1000),
    )!;
    expect(next.serviceUrl).toBe('https://smba.trafficmanager.net/emea/t1/');
    expect(next.lastSeenAt).toBe(later(1000).toISOString());
  });

  it('keeps stored fields the activity did not carry', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    const { locale: _locale, userId: _userId, ...sparse } = observed;
    expect(mergeReference(stored, sparse, later(1000))).toBeUndefined();
  });

  it('uninstall and reinstall move installedChangedAt; reinstall clears an undeliverable mark', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    const removed = mergeReference(stored, { ...observed, installed: false }, later(1000))!;
    expect(removed).toMatchObject({
      installed: false,
      installedChangedAt: later(1000).toISOString(),
      serviceUrl: observed.serviceUrl,
    });
    const blocked = {
      ...removed,
      undeliverableReason: 'ConversationBlockedByUser',
      undeliverableAt: later(2000).toISOString(),
    };
    const again = mergeReference(blocked, observed, later(3000))!;
    expect(again.installed).toBe(true);
    expect(again.undeliverableReason).toBeUndefined();
    expect(again.undeliverableAt).toBeUndefined();
  });
});

describe('withInstallState', () => {
  it('changes only the install state, and reports no change when there is none', () => {
    const stored = mergeReference(undefined, observed, t0)!;
    expect(withInstallState(stored, true, later(5))).toBeUndefined();
    expect(withInstallState(stored, false, later(5))).toMatchObject({
      installed: false,
      installedChangedAt: later(5).toISOString(),
      serviceUrl: observed.serviceUrl,
    });
  });
});
