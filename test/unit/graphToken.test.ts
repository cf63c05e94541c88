/**
 * Graph tokens: which tenants each kind of bot identity may get one from, and the per-tenant cache
 * (stand-in credentials on a frozen clock). Real credentials against the Entra stub are in
 * test/integration/graphClient.test.ts.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { REFRESH_BEFORE_EXPIRY_MS } from '../../src/auth/botTokenProvider';
import { GraphTokenError } from '../../src/graph/graphResult';
import { createGraphTokenProvider, graphTenantRefusal, type GraphIdentity } from '../../src/graph/graphToken';

const SCOPE = 'https://graph.microsoft.com/.default';
const HOME = '00000000-0000-4000-8000-00000000f0de';
const CUSTOMER = '11111111-0000-4000-8000-0000000c0570';
const t0 = Date.parse('2026-11-25T10:00:00Z');

const base = { appId: 'app', authorityHost: 'https://login.microsoftonline.com', authorityOverridden: false };
const multi: GraphIdentity = {
  ...base,
  appType: 'MultiTenant',
  credential: { kind: 'secret', tenantId: 'botframework.com', clientSecret: 's3cret' },
};
const single: GraphIdentity = {
  ...base,
  appType: 'SingleTenant',
  credential: { kind: 'certificate', tenantId: HOME, certificate: { pem: 'pem' } },
};
const msi: GraphIdentity = {
  ...base,
  appType: 'UserAssignedMSI',
  credential: { kind: 'managedIdentity', clientId: 'app' },
  homeTenantId: HOME,
};

function fakeCredentials(clock: { now: number }, lifetimeMs = 60 * 60_000) {
  const made: { tenantId: string; scopes: string[] }[] = [];
  let issued = 0;
  let fail: Error | undefined;
  const create = (tenantId: string): TokenCredential => {
    const entry = { tenantId, scopes: [] as string[] };
    made.push(entry);
    return {
      getToken: async (scope: string | string[]): Promise<AccessToken> => {
        entry.scopes.push(String(scope));
        await new Promise((r) => setTimeout(r, 5));
        if (fail) throw fail;
        issued += 1;
        return { token: `${tenantId}-token-${issued}`, expiresOnTimestamp: clock.now + lifetimeMs };
      },
    };
  };
  return { create, made, failWith: (err: Error | undefined) => (fail = err) };
}

describe('graphTenantRefusal', () => {
  it('a MultiTenant bot with a secret or certificate may act in any tenant', () => {
    expect(graphTenantRefusal(multi, CUSTOMER)).toBeUndefined();
    expect(graphTenantRefusal(multi, HOME)).toBeUndefined();
  });

  it('a SingleTenant bot only in its own tenant (any case), with a reason that names both', () => {
    expect(graphTenantRefusal(single, HOME.toUpperCase())).toBeUndefined();
    const refusal = graphTenantRefusal(single, CUSTOMER);
    expect(refusal).toMatchObject({ code: 'GraphTenantNotAllowed', retryable: false });
    expect(refusal!.reason).toContain(`a SingleTenant bot gets Graph tokens only from its own tenant ${HOME}`);
    expect(refusal!.reason).toContain(CUSTOMER);
  });

  it('a managed identity only in its own tenant, and not at all when that tenant is unknown', () => {
    expect(graphTenantRefusal(msi, HOME)).toBeUndefined();
    expect(graphTenantRefusal(msi, CUSTOMER)).toMatchObject({ code: 'GraphTenantNotAllowed' });
    expect(graphTenantRefusal({ ...msi, homeTenantId: undefined }, HOME)!.reason).toContain('MicrosoftAppTenantId');
  });

  it('refuses a tenant that is not a GUID (botframework.com, a domain) before any token request', () => {
    for (const bad of ['botframework.com', 'contoso.onmicrosoft.com', '', `${CUSTOMER}/x`]) {
      expect(graphTenantRefusal(multi, bad), bad).toMatchObject({ code: 'GraphInvalidId', retryable: false });
    }
  });
});

describe('createGraphTokenProvider', () => {
  it("makes one credential per tenant, for that tenant, and caches each tenant's token until 5 minutes before expiry", async () => {
    const clock = { now: t0 };
    const creds = fakeCredentials(clock);
    const tokens = createGraphTokenProvider({
      identity: multi,
      scope: SCOPE,
      createCredential: creds.create,
      now: () => clock.now,
    });
    expect(await tokens.getToken(CUSTOMER)).toBe(`${CUSTOMER}-token-1`);
    expect(await tokens.getToken(HOME)).toBe(`${HOME}-token-2`);
    expect(await tokens.getToken(CUSTOMER.toUpperCase())).toBe(`${CUSTOMER}-token-1`);
    expect(creds.made.map((m) => m.tenantId)).toEqual([CUSTOMER, HOME]);
    expect(creds.made.flatMap((m) => m.scopes)).toEqual([SCOPE, SCOPE]);
    clock.now = t0 + 60 * 60_000 - REFRESH_BEFORE_EXPIRY_MS - 1;
    expect(await tokens.getToken(CUSTOMER)).toBe(`${CUSTOMER}-token-1`);
    clock.now = t0 + 60 * 60_000 - REFRESH_BEFORE_EXPIRY_MS;
    expect(await tokens.getToken(CUSTOMER)).toBe(`${CUSTOMER}-token-3`);
    expect(tokens.tenants()).toEqual([HOME, CUSTOMER]);
  });

  it('lets concurrent callers of one tenant share one request', async () => {
    const clock = { now: t0 };
    const creds = fakeCredentials(clock);
    const tokens = createGraphTokenProvider({
      identity: multi,
      scope: SCOPE,
      createCredential: creds.create,
      now: () => clock.now,
    });
    const all = await Promise.all([tokens.getToken(CUSTOMER), tokens.getToken(CUSTOMER), tokens.getToken(CUSTOMER)]);
    expect(new Set(all).size).toBe(1);
    expect(creds.made[0]!.scopes).toHaveLength(1);
  });

  it('invalidate(tenant) makes a new credential for that tenant only', async () => {
    const clock = { now: t0 };
    const creds = fakeCredentials(clock);
    const tokens = createGraphTokenProvider({
      identity: multi,
      scope: SCOPE,
      createCredential: creds.create,
      now: () => clock.now,
    });
    await tokens.getToken(CUSTOMER);
    await tokens.getToken(HOME);
    tokens.invalidate(CUSTOMER);
    tokens.invalidate('22222222-0000-4000-8000-000000000000');
    expect(await tokens.getToken(CUSTOMER)).toBe(`${CUSTOMER}-token-3`);
    expect(await tokens.getToken(HOME)).toBe(`${HOME}-token-2`);
    expect(creds.made.map((m) => m.tenantId)).toEqual([CUSTOMER, HOME, CUSTOMER]);
  });

  it('refuses a tenant the identity may not act in without making a credential', async () => {
    const creds = fakeCredentials({ now: t0 });
    const tokens = createGraphTokenProvider({ identity: single, scope: SCOPE, createCredential: creds.create });
    const err = await tokens.getToken(CUSTOMER).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphTokenError);
    expect((err as GraphTokenError).failure).toMatchObject({ code: 'GraphTenantNotAllowed', retryable: false });
    expect(creds.made).toEqual([]);
  });

  it('names token failures by what they mean, on one line, and tries again next time', async () => {
    const creds = fakeCredentials({ now: t0 });
    const tokens = createGraphTokenProvider({ identity: multi, scope: SCOPE, createCredential: creds.create });
    creds.failWith(
      new Error(
        `AADSTS700016: Application with identifier 'app' was not found in the directory '${CUSTOMER}'.\nTrace ID: 1`,
      ),
    );
    await expect(tokens.getToken(CUSTOMER)).rejects.toMatchObject({
      failure: { code: 'GraphConsentMissing', retryable: false },
    });
    creds.failWith(new Error('AADSTS7000215: Invalid client secret provided.\nclient_secret=s3cret'));
    const err = (await tokens.getToken(CUSTOMER).catch((e: unknown) => e)) as GraphTokenError;
    expect(err.failure).toMatchObject({
      code: 'GraphTokenUnavailable',
      retryable: true,
      reason: `could not get a Graph token from tenant ${CUSTOMER}: AADSTS7000215: Invalid client secret provided.`,
    });
    expect(err.failure.reason).not.toContain('s3cret');
    creds.failWith(undefined);
    expect(await tokens.getToken(CUSTOMER)).toMatch(/-token-1$/);
  });

  it('keeps at most maxTenants credentials, dropping the least recently used', async () => {
    const creds = fakeCredentials({ now: t0 });
    const tenants = [1, 2, 3].map((n) => `${String(n).repeat(8)}-0000-4000-8000-000000000000`);
    const tokens = createGraphTokenProvider({
      identity: multi,
      scope: SCOPE,
      createCredential: creds.create,
      maxTenants: 2,
    });
    await tokens.getToken(tenants[0]!);
    await tokens.getToken(tenants[1]!);
    await tokens.getToken(tenants[0]!);
    await tokens.getToken(tenants[2]!);
    expect(tokens.tenants()).toEqual([tenants[0], tenants[2]]);
  });
});
