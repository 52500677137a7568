/**
 * What a record needs from outside itself before it is validated (docs/his-guide.md "机构"):
 *
 * - **its org**, when it sends no orgCode (lab, exam and order items, departments, report cards as
 *   the adapters send them), taken in this order from: the table's own org field (the card's
 *   reportOrgCode); its parent (an item's header, a record's patient) — the one org the caller may
 *   see that holds a record with the parent's id; the caller's binding when it names exactly one org;
 *   the installation's org (FRONT_ORG_CODE). When none decides, the record keeps no orgCode and is
 *   refused naming it.
 * - **the patient's birth date**, for the rule that no visit, diagnosis, death or report precedes it:
 *   from the stored patient, else (in validation) from the record's resident ID number.
 *
 * One query per parent table (none for a caller bound to one org) and one for the patients (none
 * when the call's try at writing new records checks them, docs/ingest.md), whatever the batch size.
 */
import type { Db } from '../db/index.js';
import { exec, keyList } from '../db/sql.js';
import type { Resource } from '../../schemas/resource.js';
import { resources as registry } from '../../schemas/index.js';
import { localDay } from '../time/day.js';
import { TIME_ZONE } from '../../schemas/fields.js';
import { knownKeys } from './normalize.js';

export interface OrgSources {
  /** The orgs the caller is bound to ('*': every org). */
  callerOrgs?: '*' | readonly string[];
  /** FRONT_ORG_CODE. */
  installationOrg?: string | null;
}

const text = (v: unknown): string | null => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() || null : null);

/**
 * A value the database can be asked about: text it can hold (no NUL, no half of a UTF-16 pair) —
 * such a record is refused by validation anyway, and must not fail the lookup for its neighbours.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and lone surrogates are what makes a value unaskable
const askable = (v: string | null): v is string => v !== null && !/[\u0000]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(v);

/** The bodies, each with `orgCode` filled in where the record sent none and a source decides it. */
export async function resolveOrgs(db: Db, r: Resource, bodies: unknown[], o: OrgSources): Promise<unknown[]> {
  const missing: Array<{ i: number; known: Record<string, unknown> }> = [];
  bodies.forEach((b, i) => {
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return;
    const known = knownKeys(r, b as Record<string, unknown>);
    if (text(known.orgCode) === null) missing.push({ i, known });
  });
  if (missing.length === 0) return bodies;
  const visible = o.callerOrgs === undefined || o.callerOrgs === '*' ? null : o.callerOrgs;
  const bound = visible && visible.length === 1 ? visible[0]! : null;
  // Parents, by resource: the orgs holding each parent id (among those the caller may see). A
  // caller bound to one org is not asked for: its parents could only be found in that org, which
  // is the org such a record gets anyway — no look-up.
  const parentOrgs = new Map<string, Map<string, Set<string>>>();
  for (const p of bound ? [] : r.parents) {
    const pr = registry[p.resource];
    const ids = [...new Set(missing.map((m) => text(m.known[p.field])).filter(askable))];
    if (!pr || ids.length === 0) continue;
    const params: unknown[] = [ids];
    const sql = `SELECT org_code, id FROM ${pr.table} WHERE id = ANY($1::varchar[])${visible ? ` AND org_code = ANY($${params.push([...visible])}::varchar[])` : ''}`;
    // One text per table and caller kind, whatever the number of ids: prepared once per connection.
    const rows = await exec<{ org_code: string; id: string }>(db, sql, params, `org_of_${pr.table}${visible ? '_bound' : ''}`);
    const m = new Map<string, Set<string>>();
    for (const row of rows.rows) (m.get(row.id) ?? m.set(row.id, new Set()).get(row.id)!).add(row.org_code);
    parentOrgs.set(p.field, m);
  }
  const out = [...bodies];
  for (const { i, known } of missing) {
    let org = r.orgField ? text(known[r.orgField]) : null;
    if (!org) {
      // Items' headers first (the parent of their own function), then the patient.
      const refs = [...r.parents].sort((a, b) => Number(a.resource === 'emrPatientInfo') - Number(b.resource === 'emrPatientInfo'));
      for (const p of refs) {
        const id = text(known[p.field]);
        const orgs = id ? parentOrgs.get(p.field)?.get(id) : undefined;
        if (orgs?.size === 1) {
          org = [...orgs][0]!;
          break;
        }
      }
    }
    org ??= bound ?? o.installationOrg ?? null;
    if (org) out[i] = { ...(bodies[i] as Record<string, unknown>), orgCode: org };
  }
  return out;
}

/** Events that may not precede the patient's birth, per resource (docs/data-set.md "Decisions"). */
export const EVENT_TIMES: Readonly<Record<string, readonly string[]>> = {
  emrActivityInfo: ['activityTime', 'diagnoseTime'],
  emrInfReport: ['onsetDate', 'diagnoseTime', 'reportDate', 'deadDate'],
  emrDeathInfo: ['deadDate'],
  emrOutpatientRecord: ['outpatientDate'],
  emrOutpatientObs: ['observationDate'],
  emrAdmissionInfo: ['admissionDate'],
  emrAdmissionRecord: ['admissionDate', 'dischargeDate'],
  emrDischargeInfo: ['admissionDate', 'dischargeDate'],
};

/** The key of a patient's birth day in `storedBirthDays`' answer. */
export const birthKey = (orgCode: string, patientId: string | null) => `${orgCode}|${patientId}`;

/** The stored birth days (yyyy-MM-dd, local) of the patients these records name, by `birthKey`. */
export async function storedBirthDays(db: Db, r: Resource, bodies: unknown[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!EVENT_TIMES[r.name]) return out;
  const keys: Array<[string, string]> = [];
  for (const b of bodies) {
    if (b === null || typeof b !== 'object' || Array.isArray(b)) continue;
    const known = knownKeys(r, b as Record<string, unknown>);
    const org = text(known.orgCode);
    const pid = text(known.patientId);
    if (askable(org) && askable(pid)) keys.push([org, pid]);
  }
  if (keys.length === 0) return out;
  const uniq = [...new Map(keys.map((k) => [`${k[0]}|${k[1]}`, k])).values()];
  const k = keyList(['org_code', 'id'], uniq);
  // A single record's shape (one patient) is prepared once per connection; other shapes vary.
  const rows = await exec<{ org_code: string; id: string; birth_date: Date | null }>(
    db,
    `SELECT org_code, id, birth_date FROM emr_patient_info WHERE ${k.sql}`,
    k.params,
    uniq.length === 1 && 'birth_days1',
  );
  for (const row of rows.rows) if (row.birth_date) out.set(birthKey(row.org_code, row.id), localDay(new Date(row.birth_date), TIME_ZONE()));
  return out;
}
