/**
 * The emulator's per-machine certificate (host/emulator/certificate.ts): a loopback-only leaf that
 * cannot vouch for anything else, made once even when several processes ask at the same moment,
 * and trusted only where it is handed over.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, test } from 'vitest';
import {
  CERTIFICATE_FILE_NAME,
  KEY_FILE_NAME,
  LocalCertificateError,
  defaultCertificateDir,
  ensureLocalCertificate,
} from '../../host/emulator/certificate';
import { loadTestCertificate, startHttpsServer, trustCertificateInProcess } from '../../host/emulator/localServer';
import { tlsTrustProblem } from '../../host/host';

const CERTIFICATE_MODULE = path.resolve(__dirname, '../../host/emulator/certificate.ts');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'teams-courier-cert-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => path.join(scratch, `certs-${++n}`);

async function serve(cert: string, key: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = https.createServer({ cert, key }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GET with a client that trusts `ca` only; the TLS error code when it refuses. */
async function getWith(ca: string | undefined, url: string): Promise<string> {
  const dispatcher = new Agent(ca === undefined ? {} : { connect: { ca } });
  try {
    return await (await request(url, { dispatcher })).body.text();
  } catch (error) {
    const e = error as { code?: string; cause?: { code?: string } };
    return `refused: ${e.code ?? e.cause?.code ?? String(error)}`;
  } finally {
    await dispatcher.close();
  }
}

describe('the certificate', () => {
  const dir = freshDir();
  const made = ensureLocalCertificate({ dir });
  const x509 = new X509Certificate(made.cert);

  test('is a leaf (CA:FALSE) for localhost, 127.0.0.1 and ::1 only, valid for a year', () => {
    expect(x509.ca).toBe(false);
    // A subject of its own: OpenSSL finds trust anchors by name, so two of these must not share one.
    expect(x509.subject).toMatch(/^CN=teams-courier local emulator [0-9a-f]{12}$/);
    expect(new X509Certificate(ensureLocalCertificate({ dir: freshDir() }).cert).subject).not.toBe(x509.subject);
    expect(x509.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.checkHost('example.com')).toBeUndefined();
    expect(x509.checkIP('10.0.0.1')).toBeUndefined();
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth only
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'basicConstraints,keyUsage'], {
      input: made.cert,
    }).toString();
    expect(text).toMatch(/critical\s+CA:FALSE/);
    expect(text).not.toMatch(/Certificate Sign/);
    const days = (made.validTo.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(360);
    expect(days).toBeLessThanOrEqual(366);
    expect(x509.checkPrivateKey(createPrivateKey(made.key))).toBe(true);
  });

  test('lives in its folder, the key readable by its owner only; the default folder is .local-certs at the repository root', () => {
    expect(made.certPath).toBe(path.join(dir, CERTIFICATE_FILE_NAME));
    expect(made.keyPath).toBe(path.join(dir, KEY_FILE_NAME));
    expect(readFileSync(made.certPath, 'utf8')).toBe(made.cert);
    expect(statSync(made.keyPath).mode & 0o077).toBe(0);
    expect(statSync(dir).mode & 0o077).toBe(0);
    expect(readdirSync(scratch).filter((f) => f.includes('.tmp-') || f.includes('.stale-'))).toEqual([]);
    expect(defaultCertificateDir()).toBe(path.resolve(__dirname, '../../.local-certs'));
    // The stubs' certificate is that one, and what the test workers trust (vitest globalSetup).
    expect(loadTestCertificate().certPath).toBe(path.join(defaultCertificateDir(), CERTIFICATE_FILE_NAME));
    expect(process.env.NODE_EXTRA_CA_CERTS).toBe(loadTestCertificate().certPath);
  });

  test('is made once: later calls, here or in another process, get the same pair', () => {
    expect(ensureLocalCertificate({ dir }).cert).toBe(made.cert);
    const again = execFileSync(process.execPath, [
      '--experimental-strip-types',
      '--no-warnings',
      '-e',
      `process.stdout.write(require(${JSON.stringify(CERTIFICATE_MODULE)}).ensureLocalCertificate({ dir: ${JSON.stringify(dir)} }).cert)`,
    ]).toString();
    expect(again).toBe(made.cert);
  });

  test('a client given it as `ca` reaches a stub on 127.0.0.1 and localhost; one without it is refused', async () => {
    const server = await serve(made.cert, made.key);
    try {
      expect(await getWith(made.cert, server.origin)).toBe('ok');
      expect(await getWith(made.cert, server.origin.replace('127.0.0.1', 'localhost'))).toBe('ok');
      expect(await getWith(undefined, server.origin)).toBe('refused: DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      await server.close();
    }
  });

  test('cannot vouch for another certificate: one it signed for example.com is refused by a client that trusts it', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const childKey = path.join(scratch, 'child.key');
    writeFileSync(childKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const quiet = { stdio: 'pipe' } as const;
    const csr = execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-key',
        childKey,
        '-subj',
        '/CN=example.com',
        '-addext',
        'subjectAltName=DNS:example.com,IP:127.0.0.1',
      ],
      quiet,
    );
    const childCert = execFileSync(
      'openssl',
      ['x509', '-req', '-CA', made.certPath, '-CAkey', made.keyPath, '-days', '1', '-copy_extensions', 'copy'],
      { ...quiet, input: csr },
    ).toString();
    const server = await serve(
      `${childCert}${made.cert}`,
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    try {
      // OpenSSL rejects the chain (our certificate is no CA; Node reports it as UNSPECIFIED).
      expect(await getWith(made.cert, server.origin)).toMatch(/^refused: /);
      // ...whereas the same client accepts our own certificate on the same address.
      const own = await serve(made.cert, made.key);
      try {
        expect(await getWith(made.cert, own.origin)).toBe('ok');
      } finally {
        await own.close();
      }
    } finally {
      await server.close();
    }
  });
});

describe('making it', () => {
  test('processes that ask at the same moment all get the one pair that was written first', async () => {
    const dir = freshDir();
    const run = promisify(execFile);
    const code = `process.stdout.write(require(${JSON.stringify(CERTIFICATE_MODULE)}).ensureLocalCertificate({ dir: ${JSON.stringify(dir)} }).cert)`;
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--experimental-strip-types', '--no-warnings', '-e', code]),
      ),
    );
    const certs = new Set(results.map((r) => r.stdout));
    expect(certs.size).toBe(1);
    expect(readFileSync(path.join(dir, CERTIFICATE_FILE_NAME), 'utf8')).toBe([...certs][0]);
    expect(readdirSync(dir).sort()).toEqual([CERTIFICATE_FILE_NAME, KEY_FILE_NAME]);
    expect(readdirSync(scratch).filter((f) => f.includes('.tmp-') || f.includes('.stale-'))).toEqual([]);
  });

  test('a pair whose key does not match is replaced', () => {
    const dir = freshDir();
    const first = ensureLocalCertificate({ dir });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(first.keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const second = ensureLocalCertificate({ dir });
    expect(second.cert).not.toBe(first.cert);
    expect(new X509Certificate(second.cert).checkPrivateKey(createPrivateKey(second.key))).toBe(true);
  });

  test('a CA certificate in its place (like the one this repository used to commit) is replaced', () => {
    const dir = freshDir();
    ensureLocalCertificate({ dir });
    const keyPath = path.join(dir, KEY_FILE_NAME);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        keyPath,
        '-out',
        path.join(dir, CERTIFICATE_FILE_NAME),
        '-days',
        '3650',
        '-subj',
        '/CN=old test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      ],
      {
        env: { ...process.env, OPENSSL_CONF: '/dev/null' },
      },
    );
    const replaced = ensureLocalCertificate({ dir });
    expect(new X509Certificate(replaced.cert).ca).toBe(false);
  });

  test('one that expires within 30 days is renewed', () => {
    const dir = freshDir();
    const first = ensureLocalCertificate({ dir });
    // Same key and names, 10 days left.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        first.keyPath,
        '-out',
        first.certPath,
        '-days',
        '10',
        '-subj',
        '/CN=short',
        '-addext',
        'basicConstraints=critical,CA:FALSE',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      ],
      {
        env: { ...process.env, OPENSSL_CONF: '/dev/null' },
      },
    );
    const short = readFileSync(first.certPath, 'utf8');
    const renewed = ensureLocalCertificate({ dir });
    expect(renewed.cert).not.toBe(short);
    expect(renewed.validTo.getTime() - Date.now()).toBeGreaterThan(360 * 86_400_000);
  });

  test('without openssl it says so', () => {
    const dir = freshDir();
    const path_ = process.env.PATH;
    process.env.PATH = path.join(scratch, 'nothing-here');
    try {
      expect(() => ensureLocalCertificate({ dir })).toThrow(LocalCertificateError);
      expect(() => ensureLocalCertificate({ dir })).toThrow(/openssl command is not installed/);
    } finally {
      process.env.PATH = path_;
    }
  });
});

describe('trust', () => {
  const other = ensureLocalCertificate({ dir: freshDir() });
  const inDefaultList = (cert: string): boolean =>
    tls.getCACertificates('default').some((pem) => pem.replace(/\s+/g, '') === cert.replace(/\s+/g, ''));

  test('starting a stub changes nothing in its process', async () => {
    const stub = await startHttpsServer((_req, res) => void res.end('stub'), { tls: other });
    try {
      expect(inDefaultList(other.cert)).toBe(false);
      expect(await tlsTrustProblem(stub.origin)).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(await getWith(undefined, stub.origin)).toBe('refused: DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(await getWith(other.cert, stub.origin)).toBe('stub');
    } finally {
      await stub.close();
    }
  });

  test('the test workers trust the machine certificate (NODE_EXTRA_CA_CERTS), so the stubs answer them', async () => {
    const stub = await startHttpsServer((_req, res) => void res.end('stub'));
    try {
      expect(await tlsTrustProblem(stub.origin)).toBeUndefined();
      expect(await getWith(undefined, stub.origin)).toBe('stub');
    } finally {
      await stub.close();
    }
  });

  test('trustCertificateInProcess lasts until the last holder releases it', async () => {
    const stub = await startHttpsServer((_req, res) => void res.end('stub'), { tls: other });
    try {
      const releaseA = trustCertificateInProcess(other.cert)!;
      const releaseB = trustCertificateInProcess(other.cert)!;
      expect(inDefaultList(other.cert)).toBe(true);
      expect(await tlsTrustProblem(stub.origin)).toBeUndefined();
      expect(await getWith(undefined, stub.origin)).toBe('stub');
      releaseA();
      releaseA();
      expect(inDefaultList(other.cert)).toBe(true);
      releaseB();
      expect(inDefaultList(other.cert)).toBe(false);
      expect(await tlsTrustProblem(stub.origin)).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      await stub.close();
    }
  });

  test('a certificate trusted before (NODE_EXTRA_CA_CERTS) stays trusted after a release', () => {
    const mine = loadTestCertificate().cert;
    expect(inDefaultList(mine)).toBe(true);
    trustCertificateInProcess(mine)!();
    expect(inDefaultList(mine)).toBe(true);
  });
});
