/**
 * vitest `globalSetup` (vitest.config.mts), run once in vitest's own process before any test worker
 * starts, so workers never race to make the certificate.
 *
 * The local HTTPS stubs (OpenID metadata, Entra token endpoint, Bot Connector) present the machine's
 * own loopback-only certificate (`.local-certs/`, made here on first use). The test workers run the
 * app's clients against the stubs, and those clients take no `ca` option, so the workers trust it
 * through NODE_EXTRA_CA_CERTS. Node reads it when a process starts: set here, it reaches every
 * worker vitest forks afterwards and every child process a test starts. It replaces any value the
 * machine had (often the system bundle), which the tests do not need.
 */
import { ensureLocalCertificate } from '../../host/emulator/certificate';

export default function setup(): void {
  process.env.NODE_EXTRA_CA_CERTS = ensureLocalCertificate().certPath;
}
