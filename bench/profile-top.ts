/**
 * Where a replica's CPU goes, from a V8 CPU profile (docs/bench.md "A/B of one replica"): self time
 * by source file or package and by function, mapped through the bundle's source map, plus the
 * inclusive time of the functions named on the command line.
 *
 *   node --import tsx bench/profile-top.ts /tmp/prof/after.cpuprofile […more.cpuprofile] [upsertGroup sealRecord …]
 *
 * Several profiles (the replicas of a whole-front run) are summed.
 * Idle time (the event loop waiting) is left out of the shares.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const CallFrame = z.object({
  functionName: z.string(),
  url: z.string(),
  lineNumber: z.number(),
  columnNumber: z.number(),
});
const Profile = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrame, hitCount: z.number().default(0), children: z.array(z.number()).default([]) })),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Frame = z.infer<typeof CallFrame>;

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith('.cpuprofile'));
const named = args.filter((a) => !a.endsWith('.cpuprofile'));
if (files.length === 0) throw new Error('usage: profile-top.ts <file.cpuprofile>… [function names…]');

const maps = new Map<string, SourceMap | null>();
function sourceMapOf(url: string): SourceMap | null {
  if (!maps.has(url)) {
    let m: SourceMap | null = null;
    if (url.startsWith('file://')) {
      const path = `${fileURLToPath(url)}.map`;
      if (existsSync(path)) m = new SourceMap(JSON.parse(readFileSync(path, 'utf8')));
    }
    maps.set(url, m);
  }
  return maps.get(url)!;
}

/** A frame's place: the package under node_modules, the project file, or Node's own module. */
function placeOf(f: Frame): string {
  if (f.url === '') return `(${f.functionName || 'native'})`;
  let src = f.url;
  const m = sourceMapOf(f.url);
  if (m) {
    const e = m.findEntry(f.lineNumber, f.columnNumber);
    if ('originalSource' in e && e.originalSource) src = e.originalSource;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(src);
  if (pkg) return pkg[1]!;
  const own = /(shared|functions|schemas|infra)\/.*$/.exec(src);
  return own ? own[0] : src;
}

let busy = 0;
const place = new Map<string, number>();
const fn = new Map<string, number>();
const inclusive = new Map<string, number>(named.map((n) => [n, 0]));
for (const file of files) {
  const prof = Profile.parse(JSON.parse(readFileSync(file, 'utf8')));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children) parent.set(c, n.id);
  // Sampled time per node (µs), from the samples and their deltas.
  const selfUs = new Map<number, number>();
  for (const [i, id] of prof.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)' || n.callFrame.functionName === '(program)') continue;
    busy += us;
    const p = placeOf(n.callFrame);
    place.set(p, (place.get(p) ?? 0) + us);
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${p}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    // Inclusive: once per sample for each named function on its stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = byId.get(at)!.callFrame.functionName;
      if (inclusive.has(name) && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, inclusive.get(name)! + us);
      }
    }
  }
}

const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => ({ share: `${((100 * us) / busy).toFixed(1)} %`, ms: Math.round(us / 1000), what: k }));
console.log(`busy ${Math.round(busy / 1000)} ms (idle and (program) left out)`);
console.table(top(place, 25));
console.table(top(fn, 40));
if (named.length) console.table(top(inclusive, named.length));
