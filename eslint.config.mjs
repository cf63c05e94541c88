import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const STORAGE_SDKS = ['@azure/data-tables', '@azure/storage-queue'].map((name) => ({
  name,
  message: `Only src/store may use ${name}.`,
}));
/** Node's I/O modules, with and without the node: prefix. */
const IO_MODULES = [
  'undici',
  'jose',
  ...['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'dgram', 'tls', 'child_process'].flatMap((m) => [
    m,
    `node:${m}`,
  ]),
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      '.azurite/**',
      'bench/baseline/node_modules/**',
      'appPackage/build/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Thin triggers: configuration and clients come from the composition root, never from here.
    files: ['src/functions/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read settings through src/config.ts.' },
      ],
    },
  },
  // ---- Boundaries (STYLE.md 1, 2, 9) ------------------------------------------------------------
  // ESLint does not merge the options of one rule across config objects: for a file, the last
  // matching `no-restricted-imports` wins. So each block below repeats what an earlier one forbids
  // (the storage SDKs), and the more specific folders come later.
  {
    // Storage SDKs only in the store adapters. src/cli/storage.ts names the type of the queue
    // client the store hands it (`import type { QueueClient }`): a type, no second client.
    files: ['src/**/*.ts'],
    ignores: ['src/store/**', 'src/cli/storage.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: STORAGE_SDKS }],
    },
  },
  {
    // A core that needs no cloud: pure functions of their inputs, no I/O module, no adapter.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...STORAGE_SDKS,
            ...IO_MODULES.map((name) => ({ name, message: 'src/core is pure: no I/O. Take the data as an argument.' })),
          ],
          patterns: [
            { group: ['@azure/*'], message: 'src/core is pure: no Azure SDK.' },
            {
              regex: '^(\\.\\./)+(src/)?(store|connector|auth|outbound|flows)(/|$)',
              message:
                'src/core is pure: it imports no adapter (store, connector, auth) and no use case (outbound, flows); they import it.',
            },
          ],
        },
      ],
    },
  },
  {
    // Thin triggers: @azure/functions, the log, the composition root, startup, and the use case's
    // handler (one per trigger, which lint cannot count), nothing else.
    files: ['src/functions/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@azure/functions$|\\.\\./(log|runtime|startup)$|\\.\\./(inbound|flows|outbound)/[^/]+$)',
              message:
                'A trigger registers and delegates: import only @azure/functions, ../log, ../runtime, ../startup and its handler in ../inbound, ../flows or ../outbound.',
            },
          ],
        },
      ],
    },
  },
);
