/**
 * The small glob subset that package.json `main` uses for Azure Functions entry points
 * (the worker uses globby; see Azure/azure-functions-nodejs-worker#617):
 * `*` and `?` within one path segment, `**` for any number of segments, `{a,b}` alternatives
 * (nestable). Like globby's defaults, only files match, and `*` / `**` skip dot-entries and
 * node_modules unless the pattern names them literally.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Expands `{a,b}` groups: `src/{index.js,functions/*.js}` -> `src/index.js`, `src/functions/*.js`. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  let close = -1;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    } else if (ch === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [pattern];
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const bounds = [open, ...commas, close];
  const results: string[] = [];
  for (let i = 0; i < bounds.length - 1; i++) {
    const option = pattern.slice(bounds[i]! + 1, bounds[i + 1]);
    for (const expanded of expandBraces(head + option + tail)) results.push(expanded);
  }
  return results;
}

export function hasMagic(pattern: string): boolean {
  return /[*?{}]/.test(pattern);
}

function segmentToRegExp(segment: string): RegExp {
  let source = '';
  for (const ch of segment) {
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function isWildcard(segment: string): boolean {
  return /[*?]/.test(segment);
}

/** Matches one brace-free pattern against a relative, `/`-separated path. */
export function matchPath(pattern: string, relPath: string): boolean {
  const patternParts = pattern.split('/').filter((p) => p !== '' && p !== '.');
  const pathParts = relPath.split('/').filter(Boolean);
  const hidden = (name: string): boolean => name.startsWith('.') || name === 'node_modules';

  const walk = (pi: number, si: number): boolean => {
    if (pi === patternParts.length) return si === pathParts.length;
    const part = patternParts[pi]!;
    if (part === '**') {
      // Zero or more segments, none of them hidden.
      for (let k = si; k <= pathParts.length; k++) {
        if (walk(pi + 1, k)) return true;
        if (k < pathParts.length && hidden(pathParts[k]!)) return false;
      }
      return false;
    }
    if (si >= pathParts.length) return false;
    const name = pathParts[si]!;
    if (isWildcard(part) && hidden(name) && !part.startsWith('.')) return false;
    return segmentToRegExp(part).test(name) && walk(pi + 1, si + 1);
  };
  return walk(0, 0);
}

/** The leading literal directory of a pattern, where the directory walk can start. */
function literalBase(pattern: string): string {
  const parts = pattern.split('/');
  const base: string[] = [];
  for (const part of parts.slice(0, -1)) {
    if (isWildcard(part) || part === '**') break;
    base.push(part);
  }
  return base.join('/');
}

function listFiles(rootDir: string, relDir: string, out: string[], descend: (relDir: string) => boolean): void {
  let entries;
  try {
    entries = readdirSync(path.join(rootDir, relDir), { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const stat = statSync(path.join(rootDir, rel));
        isDir = stat.isDirectory();
        isFile = stat.isFile();
      } catch {
        continue;
      }
    }
    if (isFile) out.push(rel);
    else if (isDir && descend(rel)) listFiles(rootDir, rel, out, descend);
  }
}

/**
 * Files under `rootDir` that match `pattern`, as sorted relative `/`-separated paths, without duplicates.
 */
export function findFiles(pattern: string, rootDir: string): string[] {
  const found = new Set<string>();
  for (const raw of expandBraces(pattern.replace(/\\/g, '/'))) {
    const single = raw.replace(/^\.\//, '');
    if (!/[*?]/.test(single)) {
      try {
        if (statSync(path.join(rootDir, single)).isFile()) found.add(path.posix.normalize(single));
      } catch {
        // Missing file: no match.
      }
      continue;
    }
    const base = literalBase(single);
    const recursive = single.includes('**');
    const depth = single.split('/').length - base.split('/').filter(Boolean).length;
    const files: string[] = [];
    listFiles(rootDir, base, files, (relDir) => {
      const name = relDir.slice(relDir.lastIndexOf('/') + 1);
      if (name === 'node_modules' && !single.includes('node_modules')) return false;
      if (recursive) return true;
      const below = relDir.split('/').length - base.split('/').filter(Boolean).length;
      return below < depth;
    });
    for (const file of files) if (matchPath(single, file)) found.add(file);
  }
  return [...found].sort();
}
