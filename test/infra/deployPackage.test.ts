/**
 * The package azd (and the CLI path) deploys: built here from the real sources and lockfile with
 * scripts/stagePackage.ts, into a temporary folder, then checked for devDependencies, for what the
 * app needs at run time, and for its size against docs/deploy.md.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listInstalledPackages, requiredPackages, stagePackage, type StagedPackage } from '../../scripts/stagePackage';
import { REPO_ROOT } from './arm';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  hasInstallScript?: boolean;
  os?: string[];
  cpu?: string[];
}
const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  main: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lockPackages = Object.entries(lock.packages).filter(([location]) => location !== '');
const production = lockPackages.filter(([, entry]) => entry.dev !== true);

let tmp: string;
let staged: StagedPackage;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-package-'));
  // A fresh build of the real sources (npm run build, into the temporary folder). tsc writes its
  // output even when a file elsewhere in the tree has a type error; the functions must be there.
  const tsc = spawnSync(
    process.execPath,
    [
      path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      path.join(tmp, 'build'),
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  expect(fs.existsSync(path.join(tmp, 'build/src/functions')), tsc.stdout + tsc.stderr).toBe(true);
  staged = stagePackage({
    root: REPO_ROOT,
    compiledDir: path.join(tmp, 'build/src'),
    outDir: path.join(tmp, 'package'),
    zipPath: path.join(tmp, 'app.zip'),
  });
}, 60_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('deployment package', () => {
  it('holds host.json, package.json, the lockfile, the compiled app and node_modules, nothing else', () => {
    expect(fs.readdirSync(staged.outDir).sort()).toEqual([
      'dist',
      'host.json',
      'node_modules',
      'package-lock.json',
      'package.json',
    ]);
    expect(fs.readdirSync(path.join(staged.outDir, 'dist'))).toEqual(['src']);
    const functionsDir = manifest.main.replace(/\/[^/]*$/, '');
    expect(
      fs.readdirSync(path.join(staged.outDir, functionsDir)).filter((f) => f.endsWith('.js')).length,
    ).toBeGreaterThan(0);
  });

  it('installs exactly the production packages of the lockfile: no devDependency, none missing', () => {
    const installed = staged.packages.map((p) => p.location);
    const productionAt = new Set(production.map(([location]) => location));
    expect(installed.filter((location) => !productionAt.has(location))).toEqual([]);
    expect(
      production.filter(([location, e]) => e.optional !== true && !installed.includes(location)).map(([l]) => l),
    ).toEqual([]);
    const devNames = new Set(Object.keys(manifest.devDependencies));
    expect(staged.packages.filter((p) => devNames.has(p.name) && !(p.name in manifest.dependencies))).toEqual([]);
    expect(staged.packages.filter((p) => lock.packages[p.location]?.dev === true)).toEqual([]);
    // The project itself has hundreds of dev packages; the package must not carry them.
    expect(lockPackages.length - production.length).toBeGreaterThan(100);
  });

  it('has every package the compiled app requires, each a production dependency', () => {
    const required = requiredPackages(path.join(staged.outDir, 'dist/src'));
    expect(required).toEqual(expect.arrayContaining(['@azure/functions']));
    for (const name of required) {
      expect(Object.keys(manifest.dependencies), name).toContain(name);
      expect(fs.existsSync(path.join(staged.outDir, 'node_modules', name, 'package.json')), name).toBe(true);
    }
  });

  it('loads its functions and every required package from the package folder alone', () => {
    const probe = `
      const fs = require('node:fs'), path = require('node:path');
      const dir = path.resolve(${JSON.stringify(manifest.main.replace(/\/[^/]*$/, ''))});
      for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) require(path.join(dir, f));
      for (const name of ${JSON.stringify(requiredPackages(path.join(staged.outDir, 'dist/src')))}) require(name);
      process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
    // NODE_PATH cleared: resolution walks up from the folder, which holds the only node_modules.
    const run = spawnSync(process.execPath, ['-e', probe], {
      cwd: staged.outDir,
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: '' },
    });
    expect(run.status, run.stderr).toBe(0);
    const loaded = JSON.parse(run.stdout) as string[];
    expect(loaded.length).toBeGreaterThan(10);
    expect(loaded.filter((file) => !file.startsWith(staged.outDir + path.sep))).toEqual([]);
  });

  it('needs no install script and no platform-specific binary, so it can be staged on any OS', () => {
    expect(
      production
        .filter(([, e]) => e.hasInstallScript === true || e.os !== undefined || e.cpu !== undefined)
        .map(([l]) => l),
    ).toEqual([]);
    expect(fs.existsSync(path.join(staged.outDir, 'node_modules/.bin'))).toBe(false);
  });

  it('leaves out source maps and type declarations', () => {
    const all = fs.readdirSync(staged.outDir, { recursive: true }) as string[];
    expect(all.filter((f) => /\.(map|d\.ts|d\.mts|d\.cts)$/.test(f))).toEqual([]);
  });

  it('writes a ZIP with every file of the folder', () => {
    expect(staged.zipBytes).toBeGreaterThan(0);
    const probe = spawnSync('unzip', ['-Z1', staged.zipPath!], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (probe.error) return; // no unzip on this machine
    expect(probe.stdout.trim().split('\n').length).toBe(staged.fileCount);
  });

  it('is the size docs/deploy.md states (within 30%), and small', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/deploy.md'), 'utf8');
    const m =
      /production-only package:\s+(\d+)\s+packages,\s+about\s+(\d+(?:\.\d+)?)\s+MB\s+in\s+[\d,]+\s+files,\s+a\s+(\d+(?:\.\d+)?)\s+MB\s+ZIP/.exec(
        doc,
      );
    expect(m, 'docs/deploy.md states the package size').not.toBeNull();
    const [, packages, megabytes, zipMegabytes] = m!.map(Number);
    expect(packages).toBe(staged.packages.length);
    expect(Math.abs(staged.bytes / 1e6 - megabytes!) / megabytes!).toBeLessThan(0.3);
    expect(Math.abs(staged.zipBytes! / 1e6 - zipMegabytes!) / zipMegabytes!).toBeLessThan(0.3);
    expect(staged.bytes).toBeLessThan(60e6);
  });
});

describe('stagePackage safety', () => {
  it('refuses to empty a folder that is not an earlier staged package, or that holds the project', () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-not-a-package-'));
    fs.writeFileSync(path.join(other, 'keep.txt'), 'mine');
    const noNpm = () => {
      throw new Error('npm must not run');
    };
    try {
      expect(() =>
        stagePackage({ root: REPO_ROOT, compiledDir: path.join(tmp, 'build/src'), outDir: other, runNpm: noNpm }),
      ).toThrow(/not an earlier staged package/);
      expect(fs.readFileSync(path.join(other, 'keep.txt'), 'utf8')).toBe('mine');
      expect(() =>
        stagePackage({ root: REPO_ROOT, compiledDir: path.join(tmp, 'build/src'), outDir: REPO_ROOT, runNpm: noNpm }),
      ).toThrow(/contains the project/);
      expect(() =>
        stagePackage({
          root: REPO_ROOT,
          compiledDir: path.join(tmp, 'nothing'),
          outDir: path.join(other, 'x'),
          runNpm: noNpm,
        }),
      ).toThrow(/run `npm run build` first/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('lists nested packages with their lockfile paths', () => {
    const nested = staged.packages.filter((p) => p.location.split('node_modules/').length > 2);
    for (const p of nested) expect(lock.packages[p.location], p.location).toBeDefined();
    expect(listInstalledPackages(staged.outDir)).toEqual(staged.packages);
  });
});

describe('azd packaging (azure.yaml)', () => {
  const yaml = fs.readFileSync(path.join(REPO_ROOT, 'azure.yaml'), 'utf8');
  const api = /^ {2}api:\n((?: {4}.*\n|\s*\n)+)/m.exec(yaml)?.[1] ?? '';

  it('deploys the staged folder: dist points at it, and the prepackage hook stages it on POSIX and Windows', () => {
    expect(api).toMatch(/^ {4}dist: dist\/package$/m);
    expect(api).toMatch(/^ {4}remoteBuild: false$/m);
    const hook = /^ {4}hooks:\n {6}prepackage:\n((?: {8}.*\n)+)/m.exec(api)?.[1] ?? '';
    const posix = /^ {8}posix:\n((?: {10}.*\n)+)/m.exec(hook)?.[1] ?? '';
    const windows = /^ {8}windows:\n((?: {10}.*\n)+)/m.exec(hook)?.[1] ?? '';
    expect(posix).toMatch(/run: npm run build && node dist\/scripts\/stagePackage\.js$/m);
    expect(windows).toMatch(/shell: pwsh/);
    expect(windows).toMatch(/npm run build;.*node dist\/scripts\/stagePackage\.js/);
  });

  it('keeps node_modules in .funcignore (azd rejects remoteBuild: false otherwise) and leaves the staging folder out', () => {
    const ignore = fs
      .readFileSync(path.join(REPO_ROOT, '.funcignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(ignore.filter((l) => /^\/?node_modules\/?$/.test(l))).toEqual([]);
    expect(ignore).toContain('dist/package');
  });
});
