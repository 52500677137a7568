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
import { log } from '../log/index.js';
import { pii, PiiKeyError, PiiValueError } from '../pii/index.js';

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

/** By ID number the person is its HMAC (shared/pii): the rules compare and look up hashes, never the number. */
export type PersonKey = { by: 'id'; key: string; idHash: string } | { by: 'person'; key: string; name: string };

/**
 * A personal field as stored (sealed: opened here) or as sent (clear). A value that cannot be opened
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
 * claimed). The record may be stored (its ID number and address sealed) or as sent.
 */
export function personKey(rec: Record<string, unknown>): PersonKey | null {
  const id = clearText(rec.idCard).toUpperCase();
  const idType = text(rec.idCardTypeCode);
  if ((idType === '01' || idType === '') && /^(\d{15}|\d{17}[\dX])$/.test(id) && !PLACEHOLDER_ID.test(id)) {
    const idHash = pii().hash('idno', id);
    return { by: 'id', key: `id:${idHash}`, idHash };
  }
  const name = text(rec.patientName);
  const address = `${text(rec.currentAddrCode)} ${clearText(rec.currentAddrDetail)}`.trim();
  const parts = [name, text(rec.genderCode), text(rec.nultitudeTypeCode), text(rec.birthDate).slice(0, 10), address];
  if (parts.some((p) => p === '')) return null;
  return { by: 'person', key: `person:${createHash('sha256').update(parts.join('\u0001')).digest('hex')}`, name };
}

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
  const rows = (
    await tx.query<{
      org_code: string;
      id: string;
      patient_id: string | null;
      disease_code: string | null;
      rec_raw: Record<string, unknown>;
      report_date: Date | null;
      rec_received_at: Date;
    }>(
      who.by === 'id'
        ? `SELECT org_code, id, patient_id, disease_code, rec_raw, report_date, rec_received_at FROM emr_inf_report WHERE org_code = $1 AND id_card_hmac = $2 AND NOT rec_retired AND NOT rec_test`
        : `SELECT org_code, id, patient_id, disease_code, rec_raw, report_date, rec_received_at FROM emr_inf_report WHERE org_code = $1 AND patient_name = $2 AND NOT rec_retired AND NOT rec_test`,
      [org, who.by === 'id' ? who.idHash : who.name],
    )
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
 * A card's status at the national platform (the destinations of kind national), from the delivery ledger: stored (not sent yet), sent
 * (no receipt yet), accepted, returned for correction (rejected, with the platform's reason), or
 * corrected (an earlier version was returned, the latest is accepted).
 */
export async function cardStatus(
  tx: Pick<Tx, 'query'>,
  org: string,
  cardId: string,
): Promise<{ status: CardStatus; name: string; version: number | null; reason: string | null; at: Date | null }> {
  const cur = (await tx.query<{ rec_version: number }>('SELECT rec_version FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, cardId])).rows[0];
  const deliveries = (
    await tx.query<{ version: number; status: string; reason: string | null; recorded_at: Date }>(
      `SELECT version, status, reason, recorded_at FROM uplink_delivery
        WHERE destination IN (SELECT name FROM uplink_destination WHERE kind = 'national') AND resource = 'emrInfReport' AND org_code = $1 AND record_id = $2 ORDER BY delivery_id`,
      [org, cardId],
    )
  ).rows;
  const version = cur?.rec_version ?? null;
  const latest = deliveries.filter((d) => d.version === version).at(-1);
  const returnedBefore = deliveries.some((d) => d.status === 'rejected' && version !== null && d.version < version);
  const make = (status: CardStatus, d?: { reason: string | null; recorded_at: Date }) => ({
    status,
    name: CARD_STATUS_NAME[status],
    version,
    reason: d?.reason ?? null,
    at: d ? new Date(d.recorded_at) : null,
  });
  if (latest?.status === 'rejected') return make('returned', latest);
  if (latest && (latest.status === 'accepted' || latest.status === 'duplicate')) return make(returnedBefore ? 'corrected' : 'accepted', latest);
  const sent = (
    await tx.query<{ n: string }>(
      `SELECT count(*) AS n FROM outbox WHERE destination IN (SELECT name FROM uplink_destination WHERE kind = 'national') AND resource = 'emrInfReport' AND org_code = $1 AND record_id = $2 AND version = $3 AND state = 'sent'`,
      [org, cardId, version],
    )
  ).rows[0];
  return make(Number(sent?.n ?? 0) > 0 ? 'sent' : 'stored');
}
