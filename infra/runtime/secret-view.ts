/**
 * Each replica sees only the secret files stack.yml lists for its function (docs/runtime.md
 * "Secrets"), as under OpenFaaS, where a container has only its function's secrets mounted: the
 * runtime gives it, as CDC_SECRETS_DIR, a folder of its own holding links to those files — the ones
 * under `secrets`, and those named by the annotation `com.cdc-front.optional-secrets` (names, or
 * `prefix*`) when they exist — an exact name even before it exists, as a link to nothing. Rebuilt at
 * every replica start, so a secret added since under a pattern (a province's key) is seen after a
 * restart, as on OpenFaaS after a redeploy; one named exactly is seen by the next read.
 *
 * Under one user id this keeps a function from using another's secrets by accident, not from a
 * malicious one reading the parent folder: that needs containers or a user per function.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export const OPTIONAL_SECRETS = 'com.cdc-front.optional-secrets';
export const VIEWS_DIR = '.functions';

/** The names an annotation value allows: exact names and `prefix*` patterns. */
export function optionalPatterns(annotation: string | undefined): Array<(name: string) => boolean> {
  return (annotation ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((p) => (p.endsWith('*') ? (n: string) => n.startsWith(p.slice(0, -1)) : (n: string) => n === p));
}

/** The exact names of an annotation value (its `prefix*` patterns left out). */
export function optionalNames(annotation: string | undefined): string[] {
  // A file name of the secrets folder, nothing else: never a path out of the view ('/', '..').
  return (annotation ?? '').split(/[\s,]+/).filter((p) => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p));
}

/**
 * Brings the function's view up to date and returns its path. In place — links added, removed and
 * re-pointed, never the folder: the function's other replicas keep reading it while one restarts.
 * A link is relative (`../../<name>`), so a data folder copied or moved elsewhere (`cp -a`, a bigger
 * disk) still shows each function its own folder's secrets, never the original's; a link an older
 * runtime made absolute is re-pointed, by an atomic rename over it.
 */
export function secretView(secretsDir: string, fn: string, listed: readonly string[], optionalAnnotation: string | undefined): string {
  const dir = join(secretsDir, VIEWS_DIR, fn);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const optional = optionalPatterns(optionalAnnotation);
  const present = readdirSync(secretsDir).filter((n) => !n.startsWith('.') && lstatSync(join(secretsDir, n)).isFile());
  // An optional secret named exactly is linked even before it exists: a key the operator creates
  // later (backup-sm4-key) is then read by a function that reads its secrets at each call, without a
  // restart; a link to nothing reads as a missing file.
  const named = optionalNames(optionalAnnotation);
  const want = new Set([...listed.filter((n) => existsSync(join(secretsDir, n))), ...present.filter((n) => optional.some((m) => m(n))), ...named]);
  const have = new Set(readdirSync(dir));
  for (const n of have) if (!want.has(n)) rmSync(join(dir, n), { force: true });
  for (const n of want) {
    const link = join(dir, n);
    const target = join('..', '..', n);
    if (!have.has(n)) symlinkSync(target, link);
    else if (!lstatSync(link).isSymbolicLink() || readlinkSync(link) !== target) {
      const tmp = join(dir, `.${n}.${process.pid}.tmp`);
      rmSync(tmp, { force: true });
      symlinkSync(target, tmp);
      renameSync(tmp, link);
    }
  }
  return dir;
}
