/**
 * The trust check the bot's token depends on (src/connector/connectorClient.ts): a serviceUrl gets
 * the token only when it is https on a trusted Bot Connector host (default port) or a configured
 * origin, without credentials; and the URL built on it keeps every id inside its path segment.
 */
import { describe, expect, it } from 'vitest';
import { assertTrustedServiceUrl, connectorUrl } from '../../src/connector/connectorClient';
import { CourierError } from '../../src/errors';

const policy = {
  trustedHosts: ['smba.trafficmanager.net', 'smba.infra.gcc.teams.microsoft.com'],
  trustedOrigins: ['https://127.0.0.1:8443', 'https://stub.example:9443'],
};

function refusal(serviceUrl: string, p = policy): CourierError | undefined {
  try {
    assertTrustedServiceUrl(serviceUrl, p);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CourierError);
    return err as CourierError;
  }
}

describe('assertTrustedServiceUrl', () => {
  it.each([
    'https://smba.trafficmanager.net/amer/',
    'https://smba.trafficmanager.net/emea/72f988bf-0000-4000-8000-00000000c0de/',
    'https://SMBA.TrafficManager.net/amer/',
    'https://smba.trafficmanager.net:443/amer/',
    'https://smba.infra.gcc.teams.microsoft.com/',
    'https://127.0.0.1:8443/amer/',
    'https://stub.example:9443/',
    'https://STUB.example:9443/x',
  ])('trusts %s', (serviceUrl) => {
    expect(refusal(serviceUrl)).toBeUndefined();
    expect(assertTrustedServiceUrl(serviceUrl, policy)).toBeInstanceOf(URL);
    expect(assertTrustedServiceUrl(serviceUrl, policy).href).toBe(new URL(serviceUrl).href);
  });

  it.each([
    ['http on a trusted host', 'http://smba.trafficmanager.net/amer/', 'smba.trafficmanager.net'],
    ['another host', 'https://evil.example/amer/', 'evil.example'],
    [
      'a trusted host as a subdomain',
      'https://smba.trafficmanager.net.evil.example/',
      'smba.trafficmanager.net.evil.example',
    ],
    ['a trusted host as a parent', 'https://x.smba.trafficmanager.net/', 'x.smba.trafficmanager.net'],
    ['a trusted host on another port', 'https://smba.trafficmanager.net:8443/amer/', 'smba.trafficmanager.net:8443'],
    ['a user name', 'https://bot@smba.trafficmanager.net/amer/', 'smba.trafficmanager.net'],
    ['a password', 'https://:secret@smba.trafficmanager.net/amer/', 'smba.trafficmanager.net'],
    ['the trusted port hidden as credentials', 'https://smba.trafficmanager.net:443@evil.example/', 'evil.example'],
    ['a trusted origin on another port', 'https://127.0.0.1:8444/', '127.0.0.1:8444'],
    ['a trusted origin over http', 'http://127.0.0.1:8443/', '127.0.0.1:8443'],
    ['a trusted origin with credentials', 'https://u:p@127.0.0.1:8443/', '127.0.0.1:8443'],
    ["a trusted origin's host on the default port", 'https://stub.example/', 'stub.example'],
    ['a file URL', 'file:///etc/passwd', ''],
  ])('refuses %s', (_label, serviceUrl, host) => {
    const err = refusal(serviceUrl);
    expect(err).toMatchObject({
      code: 'UNTRUSTED_SERVICE_URL',
      message: `serviceUrl host "${host}" is not a trusted Bot Connector host`,
    });
  });

  it('refuses what is not a URL, saying so', () => {
    for (const serviceUrl of ['', 'smba.trafficmanager.net/amer/', 'https://', '//smba.trafficmanager.net/']) {
      expect(refusal(serviceUrl), serviceUrl).toMatchObject({
        code: 'UNTRUSTED_SERVICE_URL',
        message: 'serviceUrl is not a valid URL',
      });
    }
  });

  it('trusts nothing with an empty policy, and each list on its own', () => {
    expect(refusal('https://smba.trafficmanager.net/amer/', { trustedHosts: [], trustedOrigins: [] })).toBeDefined();
    expect(
      refusal('https://smba.trafficmanager.net/amer/', {
        trustedHosts: ['smba.trafficmanager.net'],
        trustedOrigins: [],
      }),
    ).toBeUndefined();
    expect(
      refusal('https://127.0.0.1:8443/', { trustedHosts: ['smba.trafficmanager.net'], trustedOrigins: [] }),
    ).toBeDefined();
    expect(
      refusal('https://127.0.0.1:8443/', { trustedHosts: [], trustedOrigins: ['https://127.0.0.1:8443'] }),
    ).toBeUndefined();
    // An origin is not a host: the trusted host list is matched by hostname, the origins exactly.
    expect(
      refusal('https://smba.trafficmanager.net/amer/', {
        trustedHosts: [],
        trustedOrigins: ['smba.trafficmanager.net'],
      }),
    ).toBeDefined();
  });
});

describe('connectorUrl', () => {
  const base = new URL('https://smba.trafficmanager.net/amer/');

  it('puts each id in its own encoded segment under {serviceUrl}v3/', () => {
    expect(connectorUrl(base, 'conversations', 'a:1', 'activities').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/a%3A1/activities',
    );
    expect(connectorUrl(base, 'conversations', '19:c@thread.tacv2;messageid=1', 'activities', '1:x/y').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/19%3Ac%40thread.tacv2%3Bmessageid%3D1/activities/1%3Ax%2Fy',
    );
    expect(connectorUrl(base, 'conversations', 'a:1/..;x', 'activities').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/a%3A1%2F..%3Bx/activities',
    );
    expect(connectorUrl(base, 'conversations', '...', 'activities').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/.../activities',
    );
    expect(connectorUrl(base, 'conversations', '.a', 'activities').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations/.a/activities',
    );
  });

  it('adds the slash a serviceUrl without one lacks, and keeps its path', () => {
    expect(connectorUrl(new URL('https://smba.trafficmanager.net/amer'), 'conversations').href).toBe(
      'https://smba.trafficmanager.net/amer/v3/conversations',
    );
    expect(connectorUrl(new URL('https://smba.trafficmanager.net'), 'conversations').href).toBe(
      'https://smba.trafficmanager.net/v3/conversations',
    );
    expect(connectorUrl(new URL('https://127.0.0.1:8443/amer/tenant/'), 'conversations').href).toBe(
      'https://127.0.0.1:8443/amer/tenant/v3/conversations',
    );
  });

  it.each(['..', '.', '%2e%2E', '%2E', '%2e.', '', '.%2e'])(
    'refuses the segment %j: it would leave the conversation',
    (segment) => {
      expect(() => connectorUrl(base, 'conversations', segment, 'activities')).toThrow(
        expect.objectContaining({
          code: 'INVALID_CONNECTOR_PATH',
          message: `"${segment}" cannot be an id in a Bot Connector URL`,
        }),
      );
    },
  );
});
