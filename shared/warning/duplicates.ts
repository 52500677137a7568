/**
 * The national duplicate-card rules (重卡) and the status of a case's card (docs/warning.md "Duplicate
 * cards", "Card status"). A person is the same person by resident ID number, or — without one — by
 * name, sex, population class, birth date and address; the same disease by NNDRS code (a subtype and
 * its parent family count as one: 0302 乙肝 and 0300 病毒性肝炎, not 0301 甲肝). A card for that person
 * and disease within the case window (any time for a chronic disease, reported once per case) makes
 * a new prompt a duplicate; a card older than the window is a past course, and a new one is not a
 * duplicate. Of two cards competing for one case the higher diagnosis level wins.
 */
import { createHash } from 'node:crypto';
import type { Tx } from '../db/index.js';
import { sameContentSql } from '../ingest/restore-gap.js';
import { log } from '../log/index.js';
import { normalizeForHash, pii, PiiKeyError, PiiValueError } from '../pii/index.js';

/**
 * Diseases reported once per case (a chronic infection is not re-reported at each visit), by NNDRS
 * code prefix: tuberculosis (26xx), AIDS/HIV (06xx), hepatitis B (0302) and C (0303), schistosomiasis (31xx).
 */
export const CHRONIC_PREFIXES = ['26', '06', '0302', '0303', '31'] as const;
export const isChronic = (nndrs: string | null): boolean => !!nndrs && CHRONIC_PREFIXES.some((p) => nndrs.startsWith(p));

/** Two NNDRS codes name the same disease: equal, or one is the family's parent (xx00) of the other. */
export function sameDisease(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  if (a === b) return true;
  return a.slice(0, 2) === b.slice(0, 2) && (a.endsWith('00') || b.endsWith('00'));
}

/** Diagnosis levels (病例分类): 确诊 > 临床诊断 > 阳性检测/病原携带者 > 疑似/留观. */
const LEVEL: Record<string, number> = { '2': 5, '1': 4, '5': 3, '4': 3, '3': 2, '6': 1 };
export const levelOf = (code: unknown): number => (typeof code === 'string' ? (LEVEL[code] ?? 0) : 0);

const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : v instanceof Date ? v.toISOString().slice(0, 10) : '');
const PLACEHOLDER_ID = /^0{14,17}[0-9X]?$/i;
/** A real resident ID number (15 or 18 characters, not a run of zeros), upper-cased. */
const isResidentId = (id: string): boolean => /^(\d{15}|\d{17}[\dX])$/.test(id) && !PLACEHOLDER_ID.test(id);

/**
 * By ID number the person is its HMAC (shared/pii): the rules compare and look up hashes, never the
 * number. Without one the person is looked up by the name's HMAC, and by the clear name (`name`,
 * trimmed as sent) in rows stored before migration 0990 that have none yet (docs/keys.md).
 */
export type PersonKey = { by: 'id'; key: string; idHash: string } | { by: 'person'; key: string; name: string; nameHash: string };

/**
 * A personal field as stored (sealed: opened here; clear before migrations 0032 and 0990) or as
 * sent (clear). A value that cannot be opened
 * (its key id is not in the key file: docs/keys.md) counts as missing — no match is claimed on it —
 * and is logged (the key id only), so that one record never stops the warning loop.
 */
const clearText = (v: unknown): string => {
  if (typeof v !== 'string') return text(v);
  try {
    return pii().open(v).trim();
  } catch (err) {
    if (!(err instanceof PiiKeyError || err instanceof PiiValueError)) throw err;
    log('error', 'duplicate cards: a stored value cannot be opened', { keyId: err.keyId });
    return '';
  }
};

/**
 * Who a record is, for the rules: the resident ID number when it has a real one (by its HMAC), else
 * name, sex, population class, birth date and address (all needed: without them no match is
 * claimed; the name compared as its lookup hash normalises it, docs/keys.md). The record may be
 * stored (its ID number, name and address sealed) or as sent.
 */
export function personKey(rec: Record<string, unknown>): PersonKey | null {
  const id = clearText(rec.idCard).toUpperCase();
  const idType = text(rec.idCardTypeCode);
  if ((idType === '01' || idType === '') && isResidentId(id)) {
    const idHash = pii().hash('idno', id);
    return { by: 'id', key: `id:${idHash}`, idHash };
  }
  const name = clearText(rec.patientName);
  const address = `${text(rec.currentAddrCode)} ${clearText(rec.currentAddrDetail)}`.trim();
  const parts = [normalizeForHash('name', name), text(rec.genderCode), text(rec.nultitudeTypeCode), text(rec.birthDate).slice(0, 10), address];
  if (parts.some((p) => p === '')) return null;
  const key = `person:${createHash('sha256').update(parts.join('\u0001')).digest('hex')}`;
  return { by: 'person', key, name, nameHash: pii().hash('name', name) };
}

/**
 * What a console search matches of a person (docs/console.md "Cases"), as conditions on a table with
 * `patient_name`, `patient_name_hmac` and `id_card_hmac` under `alias`, its values pushed onto
 * `params`: a resident ID number by its HMAC, or a name — text with a letter or a Chinese character —
 * by its HMAC (both are stored sealed, docs/keys.md), or, in a row stored before migration 0990
 * that has no HMAC yet, by the clear name (`clearNames`). Digits alone are an id, not a person: none.
 */
export function searchedPerson(search: string, params: unknown[], alias: string): string[] {
  const s = search.trim();
  if (isResidentId(s.toUpperCase())) return [`${alias}.id_card_hmac = $${params.push(pii().hash('idno', s.toUpperCase()))}`];
  if (!/[\p{L}]/u.test(s) || s.length > 50) return [];
  const [asSent, normalised] = clearNames(s);
  return [byName(alias, `$${params.push(pii().hash('name', s))}`, `$${params.push(asSent)}`, `$${params.push(normalised)}`)];
}

/** A name by its HMAC, or by the clear name in a row stored before migration 0990 (no HMAC yet; docs/keys.md). */
const byName = (alias: string, hash: string, asSent: string, normalised: string) =>
  `(${alias}.patient_name_hmac = ${hash} OR (${alias}.patient_name_hmac IS NULL AND ${alias}.patient_name IN (${asSent}, ${normalised})))`;

const PRIOR_COLUMNS = 'org_code, id, patient_id, disease_code, rec_raw, report_date, rec_received_at';
const PRIOR_WHERE = 'org_code = $1 AND NOT rec_retired AND NOT rec_test';
/**
 * The candidate cards of a person: by the ID number's HMAC, or by the name's — and, in a second
 * branch of its own so that each takes its partial index (infra/db/0990_pii_names.sql), by the clear
 * name in the cards stored before migration 0990 that have no HMAC yet: an upgraded front misses no
 * duplicate it found before (docs/keys.md "Upgrading a front with data").
 */
const priorSql = (who: PersonKey): { sql: string; params: string[] } =>
  who.by === 'id'
    ? { sql: `SELECT ${PRIOR_COLUMNS} FROM emr_inf_report WHERE ${PRIOR_WHERE} AND id_card_hmac = $2`, params: [who.idHash] }
    : {
        sql: `SELECT ${PRIOR_COLUMNS} FROM emr_inf_report WHERE ${PRIOR_WHERE} AND patient_name_hmac = $2
              UNION ALL
              SELECT ${PRIOR_COLUMNS} FROM emr_inf_report WHERE ${PRIOR_WHERE} AND patient_name_hmac IS NULL AND patient_name IN ($3, $4)`,
        params: [who.nameHash, ...clearNames(who.name)],
      };

/**
 * The clear names a row stored before migration 0990 is looked up by: the name as sent (trimmed: what
 * the lookup compared before it) and as its hash normalises it (a space typed inside it, full-width
 * forms), so that a stored name written plainly is found however the new record typed it.
 */
const clearNames = (name: string): [string, string] => [name, normalizeForHash('name', name)];

export interface PriorCard {
  orgCode: string;
  cardId: string;
  patientId: string | null;
  diseaseCode: string;
  level: number;
  reportedAt: Date;
  rule: 'same-id' | 'same-person' | 'chronic-once';
}

/**
 * The cards already stored by the hospital (`org`) for this person and disease that make a new one a
 * duplicate: within `windowDays` before `now`, or any time for a chronic disease. Retired and test
 * cards do not count. Across hospitals the national platform's own check applies: it sees them all.
 */
export async function priorCards(
  tx: Pick<Tx, 'query'>,
  org: string,
  who: PersonKey,
  nndrs: string | null,
  o: { windowDays: number; now: Date; exceptCard?: { org: string; id: string } },
): Promise<PriorCard[]> {
  if (!nndrs) return [];
  const q = priorSql(who);
  const rows = (
    await tx.query<{
      org_code: string;
      id: string;
      patient_id: string | null;
      disease_code: string | null;
      rec_raw: Record<string, unknown>;
      report_date: Date | null;
      rec_received_at: Date;
    }>(q.sql, [org, ...q.params])
  ).rows;
  const chronic = isChronic(nndrs);
  const since = o.now.getTime() - o.windowDays * 86_400_000;
  const out: PriorCard[] = [];
  for (const r of rows) {
    if (o.exceptCard && r.org_code === o.exceptCard.org && r.id === o.exceptCard.id) continue;
    if (!sameDisease(r.disease_code, nndrs)) continue;
    const k = personKey(r.rec_raw);
    if (!k || k.key !== who.key) continue;
    const at = new Date(r.report_date ?? r.rec_received_at);
    if (!chronic && at.getTime() < since) continue; // a past course: not a duplicate
    out.push({
      orgCode: r.org_code,
      cardId: r.id,
      patientId: r.patient_id,
      diseaseCode: r.disease_code!,
      level: levelOf(r.rec_raw.diagnoseStateCode),
      reportedAt: at,
      rule: chronic ? 'chronic-once' : who.by === 'id' ? 'same-id' : 'same-person',
    });
  }
  return out.sort((a, b) => b.level - a.level || a.reportedAt.getTime() - b.reportedAt.getTime());
}

export const RULE_TEXT: Record<PriorCard['rule'], string> = {
  'same-id': '同一身份证号、同一病种已有报告卡 (same ID number and disease)',
  'same-person': '同一姓名、性别、人群分类、出生日期和地址、同一病种已有报告卡 (same person and disease, no ID number)',
  'chronic-once': '慢性传染病每个病例只报告一次 (a chronic disease is reported once per case)',
};

export type CardStatus = 'stored' | 'sent' | 'accepted' | 'returned' | 'corrected';
export const CARD_STATUS_NAME: Record<CardStatus, string> = {
  stored: '已保存，待上报',
  sent: '已上报，待平台回执',
  accepted: '平台已接收',
  returned: '平台退回，待修改',
  corrected: '已修改，平台已接收',
};

/**
 * A card's status at the national platform (the destinations of kind national), from the delivery
 * ledger: stored (not sent yet), sent (no receipt yet), accepted, returned for correction (rejected,
 * with the platform's reason), or corrected (an earlier version was returned, the latest is
 * accepted). The one rule, in SQL, for one card and for the console's list of cards (listCards).
 */
const NATIONAL = `SELECT name FROM uplink_destination WHERE kind = 'national'`;
/** `alias`'s version is the card's current content (shared/ingest/restore-gap.ts sameContentSql). */
const CURRENT = (alias: string) => sameContentSql(alias, 'r.rec_version');
const LATEST = (col: string) =>
  `(SELECT d.${col} FROM uplink_delivery d WHERE d.destination IN (${NATIONAL}) AND d.resource = 'emrInfReport'
       AND d.org_code = r.org_code AND d.record_id = r.id AND ${CURRENT('d')} ORDER BY d.delivery_id DESC LIMIT 1)`;
/** Cards of emr_inf_report matching `where` (on `r`), with their status; scalar subqueries only (docs/opengauss.md). */
const cardStatusSql = (where: string) => `
  SELECT x.*, CASE WHEN x.latest = 'rejected' THEN 'returned'
                   WHEN x.latest IN ('accepted', 'duplicate') THEN CASE WHEN x.returned_before THEN 'corrected' ELSE 'accepted' END
                   WHEN x.sent THEN 'sent' ELSE 'stored' END AS status
    FROM (SELECT r.org_code, r.id, r.rec_version, r.patient_id, r.disease_code, r.disease_name, r.report_date, r.rec_received_at,
                 ${LATEST('status')} AS latest, ${LATEST('reason')} AS reason, ${LATEST('recorded_at')} AS at,
                 EXISTS (SELECT 1 FROM uplink_delivery d WHERE d.destination IN (${NATIONAL}) AND d.resource = 'emrInfReport'
                            AND d.org_code = r.org_code AND d.record_id = r.id AND d.status = 'rejected' AND d.version < r.rec_version AND NOT (${CURRENT('d')})) AS returned_before,
                 EXISTS (SELECT 1 FROM outbox o WHERE o.destination IN (${NATIONAL}) AND o.resource = 'emrInfReport'
                            AND o.org_code = r.org_code AND o.record_id = r.id AND ${CURRENT('o')} AND o.state = 'sent') AS sent
            FROM emr_inf_report r WHERE ${where}) x`;

interface CardStatusRow {
  org_code: string;
  id: string;
  rec_version: number;
  patient_id: string | null;
  disease_code: string | null;
  disease_name: string | null;
  report_date: Date | null;
  rec_received_at: Date;
  reason: string | null;
  at: Date | null;
  status: CardStatus;
}

export async function cardStatus(
  tx: Pick<Tx, 'query'>,
  org: string,
  cardId: string,
): Promise<{ status: CardStatus; name: string; version: number | null; reason: string | null; at: Date | null }> {
  const row = (await tx.query<CardStatusRow>(cardStatusSql('r.org_code = $1 AND r.id = $2'), [org, cardId])).rows[0];
  if (!row) return { status: 'stored', name: CARD_STATUS_NAME.stored, version: null, reason: null, at: null };
  const returned = row.status === 'returned' || row.status === 'accepted' || row.status === 'corrected';
  return {
    status: row.status,
    name: CARD_STATUS_NAME[row.status],
    version: row.rec_version,
    reason: returned ? row.reason : null,
    at: returned && row.at ? new Date(row.at) : null,
  };
}

export interface CardListing {
  orgCode: string;
  id: string;
  version: number;
  patientId: string | null;
  disease: string;
  reportedAt: Date | null;
  receivedAt: Date;
  status: CardStatus;
  name: string;
  reason: string | null;
}

/** Which cards need someone first: returned by the platform, then not yet sent, then waiting for a receipt. */
const CARD_ORDER = `CASE status WHEN 'returned' THEN 0 WHEN 'stored' THEN 1 WHEN 'sent' THEN 2 ELSE 3 END`;

/**
 * The report cards of the orgs (null: every org) received in the last `days`, with their status at
 * the national platform, the ones that need someone first: returned, then not yet sent, then sent
 * without a receipt, then accepted — the newest first within each. A status and a search (the card
 * id, or part of the patient id or the disease) are the query's, so old accepted cards never push
 * a returned one off the list.
 */
export async function listCards(
  db: Pick<Tx, 'query'>,
  q: { orgs: readonly string[] | null; status?: CardStatus; search?: string; days: number; limit: number; now: Date },
): Promise<CardListing[]> {
  const where = [`r.rec_retired = false`];
  const params: unknown[] = [];
  if (q.orgs) where.push(`r.org_code = ANY($${params.push(q.orgs)}::varchar[])`);
  where.push(`r.rec_received_at > $${params.push(new Date(q.now.getTime() - q.days * 86_400_000))}`);
  if (q.search) {
    const n = params.push(q.search);
    const person = searchedPerson(q.search, params, 'r');
    where.push(
      `(r.id = $${n} OR position($${n}::varchar in coalesce(r.patient_id, '')) > 0 OR position($${n}::varchar in coalesce(r.disease_name, '')) > 0${person.map((x) => ` OR ${x}`).join('')})`,
    );
  }
  const status = q.status ? `WHERE status = $${params.push(q.status)}` : '';
  const rows = (
    await db.query<CardStatusRow>(
      `SELECT * FROM (${cardStatusSql(where.join(' AND '))}) c ${status}
        ORDER BY ${CARD_ORDER}, rec_received_at DESC, id LIMIT $${params.push(q.limit)}`,
      params,
    )
  ).rows;
  return rows.map((r) => ({
    orgCode: r.org_code,
    id: r.id,
    version: r.rec_version,
    patientId: r.patient_id,
    disease: r.disease_name || r.disease_code || '',
    reportedAt: r.report_date,
    receivedAt: r.rec_received_at,
    status: r.status,
    name: CARD_STATUS_NAME[r.status],
    reason: r.status === 'returned' ? r.reason : null,
  }));
}
