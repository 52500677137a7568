/**
 * Group commit for single-record calls (docs/ingest.md "Group commit"). Concurrent calls for one
 * resource in one replica are gathered and written together by upsertGroup — one transaction, one
 * statement per table — and each call is answered only after that commit, with its own outcome.
 *
 * - Flush when idle: a call arriving while a slot is free starts a group at once (after `waitMs`,
 *   0 by default, when nothing is being written), so under light load nothing waits; calls arriving
 *   while every slot (`parallel`) is busy form the next groups, each started as soon as a slot frees
 *   (at most `maxGroup` records each).
 * - Order: a group keeps arrival order (repeated keys go to later waves), and a record whose id is
 *   in a group being written waits for that group's commit, so per-key order holds within and
 *   across groups while groups of other keys are written side by side.
 * - A record that fails validation or authorisation never joins the write: it gets its own 400/403.
 * - A database error fails no neighbour: the group is retried record by record, each call then
 *   getting its own outcome or error; a call the failed write had refused keeps that refusal (a
 *   group of one too). Nothing is answered before its commit: a process killed
 *   mid-group answers no call with 2xx.
 */
import type { Resource } from '../../schemas/resource.js';
import type { Db } from '../db/index.js';
import { upsertGroup, type IngestContext, type ItemResult } from './index.js';
import { knownKeys } from './normalize.js';

export interface GroupCommitOptions {
  /** Most records in one group. */
  maxGroup: number;
  /** Extra wait before a flush that found the resource idle (ms; 0: none). */
  waitMs: number;
  /** Groups of one resource written at once (each its own transaction); never two with one key. */
  parallel?: number;
}

interface Waiting {
  body: unknown;
  ctx: IngestContext;
  key: string;
  done: (r: ItemResult) => void;
  fail: (err: unknown) => void;
}

interface Queue {
  r: Resource;
  waiting: Waiting[];
  inflight: number;
  /** Keys of the records in groups being written, with their counts. */
  keys: Map<string, number>;
  timer: boolean;
}

export interface GroupStats {
  groups: number;
  records: number;
  retriedGroups: number;
  largest: number;
}

/**
 * The key a call's record will have, as far as it can be told before validation: its id (the org
 * may still be resolved later). Two calls with one id are never written by two groups at once.
 */
function keyOfBody(r: Resource, body: unknown): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return '';
  const known = knownKeys(r, body as Record<string, unknown>);
  const id = known.id ?? (r.keyField ? known[r.keyField] : undefined);
  return typeof id === 'string' || typeof id === 'number' ? String(id).trim() : '';
}

export class GroupCommitter {
  private readonly queues = new Map<string, Queue>();
  readonly stats: GroupStats = { groups: 0, records: 0, retriedGroups: 0, largest: 0 };
  private readonly parallel: number;

  constructor(
    private readonly db: () => Db,
    private readonly o: GroupCommitOptions,
  ) {
    this.parallel = Math.max(1, o.parallel ?? 1);
  }

  /** The outcome of one record, once it is committed (or its own error). */
  submit(r: Resource, body: unknown, ctx: IngestContext): Promise<ItemResult> {
    return new Promise((done, fail) => {
      let q = this.queues.get(r.name);
      if (!q) this.queues.set(r.name, (q = { r, waiting: [], inflight: 0, keys: new Map(), timer: false }));
      q.waiting.push({ body, ctx, key: keyOfBody(r, body), done, fail });
      if (q.inflight === 0 && this.o.waitMs > 0) {
        if (q.timer) return;
        q.timer = true;
        setTimeout(() => {
          q!.timer = false;
          this.pump(q!);
        }, this.o.waitMs);
      } else if (!q.timer) queueMicrotask(() => this.pump(q!));
    });
  }

  /** Starts groups while a slot is free: calls in order, skipping (for now) a key being written. */
  private pump(q: Queue): void {
    while (q.inflight < this.parallel && q.waiting.length) {
      const group: Waiting[] = [];
      const rest: Waiting[] = [];
      const held = new Set<string>();
      for (const w of q.waiting) {
        // A key already being written, or held back in this pass, waits: its order is kept.
        if (group.length >= this.o.maxGroup || (w.key !== '' && (q.keys.has(w.key) || held.has(w.key)))) {
          if (w.key !== '') held.add(w.key);
          rest.push(w);
        } else group.push(w);
      }
      if (group.length === 0) return;
      q.waiting = rest;
      q.inflight++;
      for (const w of group) if (w.key !== '') q.keys.set(w.key, (q.keys.get(w.key) ?? 0) + 1);
      void this.flush(q.r, group).finally(() => {
        q.inflight--;
        for (const w of group) {
          if (w.key === '') continue;
          const n = (q.keys.get(w.key) ?? 1) - 1;
          if (n > 0) q.keys.set(w.key, n);
          else q.keys.delete(w.key);
        }
        this.pump(q);
      });
    }
  }
  private async flush(r: Resource, group: Waiting[]): Promise<void> {
    this.stats.groups++;
    this.stats.records += group.length;
    this.stats.largest = Math.max(this.stats.largest, group.length);
    // Refused in the group's attempt (logged then): answered so again, not validated and logged twice.
    const refused = new Map<number, ItemResult>();
    try {
      const results = await upsertGroup(this.db(), r, group, { onRefused: (i, res) => refused.set(i, res) });
      for (const [i, w] of group.entries()) w.done(results[i]!);
      return;
    } catch (err) {
      // A call alone: refused before the write failed (its stored patient's birth date, read after
      // a failed try), it gets that refusal; otherwise the write's error.
      if (group.length === 1) {
        const known = refused.get(0);
        if (known) group[0]!.done(known);
        else group[0]!.fail(err);
        return;
      }
    }
    // One bad row must not fail its neighbours: each alone, in arrival order.
    this.stats.retriedGroups++;
    for (const [i, w] of group.entries()) {
      const known = refused.get(i);
      if (known) {
        w.done(known);
        continue;
      }
      try {
        w.done((await upsertGroup(this.db(), r, [w]))[0]!);
      } catch (err) {
        w.fail(err);
      }
    }
  }
}
