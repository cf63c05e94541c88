import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startOpenIdServer, type OpenIdServer } from '../../host/emulator/openIdServer';
import type { PublishedJwks } from '../../host/emulator/tokens';
import { APP_ID, call, keepAliveAgent } from './helpers';

describe('OpenID metadata server', () => {
  let openId: OpenIdServer;
  const agent = keepAliveAgent();

  beforeAll(async () => {
    openId = await startOpenIdServer();
  });
  afterAll(async () => {
    await openId.close();
    await agent.close();
  });
  beforeEach(() => {
    openId.setOutage(false);
    openId.resetCounters();
  });

  it('serves the metadata document with jwks_uri pointing back at itself', async () => {
    expect(openId.metadataUrl).toBe(`${openId.origin}/v1/.well-known/openidconfiguration`);
    const res = await call(agent, openId.metadataUrl, { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      issuer: 'https://api.botframework.com',
      jwks_uri: `${openId.origin}/v1/.well-known/keys`,
      id_token_signing_alg_values_supported: ['RS256'],
    });
    expect((await call(agent, openId.jwksUrl, { method: 'GET' })).status).toBe(200);
    expect(openId.counters).toEqual({ metadata: 1, keys: 1, other: 0 });
  });

  it('rotates keys at runtime: new kid signs, old stays published until removed', async () => {
    const oldKid = openId.issuer.currentKey.kid;
    const fresh = await openId.rotate();
    expect(fresh.kid).not.toBe(oldKid);
    const token = await openId.issuer.mintChannelToken({ appId: APP_ID, serviceUrl: 'https://x/' });
    expect(decodeProtectedHeader(token).kid).toBe(fresh.kid);
    let keys = ((await call(agent, openId.jwksUrl, { method: 'GET' })).json as PublishedJwks).keys.map((k) => k.kid);
    expect(keys).toEqual([oldKid, fresh.kid]);

    expect(openId.removeKey(oldKid)).toBe(true);
    keys = ((await call(agent, openId.jwksUrl, { method: 'GET' })).json as PublishedJwks).keys.map((k) => k.kid);
    expect(keys).toEqual([fresh.kid]);
    expect(openId.counters.keys).toBe(2);
  });

  it('an unpublished key can be published later (refetch-on-unknown-kid scenario)', async () => {
    const later = await openId.issuer.createUnpublishedKey();
    expect(openId.issuer.jwks().keys.some((k) => k.kid === later.kid)).toBe(false);
    openId.issuer.publishKey(later);
    const keys = ((await call(agent, openId.jwksUrl, { method: 'GET' })).json as PublishedJwks).keys;
    expect(keys.some((k) => k.kid === later.kid)).toBe(true);
    openId.removeKey(later.kid);
  });

  it('simulates an outage (503, or a dropped connection) and still counts the calls', async () => {
    openId.setOutage('status');
    expect((await call(agent, openId.metadataUrl, { method: 'GET' })).status).toBe(503);
    expect((await call(agent, openId.jwksUrl, { method: 'GET' })).status).toBe(503);

    openId.setOutage('drop');
    await expect(call(agent, openId.jwksUrl, { method: 'GET' })).rejects.toThrow();

    openId.setOutage(false);
    expect((await call(agent, openId.jwksUrl, { method: 'GET' })).status).toBe(200);
    expect(openId.counters).toEqual({ metadata: 1, keys: 3, other: 0 });
    expect(openId.requests.map((r) => r.status)).toEqual([503, 503, null, 200]);
  });
});
