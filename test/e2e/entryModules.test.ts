/**
 * Cold start guard: the Functions worker loads every file `package.json` `main` matches before the
 * first invocation, whichever function it is for. Those modules must load no storage, identity or
 * HTTP SDK (each costs tens to hundreds of milliseconds of a cold start that the Bot Connector
 * waits for): the composition root (src/runtime.ts) loads them on first use. This runs the compiled
 * app in a fresh node process, as the worker does, and lists the packages it loaded.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findFiles } from '../../host/glob';
import { ensureBuilt, ROOT } from '../chaos/harness';

/** What registering the functions may load: the programming model and Node's own modules. */
const ALLOWED = new Set(['@azure/functions', '@azure/functions-extensions-base', 'cookie']);

describe('the entry modules the Functions worker loads at start-up', () => {
  it('load no storage, identity, JWT or HTTP client package', () => {
    ensureBuilt();
    const { main } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string };
    const entries = findFiles(main, ROOT).map((f) => path.join(ROOT, f));
    expect(entries.length).toBeGreaterThanOrEqual(3);
    const code = [
      "const Module = require('node:module');",
      'const seen = new Set(); const load = Module._load;',
      "Module._load = function (request, ...rest) { if (!request.startsWith('.') && !request.startsWith('/') && !request.startsWith('node:') && !require('node:module').isBuiltin(request)) seen.add(request.split('/').slice(0, request.startsWith('@') ? 2 : 1).join('/')); return load.call(this, request, ...rest); };",
      `const { FunctionsCore, installCoreModule } = require(${JSON.stringify(path.join(ROOT, 'dist/host/functionsCore.js'))});`,
      'const core = new FunctionsCore(() => {}); installCoreModule(core.api); seen.clear();',
      `for (const f of ${JSON.stringify(entries)}) { core.currentEntryPoint = f; require(f); }`,
      'process.stdout.write(JSON.stringify({ packages: [...seen].sort(), functions: core.functions.size }));',
    ].join('\n');
    const result = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(result.status, result.stderr).toBe(0);
    const { packages, functions } = JSON.parse(result.stdout) as { packages: string[]; functions: number };
    expect(functions).toBeGreaterThanOrEqual(3);
    expect(packages.filter((p) => !ALLOWED.has(p))).toEqual([]);
    // ensureBuilt may compile first (about 20 s on two busy cores).
  }, 120_000);
});
