/**
 * The TLS certificate of the emulator's HTTPS stubs (OpenID metadata, Entra, Bot Connector).
 *
 * Not committed: each machine makes its own on first use, in `.local-certs/` at the repository root
 * (git-ignored, and to be left out of deployment packages by `.funcignore`). It is a self-signed
 * *leaf*: `CA:FALSE`, key usage without `keyCertSign`, `serverAuth` only, and names limited to
 * loopback (`localhost`, `127.0.0.1`, `::1`). A client that trusts it can therefore be fooled about
 * nothing but this machine's loopback interface: it cannot vouch for any other certificate.
 *
 * The key pair comes from node:crypto; the `openssl` command only signs the certificate (node:crypto
 * cannot write X.509; openssl is on the Debian images the project and CI run on). Any process may be
 * first (vitest's globalSetup, the host, a test, the benchmark), so the pair is written to a
 * temporary folder and renamed into place in one step: the first rename wins, and everyone else
 * reads the winner's files.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The folder's name at the repository root (git-ignored). */
export const LOCAL_CERTIFICATE_DIR_NAME = '.local-certs';
export const CERTIFICATE_FILE_NAME = 'localhost.crt';
export const KEY_FILE_NAME = 'localhost.key';
/** The only names the certificate is valid for. */
export const LOCAL_CERTIFICATE_HOSTS = ['localhost', '127.0.0.1', '::1'] as const;
/** A year: a copied key stops working on its own; renewed when fewer than RENEW_BEFORE_MS remain. */
export const CERTIFICATE_VALIDITY_DAYS = 365;
export const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;
const MAX_ATTEMPTS = 5;

export interface LocalCertificate {
  /** PEM certificate: what clients of the stubs trust. */
  readonly cert: string;
  /** PEM private key (PKCS #8), also usable as a client-certificate key for BOT_CERTIFICATE experiments. */
  readonly key: string;
  /** Absolute path of the certificate (what NODE_EXTRA_CA_CERTS or a client's `ca` option points at). */
  readonly certPath: string;
  readonly keyPath: string;
  readonly validTo: Date;
}

export interface EnsureLocalCertificateOptions {
  /** Folder of the pair. Default: `.local-certs` in the repository root (the nearest folder above this module with a package.json). */
  readonly dir?: string;
}

export class LocalCertificateError extends Error {
  override readonly name = 'LocalCertificateError';
}

/** `<repository root>/.local-certs`, found from this module's place (host/emulator or dist/host/emulator). */
export function defaultCertificateDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, LOCAL_CERTIFICATE_DIR_NAME);
    if (path.dirname(dir) === dir)
      throw new LocalCertificateError(`No package.json above ${__dirname}; pass ensureLocalCertificate({ dir })`);
  }
}

type ReadResult =
  { kind: 'ok'; certificate: LocalCertificate } | { kind: 'missing' } | { kind: 'unusable'; reason: string };

/**
 * The emulator's certificate and key, made on first use (then read from disk: a few milliseconds).
 * Safe to call from any number of processes at once. Throws LocalCertificateError when it cannot make
 * one (no `openssl` on PATH, a read-only folder).
 */
export function ensureLocalCertificate(options: EnsureLocalCertificateOptions = {}): LocalCertificate {
  const dir = path.resolve(options.dir ?? defaultCertificateDir());
  let lastReason = '';
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const found = readCertificate(dir);
    if (found.kind === 'ok' && isFresh(found.certificate)) return found.certificate;
    if (found.kind === 'unusable' && attempt === 1) {
      // Perhaps read while another process swapped the pair: look once more before replacing it.
      lastReason = found.reason;
      continue;
    }
    if (found.kind !== 'missing') {
      lastReason = found.kind === 'ok' ? `expires ${found.certificate.validTo.toISOString()}` : found.reason;
      moveAside(dir);
    }
    publish(dir);
  }
  throw new LocalCertificateError(
    `Could not set up the emulator certificate in ${dir}${lastReason ? ` (${lastReason})` : ''}`,
  );
}

function isFresh(certificate: LocalCertificate): boolean {
  return certificate.validTo.getTime() - Date.now() > RENEW_BEFORE_MS;
}

function readCertificate(dir: string): ReadResult {
  const certPath = path.join(dir, CERTIFICATE_FILE_NAME);
  const keyPath = path.join(dir, KEY_FILE_NAME);
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certPath, 'utf8');
    key = readFileSync(keyPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // An empty folder left behind (or a half-deleted one) counts as missing; a rename cannot replace it everywhere.
      removeIfEmpty(dir);
      return existsSync(dir)
        ? { kind: 'unusable', reason: `${CERTIFICATE_FILE_NAME} or ${KEY_FILE_NAME} is missing` }
        : { kind: 'missing' };
    }
    return { kind: 'unusable', reason: (error as Error).message };
  }
  try {
    const x509 = new X509Certificate(cert);
    if (x509.ca) return { kind: 'unusable', reason: 'it is a CA certificate' };
    if (!x509.checkPrivateKey(createPrivateKey(key)))
      return { kind: 'unusable', reason: 'the key does not match the certificate' };
    if (
      LOCAL_CERTIFICATE_HOSTS.some((host) => (net.isIP(host) ? x509.checkIP(host) : x509.checkHost(host)) === undefined)
    ) {
      return { kind: 'unusable', reason: `it is not valid for ${LOCAL_CERTIFICATE_HOSTS.join(', ')}` };
    }
    const foreign = subjectAltNames(x509).filter((name) => !isLoopbackName(name));
    if (foreign.length > 0) return { kind: 'unusable', reason: `it also names ${foreign.join(', ')}` };
    return { kind: 'ok', certificate: { cert, key, certPath, keyPath, validTo: new Date(x509.validTo) } };
  } catch (error) {
    return { kind: 'unusable', reason: `unreadable: ${(error as Error).message}` };
  }
}

/** `DNS:localhost`, `IP Address:127.0.0.1`, ... as node:crypto lists them. */
function subjectAltNames(x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? '').split(', ').filter((name) => name !== '');
}

function isLoopbackName(name: string): boolean {
  if (name === 'DNS:localhost') return true;
  const ip = /^IP Address:(.+)$/.exec(name)?.[1];
  if (ip === undefined) return false;
  return (net.isIPv4(ip) && ip.startsWith('127.')) || ip === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(ip);
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Gone already, or not empty: either way nothing to do.
  }
}

/** Moves a stale pair out of the way (one process succeeds); puts it back if it turns out to be a fresh one another process just wrote. */
function moveAside(dir: string): void {
  const aside = `${dir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(dir, aside);
  } catch {
    return; // Someone else moved it, or it is gone.
  }
  const moved = readCertificate(aside);
  if (moved.kind === 'ok' && isFresh(moved.certificate)) {
    try {
      renameSync(aside, dir);
      return;
    } catch {
      // A newer pair is in place already.
    }
  }
  rmSync(aside, { recursive: true, force: true });
}

/** Makes a pair in a temporary folder and renames it to `dir`; loses quietly to a pair that got there first. */
function publish(dir: string): void {
  mkdirSync(path.dirname(dir), { recursive: true });
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(staging, { mode: 0o700 });
  try {
    generateInto(staging);
    try {
      renameSync(staging, dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another process won (ENOTEMPTY/EEXIST; EPERM on Windows): its pair is read on the next pass.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The subject gets a random suffix: OpenSSL finds a trust anchor by subject name, so two of these
 * certificates with one name (an old one in NODE_EXTRA_CA_CERTS, a new one added at run time) would
 * shadow each other.
 */
const opensslConfig = (): string =>
  [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = teams-courier local emulator ${randomBytes(6).toString('hex')}`,
    '[leaf]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${LOCAL_CERTIFICATE_HOSTS.map((host) => (net.isIP(host) ? `IP:${host}` : `DNS:${host}`)).join(', ')}`,
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n');

function generateInto(folder: string): void {
  // RSA: the Entra stub also takes this certificate for client assertions, which MSAL signs with RS256/PS256.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPath = path.join(folder, KEY_FILE_NAME);
  const certPath = path.join(folder, CERTIFICATE_FILE_NAME);
  const configPath = path.join(folder, 'openssl.cnf');
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(configPath, opensslConfig());
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        keyPath,
        '-out',
        certPath,
        '-days',
        String(CERTIFICATE_VALIDITY_DAYS),
        '-sha256',
        '-config',
        configPath,
        '-extensions',
        'leaf',
      ],
      // OPENSSL_CONF: nothing from the machine's openssl.cnf (e.g. default extensions) gets in.
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, env: { ...process.env, OPENSSL_CONF: configPath } },
    );
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    const why =
      e.code === 'ENOENT'
        ? 'the openssl command is not installed (or not on PATH)'
        : (e.stderr?.toString().trim() || e.message).split('\n')[0];
    throw new LocalCertificateError(`Could not make the emulator's localhost certificate: ${why}`, { cause: error });
  } finally {
    rmSync(configPath, { force: true });
  }
  const made = readCertificate(folder);
  if (made.kind !== 'ok')
    throw new LocalCertificateError(
      `openssl made an unusable certificate: ${made.kind === 'unusable' ? made.reason : 'files missing'}`,
    );
  if (!isFresh(made.certificate))
    throw new LocalCertificateError(
      `openssl made a certificate that expires ${made.certificate.validTo.toISOString()}`,
    );
}
