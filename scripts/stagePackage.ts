/**
 * Stages the Function App's deployment package: the compiled app and its production dependencies,
 * nothing else. Both deployment paths ship exactly this folder:
 *
 * - `azd deploy` / `azd up`: azure.yaml runs this script as the service's `prepackage` hook and
 *   points `dist` at the folder, so azd zips `dist/package` instead of the project directory (which
 *   holds every devDependency: about 370 MB of node_modules instead of about 48 MB).
 * - the Azure CLI path in docs/deploy.md: `--zip dist/app.zip`, then `az functionapp deployment
 *   source config-zip --src dist/app.zip`.
 *
 *   npm run build && node dist/scripts/stagePackage.js [--out <dir>] [--zip <file.zip>]
 *
 * The folder (default `dist/package`, under the git-ignored, lint-ignored `dist/`):
 *
 *   host.json  package.json  package-lock.json
 *   dist/src/...       the compiled app (`npm run build`), without source maps
 *   node_modules/      `npm ci --omit=dev`: the lockfile's production packages, nothing else;
 *                      source maps and type declarations removed (Node never loads them)
 *
 * Then it checks what it staged, and fails instead of shipping a package that would break at cold
 * start: no installed package is one the lockfile marks `dev`, and every package the compiled code
 * requires is in `dependencies` and installed. Install scripts are skipped: no production package
 * has one (test/infra/deployPackage.test.ts), so a package staged on any OS runs on Linux.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createZip, type ZipEntry } from './packageTeams';

/** Files copied from the project root; the app needs host.json and package.json (`main`). */
const ROOT_FILES = ['host.json', 'package.json', 'package-lock.json'] as const;
/** Never loaded at run time: source maps (no --enable-source-maps here) and type declarations. */
const PRUNED_FILE = /\.(?:map|d\.ts|d\.mts|d\.cts|tsbuildinfo)$/;
/** The ZIP writer in packageTeams has no ZIP64: at most 65,535 entries. */
const MAX_ZIP_ENTRIES = 0xffff;

export interface StagePackageOptions {
  /** Project root: host.json, package.json, package-lock.json. */
  readonly root: string;
  /** Compiled `src` (tsc output). Default `<root>/dist/src`. */
  readonly compiledDir?: string;
  /** Staging folder, emptied first. Default `<root>/dist/package` (azure.yaml `dist`). */
  readonly outDir?: string;
  /** Also write the folder as a ZIP here (the CLI path uploads it). */
  readonly zipPath?: string;
  /** Runs npm; tests may pass their own. Default: the npm that runs this script, else `npm` on PATH. */
  readonly runNpm?: (args: readonly string[], cwd: string) => void;
}

export interface InstalledPackage {
  /** Lockfile-style path, e.g. `node_modules/@azure/identity`. */
  readonly location: string;
  readonly name: string;
  readonly version: string;
}

export interface StagedPackage {
  readonly outDir: string;
  readonly packages: readonly InstalledPackage[];
  readonly fileCount: number;
  /** Sum of file sizes (what the ZIP holds before compression). */
  readonly bytes: number;
  readonly zipPath?: string;
  readonly zipBytes?: number;
}

interface Lockfile {
  readonly packages: Record<
    string,
    {
      readonly version?: string;
      readonly dev?: boolean;
      readonly optional?: boolean;
      readonly devOptional?: boolean;
      readonly link?: boolean;
    }
  >;
}

interface PackageJson {
  readonly main?: string;
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

/** Runs npm with fixed arguments: through the npm CLI script when npm started us, else from PATH. */
export function defaultRunNpm(args: readonly string[], cwd: string): void {
  const npmCli = process.env.npm_execpath;
  const result =
    npmCli !== undefined && /\.c?js$/.test(npmCli)
      ? spawnSync(process.execPath, [npmCli, ...args], { cwd, encoding: 'utf8' })
      : // npm is npm.cmd on Windows, which Node starts only through a shell; the arguments are constants.
        spawnSync('npm', [...args], { cwd, encoding: 'utf8', shell: process.platform === 'win32' });
  if (result.error) throw new Error(`npm ${args[0]}: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`npm ${args.join(' ')} failed (exit ${String(result.status)}):\n${output}`);
  }
}

/** Every file under `dir`, as paths relative to it with `/` separators, sorted. */
function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

/** The packages installed under `<dir>/node_modules`, nested ones included. */
export function listInstalledPackages(dir: string): InstalledPackage[] {
  const found: InstalledPackage[] = [];
  const visit = (modulesDir: string, location: string) => {
    if (!fs.existsSync(modulesDir)) return;
    for (const entry of fs.readdirSync(modulesDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const names = entry.name.startsWith('@')
        ? fs
            .readdirSync(path.join(modulesDir, entry.name), { withFileTypes: true })
            .filter((e) => e.isDirectory())
            .map((e) => `${entry.name}/${e.name}`)
        : [entry.name];
      for (const name of names) {
        const packageDir = path.join(modulesDir, name);
        const manifest = path.join(packageDir, 'package.json');
        if (!fs.existsSync(manifest)) continue;
        const { version } = readJson<{ version?: string }>(manifest);
        const here = `${location}/${name}`;
        found.push({ location: here, name, version: version ?? '' });
        visit(path.join(packageDir, 'node_modules'), `${here}/node_modules`);
      }
    }
  };
  visit(path.join(dir, 'node_modules'), 'node_modules');
  return found.sort((a, b) => a.location.localeCompare(b.location));
}

/** Package names the compiled code requires (`require("x")`, `require("@s/x/sub")` -> `@s/x`), builtins left out. */
export function requiredPackages(compiledDir: string): string[] {
  const names = new Set<string>();
  for (const file of listFiles(compiledDir).filter((f) => f.endsWith('.js'))) {
    const text = fs.readFileSync(path.join(compiledDir, file), 'utf8');
    for (const match of text.matchAll(/\brequire\(\s*["']([^"'.][^"']*)["']\s*\)/g)) {
      const specifier = match[1]!;
      if (isBuiltin(specifier)) continue;
      const parts = specifier.split('/');
      names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return [...names].sort();
}

/**
 * Problems with a staged folder: dev packages installed, production packages missing, or a package
 * the code requires that is not a production dependency. Empty = good to ship.
 */
export function checkStagedPackage(outDir: string, lock: Lockfile, manifest: PackageJson): string[] {
  const problems: string[] = [];
  const installed = listInstalledPackages(outDir);
  const installedAt = new Set(installed.map((p) => p.location));
  for (const pkg of installed) {
    const entry = lock.packages[pkg.location];
    if (entry === undefined) problems.push(`${pkg.location} is installed but not in package-lock.json`);
    else if (entry.dev === true) problems.push(`${pkg.location} is a devDependency (package-lock.json "dev": true)`);
  }
  for (const [location, entry] of Object.entries(lock.packages)) {
    if (
      location === '' ||
      entry.dev === true ||
      entry.optional === true ||
      entry.devOptional === true ||
      entry.link === true
    )
      continue;
    if (!installedAt.has(location)) problems.push(`${location} (production) is missing`);
  }
  const dependencies = new Set(Object.keys(manifest.dependencies ?? {}));
  for (const name of requiredPackages(path.join(outDir, 'dist', 'src'))) {
    if (!dependencies.has(name)) problems.push(`the app requires "${name}", which is not in package.json dependencies`);
    else if (!installedAt.has(`node_modules/${name}`))
      problems.push(`the app requires "${name}", which is not installed`);
  }
  return problems;
}

/** Refuses to empty a folder that is the project, contains it, or holds something other than an earlier stage. */
function clearOutDir(outDir: string, root: string): void {
  const relative = path.relative(outDir, root);
  if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
    throw new Error(`refusing to empty ${outDir}: it contains the project`);
  }
  if (fs.existsSync(outDir)) {
    const entries = fs.readdirSync(outDir);
    const earlierStage = entries.includes('host.json') && entries.includes('package.json') && !entries.includes('.git');
    if (entries.length > 0 && !earlierStage)
      throw new Error(`refusing to empty ${outDir}: it is not an earlier staged package`);
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  fs.mkdirSync(outDir, { recursive: true });
}

export function stagePackage(options: StagePackageOptions): StagedPackage {
  const root = path.resolve(options.root);
  const compiledDir = path.resolve(options.compiledDir ?? path.join(root, 'dist', 'src'));
  const outDir = path.resolve(options.outDir ?? path.join(root, 'dist', 'package'));
  const runNpm = options.runNpm ?? defaultRunNpm;

  for (const file of ROOT_FILES) {
    if (!fs.existsSync(path.join(root, file))) throw new Error(`${file} is missing in ${root}`);
  }
  const manifest = readJson<PackageJson>(path.join(root, 'package.json'));
  // `main` is a glob such as dist/src/functions/*.js: the compiled app must be where it points.
  const mainDir = (manifest.main ?? '').split(/[*{]/)[0]!.replace(/\/[^/]*$/, '');
  if (!mainDir.startsWith('dist/src'))
    throw new Error(`package.json main (${manifest.main ?? 'unset'}) must point into dist/src`);
  const entryDir = path.join(compiledDir, path.relative('dist/src', mainDir));
  if (!fs.existsSync(entryDir) || !fs.readdirSync(entryDir).some((f) => f.endsWith('.js'))) {
    throw new Error(`no compiled functions in ${entryDir}: run \`npm run build\` first`);
  }

  clearOutDir(outDir, root);
  for (const file of ROOT_FILES) fs.copyFileSync(path.join(root, file), path.join(outDir, file));
  fs.cpSync(compiledDir, path.join(outDir, 'dist', 'src'), { recursive: true, filter: (src) => !src.endsWith('.map') });

  // `npm ci` installs exactly the lockfile; --omit=dev leaves every devDependency out. The cache
  // is used first, so a machine that ran `npm ci` for the project stages without the network.
  runNpm(
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    outDir,
  );
  // Command shims (symlinks on POSIX): nothing runs them in Azure, and ZIP tools treat links differently.
  fs.rmSync(path.join(outDir, 'node_modules', '.bin'), { recursive: true, force: true });
  for (const file of listFiles(path.join(outDir, 'node_modules'))) {
    if (PRUNED_FILE.test(file)) fs.rmSync(path.join(outDir, 'node_modules', file));
  }

  const problems = checkStagedPackage(outDir, readJson<Lockfile>(path.join(root, 'package-lock.json')), manifest);
  if (problems.length > 0) throw new Error(`the staged package is not production-only:\n  ${problems.join('\n  ')}`);

  const files = listFiles(outDir);
  const bytes = files.reduce((sum, f) => sum + fs.statSync(path.join(outDir, f)).size, 0);
  const staged = { outDir, packages: listInstalledPackages(outDir), fileCount: files.length, bytes };
  if (options.zipPath === undefined) return staged;

  if (files.length > MAX_ZIP_ENTRIES) throw new Error(`${files.length} files: more than a ZIP without ZIP64 holds`);
  const zipPath = path.resolve(options.zipPath);
  const entries: ZipEntry[] = files.map((name) => ({ name, data: fs.readFileSync(path.join(outDir, name)) }));
  fs.mkdirSync(path.dirname(zipPath), { recursive: true });
  fs.writeFileSync(zipPath, createZip(entries));
  return { ...staged, zipPath, zipBytes: fs.statSync(zipPath).size };
}

const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, zip: { type: 'string' } },
    strict: true,
  });
  const root = process.cwd();
  const staged = stagePackage({
    root,
    ...(values.out === undefined ? {} : { outDir: values.out }),
    ...(values.zip === undefined ? {} : { zipPath: values.zip }),
  });
  console.log(`Deployment package: ${path.relative(root, staged.outDir) || '.'}`);
  console.log(
    `  ${staged.packages.length} production packages, no devDependency; ${staged.fileCount} files, ${megabytes(staged.bytes)}`,
  );
  if (staged.zipPath !== undefined)
    console.log(`  ZIP: ${path.relative(root, staged.zipPath)}, ${megabytes(staged.zipBytes ?? 0)}`);
}

// Run only as a script (`node dist/scripts/stagePackage.js`), not when imported by tests.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === __filename) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`stagePackage: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
