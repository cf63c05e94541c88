import { defineConfig } from 'vitest/config';
import { ensureLocalCertificate } from './host/emulator/certificate';

// The stubs' loopback certificate reaches the test workers through NODE_EXTRA_CA_CERTS, which Node
// reads when a process starts. test/host/globalSetup.ts sets it too; it is set here as well, as the
// config loads in Stryker's runner process, before that starts any worker.
process.env.NODE_EXTRA_CA_CERTS = ensureLocalCertificate().certPath;

// The tests `npm run test:mutation` (stryker.config.mjs) runs against each mutant: the unit and
// integration files that exercise the mutated modules, and nothing slower. Stryker narrows this
// further per mutant (coverage per test).
export default defineConfig({
  test: {
    include: [
      // src/core, the token verifiers' unit tests, the trust check, the bot token, the send budget
      'test/unit/**/*.test.ts',
      // src/auth against the local OpenID, Entra and JWKS stubs
      'test/integration/messages.test.ts',
      'test/integration/callerToken.test.ts',
      'test/integration/openIdKeys.test.ts',
      // the claim (src/store/deliveryStore.ts), against Azurite
      'test/integration/deliveryStore.test.ts',
      'test/integration/tableRest.test.ts',
    ],
    globalSetup: ['test/host/globalSetup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    restoreMocks: true,
  },
});
