/**
 * The code cache ingest reads codes through (docs/code-mapping.md): national lists, the orgs'
 * mappings and policies held in Maps in this process, so a lookup is a few Map reads and never a
 * database round trip. It stays current by polling code_map_version every `refreshMs` (openGauss 5.0
 * has no LISTEN): an org whose version moved is reloaded whole, the row '*' (national-list imports)
 * reloads the national lists whose counter moved (code_domain.list_seq: only the domain that changed,
 * never a 200 000-code drug list for a 4-code change of another), and `onChange` listeners hear which
 * orgs changed — ingest releases held records from there.
 *
 * `observe` only touches a Map: observations are merged per (org, domain, code) and written with one
 * MERGE per batch, every `flushMs` or when `maxBuffer` distinct codes are waiting, so ingest never
 * waits on them. A failed flush keeps the batch for the next one (merged with newer observations).
 *
 *   const codes = await createCodeCache(pool, { refreshMs: 5000 });
 *   const r = codes.lookup(org, 'sex', '1');      // { status: 'national', national: '1', nationalName: '男性', mapVersion: 7 }
 *   codes.observe(org, 'sex', 'M', '男');
 *   codes.onChange((orgs) => releaseHeld(orgs));
 *   await codes.close();                           // stops the timers, flushes what is buffered
 */
import type { Db } from '../db/index.js';
import { log } from '../log/index.js';
import { DEFAULT_POLICY, resolve, type Equivalence, type LookupStatus, type Policy } from './model.js';
import { listDomainOf } from './registry.js';
import { resources } from '../../schemas/index.js';
import type { Resource } from '../../schemas/resource.js';
import { NATIONAL_VERSION_KEY, loadListSeqs, loadNational, loadOrgMaps, loadVersions, recordObserved, type Observation, type OrgMaps } from './store.js';

export interface LookupResult {
  status: LookupStatus;
  /** The national code to forward: the value itself ('national') or its mapping's target ('mapped'). */
  national?: string;
  nationalName?: string;
  /** The mapping's equivalence, when a mapping was used (or found unusable). */
  equivalence?: Equivalence;
  /** Why a mapped value is still 'unmapped': reviewed as unmatched, or its target left the national list. */
  reason?: 'unmatched' | 'retiredTarget';
  /** The org's map version the answer was made from: stamp it on the forwarded record (docs/code-mapping.md). */
  mapVersion: number;
}

export interface CodeCacheOptions {
  /** How often code_map_version is polled (ms); a change is seen within this. Default 5000. */
  refreshMs?: number;
  /** How often buffered observations are written (ms). Default 1000. */
  flushMs?: number;
  /** Distinct buffered codes that trigger a write at once. Default 1000. */
  maxBuffer?: number;
  /**
   * The national lists held (list domains): a lookup in any other list finds no national code. Every
   * list when absent; a function passes `listsLookedUp(its resources)`, the lists its records' fields
   * take codes from — a full drug or region list that no field looks codes up in is neither held
   * (~110 MiB per process for 235 000 drug codes) nor read again when it changes.
   */
  lists?: readonly string[];
}

/**
 * The national lists ingest looks codes up in for records of `rs`: the list domain of every field with
 * a value domain (docs/code-mapping.md "The cache ingest reads through"). What a function's code cache
 * holds (CodeCacheOptions.lists).
 */
export function listsLookedUp(rs: Iterable<Resource>): string[] {
  const out = new Set<string>();
  for (const r of rs) for (const f of Object.values(r.fields)) if (f.domain) out.add(listDomainOf(f.domain));
  return [...out].sort();
}

/** The lists looked up by records of every resource: what a function that maps any record holds (push, dbsync, web). */
export const listsOfAllRecords = (): string[] => listsLookedUp(Object.values(resources));

export interface CodeCache {
  /** How `value` of `domain` reads for `org` under its policy (model.ts `resolve`). */
  lookup(org: string, domain: string, value: string): LookupResult;
  policy(org: string, domain: string): Policy;
  /**
   * Notes a code seen in real data (buffered): one sighting. `held` changes the code's records-held
   * count: +1 when a record is held because of this code, −n when n such records were released. A
   * release (negative `held`) is no sighting: it changes the records held only, so one record counts
   * once (docs/code-mapping.md).
   */
  observe(org: string, domain: string, local: string, name?: string | null, held?: number): void;
  /** Changes a code's records-held count only (+n held, −n released): no sighting. */
  held(org: string, domain: string, local: string, n: number): void;
  /** The org's map version (0 before its first change). */
  version(org: string): number;
  /** Called after a refresh that saw new versions, with the orgs that changed ('*': national lists). */
  onChange(listener: (orgs: string[]) => void | Promise<void>): () => void;
  /** Polls now; true when something changed. */
  refresh(): Promise<boolean>;
  /** Writes buffered observations now. */
  flush(): Promise<void>;
  /** Stops polling and flushing, writing what is buffered. */
  close(): Promise<void>;
}

interface Buffered {
  org: string;
  domain: string;
  local: string;
  name: string | null;
  count: number;
  first: number;
  last: number;
  held: number;
}

const EMPTY_ORG: OrgMaps = { version: 0, policies: new Map(), maps: new Map() };

type Listener = (orgs: string[]) => void | Promise<void>;
/** Per list domain, its current national codes and their names (store.ts loadNational). */
type National = Awaited<ReturnType<typeof loadNational>>;

/**
 * What the cache holds in memory: the national lists, every org's mappings and policies, and the
 * versions they were read at (`seqs`: each domain's list counter, code_domain.list_seq).
 */
interface Lists {
  national: National;
  seqs: Map<string, number>;
  orgs: Map<string, OrgMaps>;
  versions: Map<string, number>;
}

/**
 * Reads everything the cache holds, before its first lookup (docs/code-mapping.md, "The cache ingest
 * reads through"). The versions and counters first: what is read after them is at least as new, so a
 * change that commits meanwhile is read again by the next poll, never missed.
 */
async function loadLists(db: Db, held: readonly string[] | null): Promise<Lists> {
  const versions = await loadVersions(db);
  const seqs = await loadListSeqs(db);
  const national = await loadNational(db, held === null ? null : [...held]);
  const orgs = await loadOrgMaps(db, null);
  return { national, seqs, orgs, versions };
}

/**
 * The national lists after '*' moved: the domains whose list counter moved are read again (a list
 * that has no current codes any more leaves the Map); the others are kept as they are.
 */
async function reloadNational(db: Db, lists: Lists, held: readonly string[] | null): Promise<void> {
  const seqs = await loadListSeqs(db);
  const moved = [...seqs].filter(([d, s]) => lists.seqs.get(d) !== s && (held === null || held.includes(d))).map(([d]) => d);
  if (moved.length) {
    const fresh = await loadNational(db, moved);
    const next = new Map(lists.national);
    for (const d of moved) {
      const codes = fresh.get(d);
      if (codes) next.set(d, codes);
      else next.delete(d);
    }
    lists.national = next;
  }
  lists.seqs = seqs;
}

/**
 * One poll of code_map_version (openGauss has no LISTEN: docs/opengauss.md): when '*' moved, reloads
 * the national lists whose counter moved; every other org whose version moved is reloaded whole; then
 * the new versions are taken. Returns the keys that moved (none: nothing was reloaded). A failure
 * leaves the versions as they were, so the next poll reloads again (a list this poll did read again is
 * not read once more: its counter was taken with it).
 */
async function pollLists(db: Db, lists: Lists, held: readonly string[] | null): Promise<string[]> {
  const now = await loadVersions(db);
  const changed: string[] = [];
  for (const [org, v] of now) if (lists.versions.get(org) !== v) changed.push(org);
  if (changed.length === 0) return changed;
  if (changed.includes(NATIONAL_VERSION_KEY)) await reloadNational(db, lists, held);
  const orgChanges = changed.filter((o) => o !== NATIONAL_VERSION_KEY);
  if (orgChanges.length) {
    const fresh = await loadOrgMaps(db, orgChanges);
    const next = new Map(lists.orgs);
    for (const [o, m] of fresh) next.set(o, m);
    lists.orgs = next;
  }
  lists.versions = now;
  return changed;
}

/** Runs the change listeners one after another; a failing one is logged and the others still run. */
async function notify(listeners: Iterable<Listener>, changed: string[]): Promise<void> {
  for (const l of listeners) {
    try {
      await l(changed);
    } catch (err) {
      log('error', 'code cache change listener failed', { err: (err as Error).message });
    }
  }
}

/** How `value` of `domain` reads for an org's maps under its policy (model.ts `resolve`), with the national name. */
function lookupIn(national: National, o: OrgMaps, domain: string, value: string): LookupResult {
  const v = value.trim();
  const codes = national.get(listDomainOf(domain));
  const res = resolve(o.policies.get(domain) ?? DEFAULT_POLICY, v, (c) => codes?.has(c) ?? false, o.maps.get(domain)?.get(v));
  const out: LookupResult = { status: res.status, mapVersion: o.version };
  if (res.national !== undefined) {
    out.national = res.national;
    const name = codes?.get(res.national);
    if (name !== undefined) out.nationalName = name;
  }
  if (res.equivalence) out.equivalence = res.equivalence;
  if (res.reason) out.reason = res.reason;
  return out;
}

/** Adds an observation to the buffer: a code already waiting gets the counts, the time span and a name sample merged in. */
function mergeObservation(buffer: Map<string, Buffered>, key: string, b: Buffered): void {
  const cur = buffer.get(key);
  if (!cur) {
    buffer.set(key, b);
    return;
  }
  cur.count += b.count;
  cur.first = Math.min(cur.first, b.first);
  cur.last = Math.max(cur.last, b.last);
  cur.held += b.held;
  cur.name ??= b.name;
}

/**
 * Observations waiting to be written, merged per (org, domain, code) (docs/code-mapping.md): `write`
 * sends them with one MERGE per batch (store.ts recordObserved); a failed write is merged back under
 * what arrived meanwhile, for the next one.
 */
function observationBuffer(db: Db) {
  let buffer = new Map<string, Buffered>();

  async function write(): Promise<void> {
    if (buffer.size === 0) return;
    const batch = buffer;
    buffer = new Map();
    const rows: Observation[] = [...batch.values()].map((b) => ({ ...b, first: new Date(b.first), last: new Date(b.last) }));
    try {
      await recordObserved(db, rows);
    } catch (err) {
      // Keep the batch: merge it back under what arrived meanwhile, and try again at the next flush.
      for (const [k, b] of batch) mergeObservation(buffer, k, b);
      log('warn', 'code observations not written yet; kept for the next flush', { codes: batch.size, err: (err as Error).message });
    }
  }

  return {
    /** Distinct codes waiting. */
    size: () => buffer.size,
    /** `count` sightings (1, or 0 for a change of records held only) of `code` (trimmed, non-empty) now. */
    add(org: string, domain: string, code: string, name: string | null, held: number, count: 0 | 1): void {
      const t = Date.now();
      mergeObservation(buffer, `${org}\u0000${domain}\u0000${code}`, { org, domain, local: code, name, count, first: t, last: t, held });
    },
    write,
  };
}

/** Runs `fn` one call at a time: a call while one runs gets that run's promise; `running()` is it, or null. */
function oneAtATime<T>(fn: () => Promise<T>): { run: () => Promise<T>; running: () => Promise<T> | null } {
  let current: Promise<T> | null = null;
  return {
    run: () =>
      (current ??= fn().finally(() => {
        current = null;
      })),
    running: () => current,
  };
}

/**
 * Runs `tick` `ms` after start and again `ms` after each run has settled (never two at once), on an
 * unref'd timer; stop() ends it — a run under way finishes, and none follows.
 */
function repeat(ms: number, tick: () => Promise<unknown>): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      tick().finally(schedule);
    }, ms);
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export async function createCodeCache(db: Db, opts: CodeCacheOptions = {}): Promise<CodeCache> {
  const refreshMs = opts.refreshMs ?? 5000;
  const flushMs = opts.flushMs ?? 1000;
  const maxBuffer = opts.maxBuffer ?? 1000;

  const held = opts.lists ?? null;
  const lists = await loadLists(db, held);
  const listeners = new Set<Listener>();
  const observed = observationBuffer(db);
  let closed = false;

  const refresh = oneAtATime(async (): Promise<boolean> => {
    const changed = await pollLists(db, lists, held);
    if (changed.length === 0) return false;
    await notify(listeners, changed);
    return true;
  });
  const flush = oneAtATime(observed.write);

  const pollTimer = repeat(refreshMs, () =>
    refresh.run().catch((err: Error) => log('warn', 'code cache refresh failed; serving the last lists', { err: err.message })),
  );
  const flushTimer = repeat(flushMs, flush.run);

  return {
    lookup(org, domain, value) {
      return lookupIn(lists.national, lists.orgs.get(org) ?? EMPTY_ORG, domain, value);
    },
    policy(org, domain) {
      return lists.orgs.get(org)?.policies.get(domain) ?? DEFAULT_POLICY;
    },
    observe(org, domain, local, name, held = 0) {
      if (closed) return;
      const code = local.trim();
      if (!code) return;
      observed.add(org, domain, code, name?.trim() || null, held, held < 0 ? 0 : 1);
      if (observed.size() >= maxBuffer) void flush.run();
    },
    held(org, domain, local, n) {
      if (closed || n === 0) return;
      const code = local.trim();
      if (!code) return;
      observed.add(org, domain, code, null, n, 0);
      if (observed.size() >= maxBuffer) void flush.run();
    },
    version(org) {
      return lists.orgs.get(org)?.version ?? 0;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh: refresh.run,
    flush: flush.run,
    async close() {
      closed = true;
      pollTimer.stop();
      flushTimer.stop();
      await refresh.running()?.catch(() => undefined);
      await flush.running();
      await observed.write();
    },
  };
}

/**
 * A code cache opened at its first use — and opened again at the next use if that failed (a replica
 * started while the database was down answers 503 meanwhile, never refuses codes); close() closes
 * whatever was opened. What the functions that take records hold (receive, web, dbsync).
 */
export function lazyCodeCache(open: () => Promise<CodeCache>): { get(): Promise<CodeCache>; close(): Promise<void> } {
  let cache: Promise<CodeCache> | undefined;
  return {
    get: () =>
      (cache ??= open().catch((err) => {
        cache = undefined;
        throw err;
      })),
    async close() {
      const c = cache;
      cache = undefined;
      await (await c?.catch(() => undefined))?.close();
    },
  };
}
