/**
 * Code mapping in the pipeline (requirements §5, docs/code-mapping.md): every coded field is read under its
 * org's policy for the domain — national (validated), local (mapped), auto (a national code is
 * kept, anything else mapped). A mapped value is replaced by its national code (and name); what the
 * HIS sent is kept in `_local`. A value with no usable mapping is never forwarded: the record is
 * stored but held (a record_hold row: domain and code), counted in the unmapped queue, and released
 * by the sweep once the mapping exists. Every forwarded record carries `_mapVersion`.
 */
import type { Db, Tx } from '../db/index.js';
import { withTx } from '../db/index.js';
import { log } from '../log/index.js';
import type { FieldIssue } from '../http/errors.js';
import type { Resource } from '../../schemas/resource.js';
import { resources as registry } from '../../schemas/index.js';
import { lookup as listEntry, nameFieldOf, nameMismatch } from '../../schemas/domains.js';
import type { CodeCache } from '../codes/index.js';
import { addHolds, dropHolds, recordHolds, type Hold } from '../holds/index.js';
import { releaseHeld, rewriteHeldPayloads } from '../outbox/index.js';
import { releaseChildren } from './store.js';
import { isParent } from './parents.js';
import { validateRecord, type DomainMapper } from './validate.js';
import { openRecord } from '../pii/index.js';

export interface Mapping {
  /** Codes with no usable mapping: the record is held for each. */
  holds: Hold[];
  /** What the HIS sent for each field that was mapped. */
  local: Record<string, { code: string; name?: string }>;
  observed: Array<{ domain: string; code: string; name: string | null }>;
  mapVersion: number;
}

export function emptyMapping(): Mapping {
  return { holds: [], local: {}, observed: [], mapVersion: 0 };
}

/** A DomainMapper (validate.ts) for one record of `orgCode`, filling `out`. */
export function domainMapper(r: Resource, orgCode: string, codes: CodeCache, out: Mapping): DomainMapper {
  return (record) => {
    const issues: FieldIssue[] = [];
    const warnings: FieldIssue[] = [];
    const pending = new Set<string>();
    for (const [k, d] of Object.entries(r.fields)) {
      if (!d.domain) continue;
      const v = record[k];
      if (typeof v !== 'string' || v === '') continue;
      const nk = nameFieldOf(k);
      const sentName = nk && typeof record[nk] === 'string' ? (record[nk] as string) : null;
      const res = codes.lookup(orgCode, d.domain, v);
      if (res.status === 'unknown') {
        // The org's policy for the domain is "national codes only": no mapping can release it, so the
        // HIS is told now, as for any field it must correct (docs/code-mapping.md "Policies").
        issues.push({
          field: k,
          rule: 'domain',
          message: `不是国家值域代码；本机构该值域只接受国家代码 (not a national code of ${d.domain}: this org's policy for it accepts national codes only)`,
          value: v,
        });
        continue;
      }
      out.observed.push({ domain: d.domain, code: v, name: sentName });
      if (res.status === 'national') {
        const listed = res.nationalName ?? listEntry(d.domain, v)?.name;
        const w = listed ? nameMismatch(r.fields, record, k, v, listed, d.domain) : null;
        if (w) warnings.push(w);
      } else if (res.status === 'mapped' && res.national) {
        out.local[k] = sentName ? { code: v, name: sentName } : { code: v };
        record[k] = res.national;
        if (nk && r.fields[nk] && res.nationalName) record[nk] = res.nationalName;
      } else {
        out.holds.push({ kind: 'mapping', domain: d.domain, code: v });
        pending.add(k);
        warnings.push({
          field: k,
          rule: 'unmapped',
          message: `本院代码尚未映射到国家值域，记录已保存但暂缓上报 (no mapping yet; stored, held until it is mapped)`,
          value: v,
        });
      }
    }
    out.mapVersion = codes.version(orgCode);
    return { issues, warnings, pending };
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
  /** Records whose re-mapping failed (logged; retried on the next run). */
  failed: number;
}

/**
 * Re-maps records held for a mapping that now exists, and releases those with no hold left (run
 * by the push function every minute and when nudged). The held outbox rows' payloads are re-mapped
 * in place, then moved behind the queue as pending; the typed row and its raw copy follow.
 */
export async function sweepMappingHolds(db: Db, codes: CodeCache, limit = 1000): Promise<MappingSweep> {
  const out: MappingSweep = { checked: 0, remapped: 0, released: 0, failed: 0 };
  // The codes records are held for, then the records of those that now resolve: a code still
  // unmapped costs one lookup, however many records it holds.
  const held = await db.query<{ org_code: string; target: string; value: string }>(
    `SELECT DISTINCT org_code, target, value FROM record_hold WHERE kind = 'mapping'`,
  );
  const resolvable = held.rows.filter((h) => ['national', 'mapped'].includes(codes.lookup(h.org_code, h.target, h.value).status));
  const done = new Set<string>();
  for (const h of resolvable) {
    if (out.checked >= limit) break;
    const records = await db.query<{ resource: string; record_id: string }>(
      `SELECT DISTINCT resource, record_id FROM record_hold WHERE kind = 'mapping' AND org_code = $1 AND target = $2 AND value = $3 LIMIT $4`,
      [h.org_code, h.target, h.value, limit],
    );
    for (const x of records.rows) {
      const k = JSON.stringify([x.resource, h.org_code, x.record_id]);
      if (done.has(k)) continue;
      done.add(k);
      out.checked++;
      const r = registry[x.resource];
      if (!r) continue;
      try {
        const released = await withTx(db, (tx) => remapRecord(tx, r, h.org_code, x.record_id, codes));
        out.remapped++;
        if (released) out.released++;
      } catch (err) {
        // One record that cannot be re-mapped must not keep the others held.
        out.failed++;
        log('error', 'mapping hold not re-mapped', { resource: x.resource, err: (err as Error).message, code: (err as { code?: string }).code });
      }
    }
  }
  return out;
}

function remapPayload(
  r: Resource,
  orgCode: string,
  payload: Record<string, unknown>,
  codes: CodeCache,
): { payload: Record<string, unknown>; still: Hold[]; fixed: Array<{ domain: string; code: string }> } {
  const next: Record<string, unknown> = { ...payload };
  const local = { ...((payload._local as Record<string, unknown> | undefined) ?? {}) };
  const still: Hold[] = [];
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
    } else still.push({ kind: 'mapping', domain: d.domain, code: v });
  }
  if (Object.keys(local).length) next._local = local;
  next._mapVersion = codes.version(orgCode);
  return { payload: next, still, fixed };
}

const NO_MAPPING: DomainMapper = () => ({ issues: [], warnings: [], pending: new Set() });

/**
 * The rules a record's mapped versions break (docs/code-mapping.md "Checked again when released"): at
 * receipt the rules left out the fields that still held the hospital's own codes; now that they hold
 * national ones, each version is read again as the data port reads a record (its protected fields
 * opened, the front's own keys left out), and every field and rule it breaks becomes a hold.
 */
export function brokenRules(r: Resource, payloads: Array<Record<string, unknown>>, about?: { orgCode: string; id: string }): Hold[] {
  const out = new Map<string, Hold>();
  const now = new Date();
  for (const payload of payloads) {
    const sent = Object.fromEntries(Object.entries(openRecord(r, payload)).filter(([k]) => !k.startsWith('_')));
    const v = validateRecord(r, sent, now, NO_MAPPING);
    if (v.ok) continue;
    for (const i of v.issues) out.set(`${i.field}/${i.rule}`, { kind: 'rule', field: i.field, rule: i.rule });
  }
  // The record named (its org code and id are no personal data) so that IT can go from the line to
  // the record; the rules by field and rule, never a value (docs/code-mapping.md).
  if (out.size)
    log('warn', 'mapped record breaks the data set rules; held for a corrected version', {
      resource: r.name,
      ...(about ? { orgCode: about.orgCode, recordId: about.id } : {}),
      rules: [...out.keys()],
    });
  return [...out.values()];
}

async function remapRecord(tx: Tx, r: Resource, orgCode: string, id: string, codes: CodeCache): Promise<boolean> {
  const rc = await tx.query<{ retired: boolean }>('SELECT retired FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3 FOR UPDATE', [
    r.name,
    orgCode,
    id,
  ]);
  const receipt = rc.rows[0];
  if (!receipt) return false;
  // Held outbox rows: every waiting version of the record, each re-mapped on its own payload.
  let still: Hold[] = [];
  const fixedAll = new Map<string, { domain: string; code: string }>();
  const mapped: Array<Record<string, unknown>> = [];
  const held = await rewriteHeldPayloads(tx, r.name, orgCode, id, (payload) => {
    const m = remapPayload(r, orgCode, payload, codes);
    still = m.still;
    for (const f of m.fixed) fixedAll.set(`${f.domain}/${f.code}`, f);
    mapped.push(m.payload);
    return m.payload;
  });
  // The typed row and its raw copy show the latest version, mapped.
  const cur = await tx.query<{ rec_raw: Record<string, unknown> }>(`SELECT rec_raw FROM ${r.table} WHERE org_code = $1 AND id = $2 FOR UPDATE`, [orgCode, id]);
  const raw = cur.rows[0]?.rec_raw;
  if (raw) {
    const m = remapPayload(r, orgCode, raw, codes);
    if (held === 0) {
      still = m.still;
      mapped.push(m.payload);
    }
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
  // Every code resolved: the versions about to leave meet the data set's rules on their national
  // codes, or the record stays held until the HIS sends a corrected version.
  if (still.length === 0) still = brokenRules(r, mapped, { orgCode, id });
  await dropHolds(tx, r.name, [[orgCode, id]], { kind: 'mapping' });
  await addHolds(
    tx,
    r.name,
    still.map((hold) => ({ orgCode, id, hold, at: new Date() })),
  );
  const reasons = await recordHolds(tx, r.name, orgCode, id);
  await tx.query('UPDATE record_receipt SET state = $4 WHERE resource = $1 AND org_code = $2 AND record_id = $3', [
    r.name,
    orgCode,
    id,
    reasons.length ? 'held' : receipt.retired ? 'retired' : 'stored',
  ]);
  for (const f of fixedAll.values()) codes.observe(orgCode, f.domain, f.code, null, -1);
  if (reasons.length) return false;
  await releaseHeld(tx, r.name, orgCode, id);
  // Its children that waited for it leave behind it.
  if (isParent(r.name)) await releaseChildren(tx, r.name, [[orgCode, id]], isParent);
  return true;
}
