/**
 * What the bundles were built from. `make build` records a digest of every file the functions' and
 * the runtime's bundles are made from (and of stack.yml, the migrations and the lock file, which a
 * start reads beside them) in dist/sources.json; a production start compares the files as they are
 * now and refuses to run bundles built from other sources — a `git pull` without `make build` would
 * otherwise run the previous version's functions against the new version's migrations and
 * stack.yml (docs/runtime.md "Under systemd").
 *
 * Plain TypeScript with only node: imports, so that infra/build/build.mjs imports it as it is
 * (Node.js 24 strips the types) and the runtime's bundle holds it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const FOLDERS = ['functions', 'infra', 'schemas', 'shared'];
const FILES = ['stack.yml', 'package.json', 'package-lock.json'];
/** What a build or a run writes inside those folders. */
const SKIPPED = new Set(['dist', 'node_modules', 'compile-cache']);
export const BUILD_RECORD = 'dist/sources.json';

/** Each source file (relative path) with its SHA-256. */
export function sourceFiles(root: string): Record<string, string> {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (SKIPPED.has(e.name)) continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) found.push(relative(root, path));
    }
  };
  for (const d of FOLDERS) if (existsSync(join(root, d))) walk(join(root, d));
  for (const f of FILES) if (existsSync(join(root, f))) found.push(f);
  found.sort();
  return Object.fromEntries(
    found.map((f) => [
      f,
      createHash('sha256')
        .update(readFileSync(join(root, f)))
        .digest('hex'),
    ]),
  );
}

/** Written by a build of the runtime and every function together. */
export function writeBuildRecord(root: string, now = new Date()): void {
  const file = join(root, BUILD_RECORD);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ builtAt: now.toISOString(), files: sourceFiles(root) }) + '\n');
}

/** Why the bundles may not be run as they are (null: built from these very files). */
export function buildRecordProblem(root: string): string | null {
  const file = join(root, BUILD_RECORD);
  if (!existsSync(file)) return `no record of a build (${BUILD_RECORD}): run make build`;
  let record: { builtAt?: unknown; files?: unknown };
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as typeof record;
  } catch {
    return `${BUILD_RECORD} cannot be read: run make build`;
  }
  const built = (record.files ?? {}) as Record<string, string>;
  const now = sourceFiles(root);
  const changed = Object.keys(now).filter((f) => built[f] !== undefined && built[f] !== now[f]);
  const added = Object.keys(now).filter((f) => built[f] === undefined);
  const removed = Object.keys(built).filter((f) => now[f] === undefined);
  if (changed.length + added.length + removed.length === 0) return null;
  const some = (what: string, list: string[]) =>
    list.length ? [`${what} ${list.slice(0, 5).join(', ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`] : [];
  const diff = [...some('changed', changed), ...some('new', added), ...some('gone', removed)].join('; ');
  return `the bundles were built (${String(record.builtAt)}) from other sources than the ones in ${root} (${diff}): run make build`;
}
