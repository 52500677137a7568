/**
 * The version check (docs/config-bundles.md "Version check"): release numbers x.y.z compared as
 * numbers (a pre-release, x.y.z-rc1, sorts before x.y.z), and the announcement at CONFIG_RELEASE_URL.
 */
import { Release } from './schema.js';

const parts = (v: string): { nums: number[]; pre: string | null } => {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(v.trim());
  if (!m) return { nums: [0, 0, 0], pre: null };
  return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ?? null };
};

/** <0, 0, >0 as a is older than, the same as, newer than b. */
export function compareReleases(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i]! - y.nums[i]!;
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** The release announced at a URL (JSON {version, url?, notes?, publishedAt?}); an error in words otherwise. */
export async function fetchRelease(url: string, timeoutMs = 5000): Promise<{ release: Release } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    const r = Release.safeParse(await res.json());
    if (!r.success) return { error: `not a release announcement: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    return { release: r.data };
  } catch (err) {
    return { error: (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message };
  }
}
