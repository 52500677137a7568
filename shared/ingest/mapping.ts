/**
 * Code mapping in the pipeline (requirements §5, issue 4): every coded field is read under its
 * org's policy for the domain — national (validated), local (mapped), auto (a national code is
 * kept, anything else mapped). A mapped value is replaced by its national code (and name); what the
 * HIS sent is kept in `_local`. A value with no usable mapping is never forwarded: the record is
 * stored but held (`mapping:<domain>/<code>`), counted in the unmapped queue, and released by the
 * sweep once the mapping exists. Every forwarded record carries `_mapVersion`.
 */
import type { Db, Tx } from '../db/index.js';
import { withTx } from '../db/index.js';
import type { FieldIssue } from '../http/errors.js';
import type { Resource } from '../../schemas/resource.js';
import { resources as registry } from '../../schemas/index.js';
import { lookup as listEntry, nameFieldOf, nameMismatch } from '../../schemas/domains.js';
import type { CodeCache } from '../codes/index.js';
import { releaseChildren, releaseOutbox } from './store.js';
import { isParent } from './parents.js';
import type { DomainMapper } from './validate.js';

export interface Mapping {
  /** Hold reasons: mapping:<domain>/<code, URI-encoded>. */
  holds: string[];
  /** What the HIS sent for each field that was mapped. */
  local: Record<string, { code: string; name?: string }>;
  observed: Array<{ domain: string; code: string; name: string | null }>;
  mapVersion: number;
}

export const holdToken = (domain: string, code: string) => `mapping:${domain}/${encodeURIComponent(code)}`;

export function parseHold(token: string): { domain: string; code: string } | null {
  const m = /^mapping:([^/]+)\/(.*)$/.exec(token);
  return m ? { domain: m[1]!, code: decodeURIComponent(m[2]!) } : null;
}

export function emptyMapping(): Mapping {
  return { holds: [], local: {}, observed: [], mapVersion: 0 };
}

/** A DomainMapper (validate.ts) for one record of `orgCode`, filling `out`. */
export function domainMapper(r: Resource, orgCode: string, codes: CodeCache, out: Mapping): DomainMapper {
  return (record) => {
    const warnings: FieldIssue[] = [];
    for (const [k, d] of Object.entries(r.fields)) {
      if (!d.domain) continue;
      const v = record[k];
      if (typeof v !== 'string' || v === '') continue;
      const nk = nameFieldOf(k);
      const sentName = nk && typeof record[nk] === 'string' ? (record[nk] as string) : null;
      out.observed.push({ domain: d.domain, code: v, name: sentName });
      const res = codes.lookup(orgCode, d.domain, v);
      if (res.status === 'national') {
        const listed = res.nationalName ?? listEntry(d.domain, v)?.name;
        const w = listed ? nameMismatch(r.fields, record, k, v, listed, d.domain) : null;
        if (w) warnings.push(w);
      } else if (res.status === 'mapped' && res.national) {
        out.local[k] = sentName ? { code: v, name: sentName } : { code: v };
        record[k] = res.national;
        if (nk && r.fields[nk] && res.nationalName) record[nk] = res.nationalName;
      } else {
        out.holds.push(holdToken(d.domain, v));
        warnings.push({
          field: k,
          rule: res.status === 'unknown' ? 'unknownCode' : 'unmapped',
          message:
            res.status === 'unknown'
              ? `不是国家值域代码，记录已保存但暂缓上报 (not a national code; stored, held until it is corrected or mapped)`
              : `本院代码尚未映射到国家值域，记录已保存但暂缓上报 (no mapping yet; stored, held until it is mapped)`,
          value: v,
        });
      }
    }
    out.mapVersion = codes.version(orgCode);
    return warnings;
  };
}

/** Adds the mapping stamp to a canonical payload (after hashing: the stamp is no content change). */
export function stamp(payload: Record<string, unknown>, m: Mapping | null): Record<string, unknown> {
  return m ? { ...payload, _mapVersion: m.mapVersion } : payload;
}

export interface MappingSweep {
  checked: number;
  remapped: number;
  released: number;
}

/**
 * Re-maps records held for a mapping that now exists, and releases those with no hold left (run
 * by the push function every minute and when nudged). The held outbox rows' payloads are re-mapped
 * in place, then moved behind the queue as pending; the typed row and its raw copy follow.
 */
export async function sweepMappingHolds(db: Db, codes: CodeCache, limit = 1000): Promise<MappingSweep> {
  const out: MappingSweep = { checked: 0, remapped: 0, released: 0 };
  const held = await db.query<{ resource: string; org_code: string; record_id: string; hold_reasons: string }>(
    `SELECT resource, org_code, record_id, hold_reasons FROM record_receipt
      WHERE state = 'held' AND hold_reasons LIKE '%mapping:%' ORDER BY updated_at LIMIT $1`,
    [limit],
  );
  for (const h of held.rows) {
    out.checked++;
    const resolvable = h.hold_reasons
      .split(' ')
      .map(parseHold)
      .filter((x): x is { domain: string; code: string } => x !== null)
      .filter((x) => ['national', 'mapped'].includes(codes.lookup(h.org_code, x.domain, x.code).status));
    if (resolvable.length === 0) continue;
    const r = registry[h.resource];
    if (!r) continue;
    const released = await withTx(db, (tx) => remapRecord(tx, r, h.org_code, h.record_id, codes));
    out.remapped++;
    if (released) out.released++;
  }
  return out;
}

function remapPayload(r: Resource, orgCode: string, payload: Record<string, unknown>, codes: CodeCache): { payload: Record<string, unknown>; still: string[]; fixed: Array<{ domain: string; code: string }> } {
  const next: Record<string, unknown> = { ...payload };
  const local = { ...((payload._local as Record<string, unknown> | undefined) ?? {}) };
  const still: string[] = [];
  const fixed: Array<{ domain: string; code: string }> = [];
  for (const [k, d] of Object.entries(r.fields)) {
    if (!d.domain) continue;
    const v = next[k];
    if (typeof v !== 'string' || v === '' || local[k] !== undefined) continue;
    const res = codes.lookup(orgCode, d.domain, v);
    if (res.status === 'national') continue;
    if (res.status === 'mapped' && res.national) {
      const nk = nameFieldOf(k);
      local[k] = nk && typeof next[nk] === 'string' ? { code: v, name: next[nk] } : { code: v };
      next[k] = res.national;
      if (nk && r.fields[nk] && res.nationalName) next[nk] = res.nationalName;
      fixed.push({ domain: d.domain, code: v });
    } else still.push(holdToken(d.domain, v));
  }
  if (Object.keys(local).length) next._local = local;
  next._mapVersion = codes.version(orgCode);
  return { payload: next, still, fixed };
}

async function remapRecord(tx: Tx, r: Resource, orgCode: string, id: string, codes: CodeCache): Promise<boolean> {
  const rc = await tx.query<{ hold_reasons: string | null; retired: boolean }>(
    'SELECT hold_reasons, retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE',
    [r.name, orgCode, id],
  );
  const receipt = rc.rows[0];
  if (!receipt) return false;
  // Held outbox rows: every waiting version of the record, each re-mapped on its own payload.
  const rows = await tx.query<{ outbox_id: string; payload: Record<string, unknown> }>(
    `SELECT outbox_id, payload FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3 AND state = 'held' ORDER BY outbox_id`,
    [r.name, orgCode, id],
  );
  let still: string[] = [];
  const fixedAll = new Map<string, { domain: string; code: string }>();
  for (const row of rows.rows) {
    const m = remapPayload(r, orgCode, row.payload, codes);
    still = m.still;
    for (const f of m.fixed) fixedAll.set(`${f.domain}/${f.code}`, f);
    await tx.query('UPDATE outbox SET payload = $2::jsonb WHERE outbox_id = $1', [row.outbox_id, JSON.stringify(m.payload)]);
  }
  // The typed row and its raw copy show the latest version, mapped.
  const cur = await tx.query<{ rec_raw: Record<string, unknown> }>(`SELECT rec_raw FROM ${r.table} WHERE org_code = $1 AND id = $2 FOR UPDATE`, [orgCode, id]);
  const raw = cur.rows[0]?.rec_raw;
  if (raw) {
    const m = remapPayload(r, orgCode, raw, codes);
    if (rows.rows.length === 0) still = m.still;
    for (const f of m.fixed) fixedAll.set(`${f.domain}/${f.code}`, f);
    const sets: string[] = ['rec_raw = $3::jsonb'];
    const params: unknown[] = [orgCode, id, JSON.stringify(m.payload)];
    for (const [k, d] of Object.entries(r.fields)) {
      if (d.domain && m.payload[k] !== raw[k]) {
        params.push(m.payload[k]);
        sets.push(`${d.column} = $${params.length}`);
        const nk = nameFieldOf(k);
        if (nk && r.fields[nk] && m.payload[nk] !== raw[nk]) {
          params.push(m.payload[nk]);
          sets.push(`${r.fields[nk]!.column} = $${params.length}`);
        }
      }
    }
    await tx.query(`UPDATE ${r.table} SET ${sets.join(', ')} WHERE org_code = $1 AND id = $2`, params);
  }
  const others = (receipt.hold_reasons ?? '').split(' ').filter((t) => t && !t.startsWith('mapping:'));
  const reasons = [...others, ...still];
  await tx.query('UPDATE record_receipt SET hold_reasons = $4, state = $5 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
    r.name,
    orgCode,
    id,
    reasons.length ? reasons.join(' ').slice(0, 500) : null,
    reasons.length ? 'held' : receipt.retired ? 'retired' : 'stored',
  ]);
  for (const f of fixedAll.values()) codes.observe(orgCode, f.domain, f.code, null, -1);
  if (reasons.length) return false;
  await releaseOutbox(tx, r.name, orgCode, id);
  // Its children that waited for it leave behind it.
  if (isParent(r.name)) await releaseChildren(tx, r.name, [[orgCode, id]], isParent);
  return true;
}
