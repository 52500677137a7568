/**
 * The code cache ingest reads codes through (docs/code-mapping.md): national lists, the orgs'
 * mappings and policies held in Maps in this process, so a lookup is a few Map reads and never a
 * database round trip. It stays current by polling code_map_version every `refreshMs` (openGauss 5.0
 * has no LISTEN): an org whose version moved is reloaded whole, the row '*' (national-list imports)
 * reloads the national lists, and `onChange` listeners hear which orgs changed — ingest releases held
 * records from there.
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
import { NATIONAL_VERSION_KEY, loadNational, loadOrgMaps, loadVersions, recordObserved, type Observation, type OrgMaps } from './store.js';

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
}

export interface CodeCache {
  /** How `value` of `domain` reads for `org` under its policy (model.ts `resolve`). */
  lookup(org: string, domain: string, value: string): LookupResult;
  policy(org: string, domain: string): Policy;
  /**
   * Notes a code seen in real data (buffered). `held` changes the code's records-held count: +1 when
   * a record is held because of this code, −n when n such records were released.
   */
  observe(org: string, domain: string, local: string, name?: string | null, held?: number): void;
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

export async function createCodeCache(db: Db, opts: CodeCacheOptions = {}): Promise<CodeCache> {
  const refreshMs = opts.refreshMs ?? 5000;
  const flushMs = opts.flushMs ?? 1000;
  const maxBuffer = opts.maxBuffer ?? 1000;

  let national = await loadNational(db);
  let orgs = await loadOrgMaps(db, null);
  let versions = await loadVersions(db);
  const listeners = new Set<(orgs: string[]) => void | Promise<void>>();
  let buffer = new Map<string, Buffered>();
  let closed = false;
  let refreshing: Promise<boolean> | null = null;
  let flushing: Promise<void> | null = null;

  async function poll(): Promise<boolean> {
    const now = await loadVersions(db);
    const changed: string[] = [];
    for (const [org, v] of now) if (versions.get(org) !== v) changed.push(org);
    if (changed.length === 0) return false;
    if (changed.includes(NATIONAL_VERSION_KEY)) national = await loadNational(db);
    const orgChanges = changed.filter((o) => o !== NATIONAL_VERSION_KEY);
    if (orgChanges.length) {
      const fresh = await loadOrgMaps(db, orgChanges);
      const next = new Map(orgs);
      for (const [o, m] of fresh) next.set(o, m);
      orgs = next;
    }
    versions = now;
    for (const l of listeners) {
      try {
        await l(changed);
      } catch (err) {
        log('error', 'code cache change listener failed', { err: (err as Error).message });
      }
    }
    return true;
  }

  function refresh(): Promise<boolean> {
    refreshing ??= poll().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function writeBuffer(): Promise<void> {
    if (buffer.size === 0) return;
    const batch = buffer;
    buffer = new Map();
    const rows: Observation[] = [...batch.values()].map((b) => ({ ...b, first: new Date(b.first), last: new Date(b.last) }));
    try {
      await recordObserved(db, rows);
    } catch (err) {
      // Keep the batch: merge it back under what arrived meanwhile, and try again at the next flush.
      for (const [k, b] of batch) merge(k, b);
      log('warn', 'code observations not written yet; kept for the next flush', { codes: batch.size, err: (err as Error).message });
    }
  }

  function flush(): Promise<void> {
    flushing ??= writeBuffer().finally(() => {
      flushing = null;
    });
    return flushing;
  }

  function merge(key: string, b: Buffered): void {
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

  let pollTimer: NodeJS.Timeout | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  const schedulePoll = () => {
    if (closed) return;
    pollTimer = setTimeout(() => {
      refresh()
        .catch((err: Error) => log('warn', 'code cache refresh failed; serving the last lists', { err: err.message }))
        .finally(schedulePoll);
    }, refreshMs);
    pollTimer.unref();
  };
  const scheduleFlush = () => {
    if (closed) return;
    flushTimer = setTimeout(() => {
      flush().finally(scheduleFlush);
    }, flushMs);
    flushTimer.unref();
  };
  schedulePoll();
  scheduleFlush();

  return {
    lookup(org, domain, value) {
      const o = orgs.get(org) ?? EMPTY_ORG;
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
    },
    policy(org, domain) {
      return orgs.get(org)?.policies.get(domain) ?? DEFAULT_POLICY;
    },
    observe(org, domain, local, name, held = 0) {
      if (closed) return;
      const code = local.trim();
      if (!code) return;
      const t = Date.now();
      merge(`${org}\u0000${domain}\u0000${code}`, { org, domain, local: code, name: name?.trim() || null, count: 1, first: t, last: t, held });
      if (buffer.size >= maxBuffer) void flush();
    },
    version(org) {
      return orgs.get(org)?.version ?? 0;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh,
    flush,
    async close() {
      closed = true;
      clearTimeout(pollTimer);
      clearTimeout(flushTimer);
      await refreshing?.catch(() => undefined);
      await flushing;
      await writeBuffer();
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
