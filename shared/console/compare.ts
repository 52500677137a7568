/**
 * 每日比对: the direct-report system's (中国疾病预防控制信息系统 网络直报) card export against the
 * front's own report cards (docs/console.md "The comparison page"). The export is read as Excel
 * writes it (shared/codes/csv.ts: BOM, else strict UTF-8, else GBK), its columns found by their
 * Chinese headers (EXPORT_COLUMNS) and each row checked by ExportRowSchema. Rows are matched to the
 * front's cards by card id, else by ID number + disease + diagnosis day; every difference is given
 * its likely causes, each read from the front's own tables (holds, the outbox and the delivery
 * ledger, rejections, warning cases) — never guessed. Only a summary of each upload is kept
 * (compare_run), with its author; the file itself is not.
 */
import { pii, PiiKeyError, PiiValueError } from '../pii/index.js';
import { z } from 'zod';
import { decodeText, parseCsv, records, type Encoding } from '../codes/csv.js';
import type { Db } from '../db/index.js';
import { keyList } from '../db/sql.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import { mask } from '../ingest/mask.js';
import { cardStatus, sameDisease } from '../warning/duplicates.js';
import { CASE_STATE_NAME, type CaseState } from '../warning/store.js';
import { addDays, dayBounds, isDay, localDay } from '../time/day.js';
import { parseTime } from '../time/index.js';
import { diseaseOf } from '../../schemas/report-card.js';
import { lists } from '../../schemas/codes/lists.js';

/** The largest export taken (a day's cards of a large hospital are well under 1 MB). */
export const COMPARE_MAX_BYTES = 5 * 1024 * 1024;
/** Rows per export at most. */
export const COMPARE_MAX_ROWS = 20_000;

/**
 * The export's columns the comparison reads, each with the headers it is known by (the direct-report
 * system's own names first). Other columns of the export are ignored. Required: 患者姓名, 疾病名称,
 * 诊断日期; the rest is compared when present.
 */
export const EXPORT_COLUMNS = {
  cardNo: ['卡片编号', '报告卡编号', '报卡编号', '卡片号'],
  cardId: ['卡片ID', '卡片唯一标识'],
  patientName: ['患者姓名', '病人姓名', '姓名'],
  idCard: ['有效证件号', '身份证号', '身份证号码', '证件号码'],
  gender: ['性别'],
  birthDate: ['出生日期'],
  diseaseName: ['疾病名称', '病种', '病种名称'],
  diseaseCode: ['疾病编码', '病种编码'],
  onsetDate: ['发病日期'],
  diagnoseDate: ['诊断日期', '诊断时间'],
  reportOrg: ['报告单位'],
  fillDoctor: ['填卡医生', '报告医生'],
  reportDate: ['报告日期', '录入时间', '报告卡录入时间', '医生填卡日期', '填卡日期'],
} as const satisfies Record<string, readonly string[]>;
export type ExportColumn = keyof typeof EXPORT_COLUMNS;
export const REQUIRED_COLUMNS = ['patientName', 'diseaseName', 'diagnoseDate'] as const satisfies readonly ExportColumn[];
const label = (k: ExportColumn) => EXPORT_COLUMNS[k][0];

/** A date or time as the export writes it (2026-12-03, 2026/12/3, 2026-12-03 10:20:00) → the local day. */
const dayIn = (timeZone: string) =>
  z.string().transform((s, ctx) => {
    const t = parseTime(s, timeZone);
    if (!t) {
      ctx.addIssue({ code: 'custom', message: '不是日期（yyyy-MM-dd）(not a date)' });
      return z.NEVER;
    }
    return localDay(t, timeZone);
  });
const text = (max: number) => z.string().max(max, `超过 ${max} 个字符 (longer than ${max})`);

/** One row of the export, as the comparison reads it; dates become local days of `timeZone`. */
export function exportRowSchema(timeZone: string) {
  const Day = dayIn(timeZone);
  return z.object({
    cardNo: text(80).optional(),
    cardId: text(80).optional(),
    patientName: text(100),
    idCard: text(50)
      .transform((s) => s.toUpperCase())
      .optional(),
    gender: text(10).optional(),
    birthDate: Day.optional(),
    diseaseName: text(250),
    diseaseCode: text(50).optional(),
    onsetDate: Day.optional(),
    diagnoseDate: Day,
    reportOrg: text(150).optional(),
    fillDoctor: text(50).optional(),
    reportDate: Day.optional(),
  });
}
export const ExportRowSchema = exportRowSchema('Asia/Shanghai');
export type ExportRow = z.infer<typeof ExportRowSchema> & { line: number; nndrs: string | null };

export interface ParsedExport {
  rows: ExportRow[];
  encoding: Encoding;
  /** The columns found (keys). */
  columns: ExportColumn[];
}

/** Reads an export's bytes; a wrong file is refused whole, naming the columns or the lines and fields at fault. */
export function parseExport(bytes: Uint8Array, timeZone: string): ParsedExport {
  const schema = exportRowSchema(timeZone);
  if (bytes.length > COMPARE_MAX_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `文件超过 ${COMPARE_MAX_BYTES / 1024 / 1024} MB 上限 (file too large)`);
  // An Excel workbook (.xlsx is a zip, .xls an OLE file) is not the CSV export.
  if (
    (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) ||
    (bytes[0] === 0xd0 && bytes[1] === 0xcf && bytes[2] === 0x11 && bytes[3] === 0xe0)
  ) {
    throw new AppError(
      'BAD_REQUEST',
      '这是 Excel 工作簿（.xlsx/.xls），不是 CSV：请在直报系统导出 CSV，或在 Excel 中“另存为 CSV（逗号分隔）”后上传 (an Excel workbook, not CSV)',
    );
  }
  const { text: body, encoding } = decodeText(bytes);
  const table = records(parseCsv(body), EXPORT_COLUMNS);
  const columns = (Object.keys(EXPORT_COLUMNS) as ExportColumn[]).filter((k) => !table.missing.includes(k));
  const missing = REQUIRED_COLUMNS.filter((k) => table.missing.includes(k));
  if (missing.length) {
    throw new AppError(
      'BAD_REQUEST',
      `文件缺少列：${missing.map((k) => EXPORT_COLUMNS[k].join('/')).join('、')}。请上传直报系统导出的报告卡 CSV（表头在第一行）(missing columns: ${missing.join(', ')})`,
      missing.map((k) => ({ field: label(k), rule: 'requiredColumn', message: `缺少列 ${EXPORT_COLUMNS[k].join('/')}` })),
    );
  }
  if (table.records.length === 0) throw new AppError('BAD_REQUEST', '文件中没有报告卡（只有表头）(no rows)');
  if (table.records.length > COMPARE_MAX_ROWS) throw new AppError('PAYLOAD_TOO_LARGE', `文件超过 ${COMPARE_MAX_ROWS} 行 (too many rows)`);
  const rows: ExportRow[] = [];
  const issues: FieldIssue[] = [];
  for (const r of table.records) {
    const p = schema.safeParse(r.values);
    if (!p.success) {
      for (const i of p.error.issues) {
        const k = String(i.path[0]) as ExportColumn;
        const name = EXPORT_COLUMNS[k]?.[0] ?? k;
        issues.push({ field: `第 ${r.line} 行 ${name}`, rule: i.code, message: i.code === 'invalid_type' ? '必填，不能为空 (required)' : i.message });
      }
      continue;
    }
    rows.push({ ...p.data, line: r.line, nndrs: diseaseOf({ diseaseCode: p.data.diseaseCode, diseaseName: p.data.diseaseName }) });
  }
  if (issues.length) {
    const shown = issues.slice(0, 20);
    throw new AppError(
      'VALIDATION_FAILED',
      `文件有 ${issues.length} 处错误，未比对：${shown.map((i) => `${i.field}：${i.message}`).join('；')}${issues.length > shown.length ? '……' : ''}`,
      shown,
    );
  }
  return { rows, encoding, columns };
}

// ---- the front's side ---------------------------------------------------------------------------

const FrontCardRow = z.object({
  org_code: z.string(),
  id: z.string(),
  patient_name: z.string().nullable(),
  id_card: z.string().nullable(),
  gender_code: z.string().nullable(),
  birth_date: z.date().nullable(),
  disease_code: z.string().nullable(),
  disease_name: z.string().nullable(),
  onset_date: z.date().nullable(),
  diagnose_time: z.date().nullable(),
  report_at: z.date().nullable(),
  report_org_name: z.string().nullable(),
  fill_doctor: z.string().nullable(),
  rec_version: z.number().int(),
});
type FrontCard = z.infer<typeof FrontCardRow> & { nndrs: string | null; inPeriod: boolean };

/** The causes of a difference, each read from the front's tables (docs/console.md "Causes"). */
export const Cause = z.enum([
  'not_forwarded',
  'held_mapping',
  'held_rule',
  'held_parent',
  'rejected_front',
  'rejected_platform',
  'hand_only',
  'source_no_card',
  'duplicate',
  'accepted_not_exported',
  'changed_in_export',
]);
export type Cause = z.infer<typeof Cause>;
export const CAUSE_NAMES: Record<Cause, string> = {
  not_forwarded: '前置尚未上报',
  held_mapping: '代码未映射，暂缓上报',
  held_rule: '映射后不符合规则，等待更正',
  held_parent: '等待患者信息，暂缓上报',
  rejected_front: '前置校验拒收',
  rejected_platform: '平台退回',
  hand_only: '仅在直报系统手工报告',
  source_no_card: '前置有预警病例，无报告卡',
  duplicate: '重复报告',
  accepted_not_exported: '平台已接收，导出中没有',
  changed_in_export: '直报系统中已修改',
};

export const DiffKind = z.enum(['matched', 'export_only', 'front_only']);
export type DiffKind = z.infer<typeof DiffKind>;

export interface FieldDiff {
  field: string;
  exported: string;
  front: string;
}

export interface Difference {
  kind: DiffKind;
  /** The export's line (export_only, matched). */
  line: number | null;
  /** The front's card (front_only, matched). */
  card: { org: string; id: string } | null;
  matchedBy: 'card' | 'identity' | null;
  /** Masked (shared/ingest/mask.ts). */
  patient: string;
  idCard: string;
  disease: string;
  fields: FieldDiff[];
  causes: Array<{ cause: Cause; detail: string }>;
}

export interface DayFigures {
  day: string;
  /** null: no day-close result for the day (暂无数据). */
  outpatientVisits: number | null;
  emergencyVisits: number | null;
  infectiousAdmissions: number | null;
  reportCards: number | null;
  kind: string | null;
}

export interface Comparison {
  encoding: Encoding;
  orgs: '*' | string[];
  from: string;
  to: string;
  counts: { exportRows: number; frontCards: number; matched: number; identical: number; differing: number; exportOnly: number; frontOnly: number };
  causes: Partial<Record<Cause, number>>;
  differences: Difference[];
  days: DayFigures[];
}

const nndrsName = new Map<string, string>(lists.nndrsDisease.codes.map((c) => [c.code, c.name]));
const diseaseText = (nndrs: string | null, name: string | null | undefined) => (nndrs ? (nndrsName.get(nndrs) ?? name ?? nndrs) : (name ?? '—'));
const SEX: Record<string, string> = { 男: '1', 男性: '1', 女: '2', 女性: '2', 未知: '0', 未知的性别: '0', 未说明: '9', 未说明的性别: '9' };
const SEX_NAME: Record<string, string> = { '1': '男', '2': '女', '0': '未知', '9': '未说明' };
const sexOf = (v: string | null | undefined) => (v ? (SEX[v.trim()] ?? v.trim()) : '');
const norm = (v: string | null | undefined) => (v ?? '').normalize('NFKC').replace(/\s+/g, '');
const maskName = (v: string | null | undefined) => (v ? String(mask('name', v)) : '—');
const maskId = (v: string | null | undefined) => (v ? String(mask('idno', v)) : '—');
const maskBirth = (v: string | null | undefined) => (v ? String(mask('birthdate', v)) : '—');
const identityKey = (idCard: string | null | undefined, nndrs: string | null) =>
  idCard && nndrs ? `${idCard.trim().toUpperCase()}\u0000${nndrs.slice(0, 2)}${nndrs.endsWith('00') ? '' : nndrs.slice(2)}` : null;

/** The field-by-field differences of a matched pair; personal values masked. */
function fieldDiffs(e: ExportRow, f: FrontCard, tz: string): FieldDiff[] {
  const out: FieldDiff[] = [];
  const day = (d: Date | null) => (d ? localDay(d, tz) : '');
  const check = (field: string, has: boolean, same: boolean, exported: string, front: string) => {
    if (has && !same) out.push({ field, exported, front });
  };
  check('患者姓名', e.patientName !== undefined, norm(e.patientName) === norm(f.patient_name), maskName(e.patientName), maskName(f.patient_name));
  check(
    '有效证件号',
    e.idCard !== undefined,
    (e.idCard ?? '') === (f.id_card ?? '').toUpperCase(),
    `${maskId(e.idCard)}（已脱敏）`,
    `${maskId(f.id_card)}（已脱敏）`,
  );
  check('性别', e.gender !== undefined, sexOf(e.gender) === (f.gender_code ?? ''), e.gender ?? '', SEX_NAME[f.gender_code ?? ''] ?? f.gender_code ?? '—');
  check('出生日期', e.birthDate !== undefined, e.birthDate === day(f.birth_date), maskBirth(e.birthDate), maskBirth(day(f.birth_date)));
  check(
    '疾病名称',
    true,
    e.nndrs && f.nndrs ? e.nndrs === f.nndrs : norm(e.diseaseName) === norm(f.disease_name),
    diseaseText(e.nndrs, e.diseaseName),
    diseaseText(f.nndrs, f.disease_name),
  );
  check('发病日期', e.onsetDate !== undefined, e.onsetDate === day(f.onset_date), e.onsetDate ?? '', day(f.onset_date) || '—');
  check('诊断日期', true, e.diagnoseDate === day(f.diagnose_time), e.diagnoseDate, day(f.diagnose_time) || '—');
  check('报告单位', e.reportOrg !== undefined, norm(e.reportOrg) === norm(f.report_org_name), e.reportOrg ?? '', f.report_org_name ?? '—');
  check('填卡医生', e.fillDoctor !== undefined, norm(e.fillDoctor) === norm(f.fill_doctor), maskName(e.fillDoctor), maskName(f.fill_doctor));
  check('报告日期', e.reportDate !== undefined, e.reportDate === day(f.report_at), e.reportDate ?? '', day(f.report_at) || '—');
  return out;
}

export interface CompareOptions {
  /** The orgs compared: the user's (or one chosen); '*' all. */
  orgs: '*' | string[];
  timeZone: string;
  /** The report days compared; default: the export's report days (else its diagnosis days). */
  from?: string | undefined;
  to?: string | undefined;
}

const orgFilter = (orgs: '*' | string[], col: string, at: number) =>
  orgs === '*' ? { sql: 'true', params: [] as unknown[] } : { sql: `${col} = ANY($${at}::varchar[])`, params: [orgs] as unknown[] };

/** A cause of a difference, with what the front's tables say of it. */
type Because = { cause: Cause; detail: string };
/** An export row and the front's card it matched, if any, and how. */
type Pair = { e: ExportRow; f: FrontCard | null; by: 'card' | 'identity' | null };
/** The duplicate causes of an export row and of a front card. */
interface Duplicates {
  ofExport: (e: ExportRow) => Because[];
  ofFront: (f: FrontCard) => Because[];
}
/** The causes of each card (by key) and of each unmatched export row (by line). */
interface Causes {
  cards: Map<string, Because[]>;
  rows: Map<number, Because[]>;
}

/** Compares a parsed export with the front's cards of the same orgs and days. */
export async function compareExport(db: Db, exp: ParsedExport, o: CompareOptions): Promise<Comparison> {
  const tz = o.timeZone;
  const { from, to } = periodOf(exp, o);
  const start = dayBounds(from, tz).from;
  const end = dayBounds(to, tz).to;
  const cards = await frontCards(db, exp.rows, o.orgs, start, end);
  const { pairs, taken } = matchRows(exp.rows, cards, tz);
  const frontOnly = cards.filter((c) => c.inPeriod && !taken.has(c));
  const dup = duplicatesOf(exp.rows, cards, taken);
  const why = await causesOf(
    db,
    o.orgs,
    [...pairs.flatMap((p) => (p.f ? [p.f] : [])), ...frontOnly],
    pairs.filter((p) => !p.f).map((p) => p.e),
  );
  const { differences, causeCount, identical } = differencesOf(pairs, frontOnly, why, dup, tz);
  const matched = pairs.filter((p) => p.f).length;
  return {
    encoding: exp.encoding,
    orgs: o.orgs,
    from,
    to,
    counts: {
      exportRows: exp.rows.length,
      frontCards: cards.filter((c) => c.inPeriod).length,
      matched,
      identical,
      differing: matched - identical,
      exportOnly: pairs.length - matched,
      frontOnly: frontOnly.length,
    },
    causes: causeCount,
    differences,
    days: await dayFigures(db, o.orgs, from, to),
  };
}

/** The report days compared: those asked for, else the export's report days (else its diagnosis days); at most 92 days. */
function periodOf(exp: ParsedExport, o: CompareOptions): { from: string; to: string } {
  const days = exp.rows.map((r) => r.reportDate ?? r.diagnoseDate).sort();
  const from = o.from ?? days[0]!;
  const to = o.to ?? days.at(-1)!;
  if (!isDay(from) || !isDay(to) || from > to) throw new AppError('BAD_REQUEST', `比对日期不合法：${from} 至 ${to} (from/to: yyyy-MM-dd, from ≤ to)`);
  if (addDays(from, 92) < to) throw new AppError('BAD_REQUEST', '比对日期范围不能超过 92 天 (at most 92 days)');
  return { from, to };
}

/** The front's cards: those reported in the period [start, end), and any other the rows name (by card id or ID number). */
async function frontCards(db: Db, rows: ExportRow[], orgs: '*' | string[], start: Date, end: Date): Promise<FrontCard[]> {
  const ids = [...new Set(rows.flatMap((r) => [r.cardNo, r.cardId].filter((x): x is string => !!x)))];
  const idCards = [...new Set(rows.map((r) => r.idCard).filter((x): x is string => !!x))];
  const of = orgFilter(orgs, 'c.org_code', 5);
  const res = await db.query(
    `SELECT c.org_code, c.id, c.patient_name, c.id_card, c.gender_code, c.birth_date, c.disease_code, c.disease_name, c.onset_date,
            c.diagnose_time, coalesce(c.report_date, c.operation_time) AS report_at, c.report_org_name, c.fill_doctor, c.rec_version
       FROM emr_inf_report c
      WHERE NOT c.rec_retired AND NOT c.rec_test AND ${of.sql}
        AND ((coalesce(c.report_date, c.operation_time) >= $1 AND coalesce(c.report_date, c.operation_time) < $2)
             OR c.id = ANY($3::varchar[]) OR c.id_card_hmac = ANY($4::varchar[]))
      ORDER BY c.org_code, c.id`,
    // ID numbers and names are stored sealed (docs/keys.md): ID numbers found by their HMAC, both opened to compare.
    [start, end, ids, idCards.map((x) => pii().hash('idno', x)), ...of.params],
  );
  return res.rows.map((row) => {
    const parsed = FrontCardRow.parse(row);
    const r = { ...parsed, patient_name: openOrNull(parsed.patient_name), id_card: openOrNull(parsed.id_card) };
    const at = r.report_at?.getTime();
    return {
      ...r,
      nndrs: diseaseOf({ diseaseCode: r.disease_code, diseaseName: r.disease_name }),
      inPeriod: at !== undefined && at >= start.getTime() && at < end.getTime(),
    };
  });
}

/**
 * Matching: the card id first, then ID number + disease + diagnosis day; each card matches one row
 * at most (`taken`). The pairs are in the export's order; a row without a card has f null.
 */
function matchRows(rows: ExportRow[], cards: FrontCard[], tz: string): { pairs: Pair[]; taken: Set<FrontCard> } {
  const byId = new Map<string, FrontCard[]>();
  for (const c of cards) byId.set(c.id, [...(byId.get(c.id) ?? []), c]);
  const taken = new Set<FrontCard>();
  const pairs: Pair[] = [];
  const pending: ExportRow[] = [];
  for (const e of rows) {
    const f = [e.cardNo, e.cardId].flatMap((k) => (k ? (byId.get(k) ?? []) : [])).find((c) => !taken.has(c));
    if (f) {
      taken.add(f);
      pairs.push({ e, f, by: 'card' });
    } else pending.push(e);
  }
  const byIdCard = new Map<string, FrontCard[]>();
  for (const c of cards) if (c.id_card) byIdCard.set(c.id_card.toUpperCase(), [...(byIdCard.get(c.id_card.toUpperCase()) ?? []), c]);
  for (const e of pending) {
    const f = e.idCard
      ? (byIdCard.get(e.idCard) ?? []).find(
          (c) =>
            !taken.has(c) &&
            (e.nndrs && c.nndrs ? sameDisease(e.nndrs, c.nndrs) : norm(e.diseaseName) === norm(c.disease_name)) &&
            c.diagnose_time !== null &&
            localDay(c.diagnose_time, tz) === e.diagnoseDate,
        )
      : undefined;
    if (f) taken.add(f);
    pairs.push({ e, f: f ?? null, by: f ? 'identity' : null });
  }
  pairs.sort((a, b) => a.e.line - b.e.line);
  return { pairs, taken };
}

/** Duplicates: two export rows, or two front cards (of the period or matched), for one person (ID number) and disease. */
function duplicatesOf(rows: ExportRow[], cards: FrontCard[], taken: Set<FrontCard>): Duplicates {
  const exportDup = new Map<string, number>();
  for (const e of rows) {
    const k = identityKey(e.idCard, e.nndrs);
    if (k) exportDup.set(k, (exportDup.get(k) ?? 0) + 1);
  }
  const frontDup = new Map<string, FrontCard[]>();
  for (const c of cards) {
    if (!c.inPeriod && !taken.has(c)) continue;
    const k = identityKey(c.id_card, c.nndrs);
    if (k) frontDup.set(k, [...(frontDup.get(k) ?? []), c]);
  }
  return {
    ofExport: (e) => {
      const k = identityKey(e.idCard, e.nndrs);
      const n = k ? (exportDup.get(k) ?? 0) : 0;
      return n > 1 ? [{ cause: 'duplicate' as const, detail: `导出中同一证件号、同一病种有 ${n} 张卡` }] : [];
    },
    ofFront: (f) => {
      const k = identityKey(f.id_card, f.nndrs);
      const same = k ? (frontDup.get(k) ?? []) : [];
      return same.length > 1
        ? [{ cause: 'duplicate' as const, detail: `前置中同一证件号、同一病种有 ${same.length} 张卡：${same.map((c) => c.id).join('、')}` }]
        : [];
    },
  };
}

/**
 * The differences — the pairs in the export's order, then the front's unmatched cards — with the
 * number of differences naming each cause, and the number of matched pairs found identical.
 */
function differencesOf(
  pairs: Pair[],
  frontOnly: FrontCard[],
  why: Causes,
  dup: Duplicates,
  tz: string,
): { differences: Difference[]; causeCount: Partial<Record<Cause, number>>; identical: number } {
  const differences: Difference[] = [];
  const causeCount: Partial<Record<Cause, number>> = {};
  const add = (d: Difference) => {
    differences.push(d);
    for (const c of new Set(d.causes.map((x) => x.cause))) causeCount[c] = (causeCount[c] ?? 0) + 1;
  };
  let identical = 0;
  for (const p of pairs) {
    if (p.f) {
      const d = matchedDifference(p.e, p.f, p.by, why, dup, tz);
      if (d) add(d);
      else identical++;
    } else add(exportOnlyDifference(p.e, why, dup));
  }
  for (const f of frontOnly) add(frontOnlyDifference(f, why, dup));
  return { differences, causeCount, identical };
}

/** A matched pair's difference: its fields that differ, and duplicates; null when there is neither. */
function matchedDifference(e: ExportRow, f: FrontCard, by: Pair['by'], why: Causes, dup: Duplicates, tz: string): Difference | null {
  const fields = fieldDiffs(e, f, tz);
  const dups = [...dup.ofExport(e), ...dup.ofFront(f)];
  if (fields.length === 0 && dups.length === 0) return null;
  const st = why.cards.get(key(f))!;
  return {
    kind: 'matched',
    line: e.line,
    card: { org: f.org_code, id: f.id },
    matchedBy: by,
    patient: maskName(e.patientName),
    idCard: maskId(e.idCard ?? f.id_card),
    disease: diseaseText(e.nndrs, e.diseaseName),
    fields,
    causes: [...(fields.length ? st.map((c) => (c.cause === 'accepted_not_exported' ? changedInExport(f) : c)) : []), ...dups],
  };
}

/** An export row no card of the front matched. */
function exportOnlyDifference(e: ExportRow, why: Causes, dup: Duplicates): Difference {
  return {
    kind: 'export_only',
    line: e.line,
    card: null,
    matchedBy: null,
    patient: maskName(e.patientName),
    idCard: maskId(e.idCard),
    disease: diseaseText(e.nndrs, e.diseaseName),
    fields: [],
    causes: [...why.rows.get(e.line)!, ...dup.ofExport(e)],
  };
}

/** A card of the period that no export row matched. */
function frontOnlyDifference(f: FrontCard, why: Causes, dup: Duplicates): Difference {
  return {
    kind: 'front_only',
    line: null,
    card: { org: f.org_code, id: f.id },
    matchedBy: null,
    patient: maskName(f.patient_name),
    idCard: maskId(f.id_card),
    disease: diseaseText(f.nndrs, f.disease_name),
    fields: [],
    causes: [...why.cards.get(key(f))!, ...dup.ofFront(f)],
  };
}

const key = (c: { org_code: string; id: string }) => `${c.org_code}\u0000${c.id}`;
const changedInExport = (f: FrontCard) => ({
  cause: 'changed_in_export' as const,
  detail: `卡片 ${f.id} 的最新版本（第 ${f.rec_version} 版）已被国家平台接收，差异出自直报系统一侧的录入或订正`,
});

/** A stored ID number or name opened for comparison; one that cannot be opened (its key id is gone) compares as absent. */
function openOrNull(sealed: string | null): string | null {
  if (!sealed) return null;
  try {
    return pii().open(sealed);
  } catch (err) {
    if (err instanceof PiiKeyError || err instanceof PiiValueError) return null;
    throw err;
  }
}

const HoldRow = z.object({ org_code: z.string(), record_id: z.string(), kind: z.string(), target: z.string(), value: z.string() });
const RejectionRow = z.object({ org_code: z.string().nullable(), record_id: z.string().nullable(), received_at: z.date(), issues: z.unknown() });
const CaseRow = z.object({ id_card: z.string(), nndrs: z.string().nullable(), disease: z.string(), state: z.string() });
const OutboxRow = z.object({ org_code: z.string(), record_id: z.string(), state: z.string() });

/**
 * The causes of each card's and each unmatched row's difference, from the front's tables: a card's
 * holds (record_hold), its status at the national platform (the delivery ledger and the outbox,
 * shared/warning/duplicates.ts cardStatus); a row's rejections (ingest_rejection of an
 * emrInfReport of its card id) and the warning cases of its ID number and disease.
 */
async function causesOf(db: Db, orgs: '*' | string[], cards: FrontCard[], rows: ExportRow[]): Promise<Causes> {
  const byCard = await cardCauses(db, cards);
  const byRow = await rowCauses(db, orgs, rows);
  return { cards: byCard, rows: byRow };
}

/** Each card's causes, by key: its holds, else its status at the national platform. */
async function cardCauses(db: Db, cards: FrontCard[]): Promise<Map<string, Because[]>> {
  const out = new Map<string, Because[]>();
  const unique = [...new Map(cards.map((c) => [key(c), c])).values()];
  const { holds, dead } = await holdsAndDeadLetters(db, unique);
  for (const c of unique) {
    const list: Because[] = [];
    const hs = holds.get(key(c)) ?? [];
    const mapping = hs.filter((h) => h.kind === 'mapping');
    const parent = hs.filter((h) => h.kind === 'parent');
    const rule = hs.filter((h) => h.kind === 'rule');
    if (rule.length)
      list.push({
        cause: 'held_rule',
        detail: `卡片 ${c.id} 已保存，代码映射后不符合规则，等待更正后重发：${rule.map((h) => `${h.target}（${h.value}）`).join('、')}`,
      });
    if (mapping.length)
      list.push({
        cause: 'held_mapping',
        detail: `卡片 ${c.id} 已保存，因代码未映射暂缓上报：${mapping.map((h) => `${h.target} 代码 ${h.value}`).join('、')}`,
      });
    if (parent.length)
      list.push({ cause: 'held_parent', detail: `卡片 ${c.id} 已保存，等待 ${parent.map((h) => `${h.target} ${h.value}`).join('、')} 到达后上报` });
    if (!hs.length) {
      const s = await cardStatus(db, c.org_code, c.id);
      if (s.status === 'returned')
        list.push({ cause: 'rejected_platform', detail: `卡片 ${c.id} 第 ${s.version} 版被国家平台退回：${s.reason ?? '（无原因）'}` });
      else if (s.status === 'stored' || s.status === 'sent')
        list.push({
          cause: 'not_forwarded',
          detail: `卡片 ${c.id}：${s.name}${dead.has(key(c)) ? '（已停止重试，待运维重放）' : ''}`,
        });
      else list.push({ cause: 'accepted_not_exported', detail: `卡片 ${c.id}：${s.name}（第 ${s.version} 版）` });
    }
    out.set(key(c), list);
  }
  return out;
}

/** The cards' holds (record_hold), and which of them are dead letters to the national platform; 500 cards a query. */
async function holdsAndDeadLetters(db: Db, cards: FrontCard[]): Promise<{ holds: Map<string, z.infer<typeof HoldRow>[]>; dead: Set<string> }> {
  const holds = new Map<string, z.infer<typeof HoldRow>[]>();
  const dead = new Set<string>();
  for (let i = 0; i < cards.length; i += 500) {
    const chunk = cards.slice(i, i + 500);
    const k = keyList(
      ['org_code', 'record_id'],
      chunk.map((c) => [c.org_code, c.id]),
      0,
    );
    for (const row of (
      await db.query(`SELECT org_code, record_id, kind, target, value FROM record_hold WHERE resource = 'emrInfReport' AND ${k.sql}`, k.params)
    ).rows) {
      const h = HoldRow.parse(row);
      holds.set(key({ org_code: h.org_code, id: h.record_id }), [...(holds.get(key({ org_code: h.org_code, id: h.record_id })) ?? []), h]);
    }
    const ko = keyList(
      ['o.org_code', 'o.record_id'],
      chunk.map((c) => [c.org_code, c.id]),
      0,
    );
    const ob = await db.query(
      `SELECT o.org_code, o.record_id, o.state FROM outbox o
        WHERE o.resource = 'emrInfReport' AND o.destination IN (SELECT name FROM uplink_destination WHERE kind = 'national') AND o.state = 'dead' AND ${ko.sql}`,
      ko.params,
    );
    for (const row of ob.rows) {
      const r = OutboxRow.parse(row);
      dead.add(key({ org_code: r.org_code, id: r.record_id }));
    }
  }
  return { holds, dead };
}

/** Each row without a card, by line: a rejection of its card id, else a warning case of its ID number and disease. */
async function rowCauses(db: Db, orgs: '*' | string[], rows: ExportRow[]): Promise<Map<number, Because[]>> {
  const out = new Map<number, Because[]>();
  const rejections = await rejectionsOf(db, orgs, rows);
  const cases = await warningCasesOf(db, orgs, rows);
  for (const r of rows) {
    const list: Because[] = [];
    const rej = rejections.find((x) => x.record_id === r.cardNo || x.record_id === r.cardId);
    if (rej) list.push({ cause: 'rejected_front', detail: `卡片 ${rej.record_id} 由 HIS 推送时被前置拒收：${issueFields(rej.issues) || '见接收记录'}` });
    else {
      const c = r.idCard
        ? cases.find((x) => x.id_card === r.idCard && (r.nndrs && x.nndrs ? sameDisease(r.nndrs, x.nndrs) : norm(x.disease) === norm(r.diseaseName)))
        : undefined;
      if (c)
        list.push({
          cause: 'source_no_card',
          detail: `前置有该患者 ${c.disease} 的预警病例（${CASE_STATE_NAME[c.state as CaseState] ?? c.state}），但没有报告卡`,
        });
      else
        list.push({
          cause: 'hand_only',
          detail: r.idCard ? '前置没有该卡，也没有该患者该病种的源记录（诊断、检验等）' : '前置没有该卡；导出行无证件号，无法按患者查找源记录',
        });
    }
    out.set(r.line, list);
  }
  return out;
}

/** The front's rejections (ingest_rejection) of an emrInfReport of the rows' card ids, newest first. */
async function rejectionsOf(db: Db, orgs: '*' | string[], rows: ExportRow[]): Promise<z.infer<typeof RejectionRow>[]> {
  const ids = [...new Set(rows.flatMap((r) => [r.cardNo, r.cardId].filter((x): x is string => !!x)))];
  const of = orgFilter(orgs, 'org_code', 2);
  return ids.length
    ? (
        await db.query(
          `SELECT org_code, record_id, received_at, issues FROM ingest_rejection
            WHERE resource = 'emrInfReport' AND record_id = ANY($1::varchar[]) AND ${of.sql} ORDER BY rej_id DESC`,
          [ids, ...of.params],
        )
      ).rows.map((r) => RejectionRow.parse(r))
    : [];
}

/** The warning cases of the rows' ID numbers (found by their HMAC, opened to compare), newest first. */
async function warningCasesOf(db: Db, orgs: '*' | string[], rows: ExportRow[]): Promise<z.infer<typeof CaseRow>[]> {
  const idCards = [...new Set(rows.map((r) => r.idCard).filter((x): x is string => !!x))];
  const pof = orgFilter(orgs, 'p.org_code', 2);
  return idCards.length
    ? (
        await db.query(
          `SELECT p.id_card, w.nndrs, w.disease, w.state FROM emr_patient_info p
             JOIN warning_case w ON w.org_code = p.org_code AND w.patient_id = p.id
            WHERE p.id_card_hmac = ANY($1::varchar[]) AND ${pof.sql} ORDER BY w.case_id DESC`,
          [idCards.map((x) => pii().hash('idno', x)), ...pof.params],
        )
      ).rows
        .map((r) => CaseRow.parse(r))
        .map((r) => ({ ...r, id_card: (openOrNull(r.id_card) ?? '').toUpperCase() }))
    : [];
}

/** A rejection's first five failing fields, as field（rule）. */
const issueFields = (issues: unknown) =>
  Array.isArray(issues)
    ? issues
        .slice(0, 5)
        .map((i) => (i && typeof i === 'object' ? `${String((i as FieldIssue).field)}（${String((i as FieldIssue).rule)}）` : ''))
        .filter(Boolean)
        .join('、')
    : '';

const SummaryFigures = z.object({
  outpatientVisits: z.number().optional(),
  emergencyVisits: z.number().optional(),
  infectiousAdmissions: z.number().optional(),
  reportCards: z.number().optional(),
});
const DayCloseRow = z.object({ org_code: z.string(), business_day: z.string(), kind: z.string(), summary: z.unknown() });

/**
 * The day-close figures of the period's days (docs/day-close.md "Daily summary"), summed over the
 * orgs compared: the T+1 close where it is done, else the T+0. A day without a close is null (暂无数据).
 */
export async function dayFigures(db: Db, orgs: '*' | string[], from: string, to: string): Promise<DayFigures[]> {
  const of = orgFilter(orgs, 'org_code', 3);
  const rows = (
    await db.query(
      `SELECT org_code, business_day, kind, summary FROM day_close
        WHERE status = 'done' AND NOT test_mode AND business_day >= $1 AND business_day <= $2 AND ${of.sql}`,
      [from, to, ...of.params],
    )
  ).rows.map((r) => DayCloseRow.parse(r));
  const out: DayFigures[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const byOrg = new Map<string, z.infer<typeof DayCloseRow>>();
    for (const r of rows.filter((x) => x.business_day === d)) {
      const had = byOrg.get(r.org_code);
      if (!had || (had.kind === 'T+0' && r.kind === 'T+1')) byOrg.set(r.org_code, r);
    }
    const closes = [...byOrg.values()].map((r) => ({
      kind: r.kind,
      s: SummaryFigures.parse(typeof r.summary === 'string' ? JSON.parse(r.summary) : (r.summary ?? {})),
    }));
    const sum = (k: keyof z.infer<typeof SummaryFigures>) =>
      closes.length && closes.every((c) => c.s[k] !== undefined) ? closes.reduce((n, c) => n + c.s[k]!, 0) : null;
    out.push({
      day: d,
      outpatientVisits: sum('outpatientVisits'),
      emergencyVisits: sum('emergencyVisits'),
      infectiousAdmissions: sum('infectiousAdmissions'),
      reportCards: sum('reportCards'),
      kind: closes.length ? [...new Set(closes.map((c) => c.kind))].join('/') : null,
    });
    if (out.length > 92) break;
  }
  return out;
}

// ---- the stored summaries -----------------------------------------------------------------------

const CausesJson = z.partialRecord(Cause, z.number().int());
export const CompareRunRow = z.object({
  compare_id: z.coerce.string(),
  uploaded_by: z.string(),
  uploaded_at: z.date(),
  file_name: z.string().nullable(),
  encoding: z.string(),
  orgs: z.string(),
  period_from: z.string(),
  period_to: z.string(),
  export_rows: z.number().int(),
  front_cards: z.number().int(),
  matched: z.number().int(),
  differing: z.number().int(),
  export_only: z.number().int(),
  front_only: z.number().int(),
  causes: z.string().transform((s) => CausesJson.parse(JSON.parse(s))),
});
export type CompareRun = z.infer<typeof CompareRunRow>;

/** Keeps an upload's summary (never the file) with its author. */
export async function saveComparison(db: Db, c: Comparison, by: string, fileName: string | null): Promise<string> {
  const r = await db.query<{ compare_id: string }>(
    `INSERT INTO compare_run (uploaded_by, file_name, encoding, orgs, period_from, period_to, export_rows, front_cards, matched, differing, export_only, front_only, causes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING compare_id`,
    [
      by,
      fileName?.slice(0, 200) ?? null,
      c.encoding,
      c.orgs === '*' ? '*' : c.orgs.join(','),
      c.from,
      c.to,
      c.counts.exportRows,
      c.counts.frontCards,
      c.counts.matched,
      c.counts.differing,
      c.counts.exportOnly,
      c.counts.frontOnly,
      JSON.stringify(c.causes),
    ],
  );
  return String(r.rows[0]!.compare_id);
}

/** The latest comparisons a user may see: those of their orgs (all for a user of every org). */
export async function listComparisons(db: Db, orgs: '*' | string[], limit = 20): Promise<CompareRun[]> {
  const rows = (await db.query('SELECT * FROM compare_run ORDER BY compare_id DESC LIMIT $1', [orgs === '*' ? limit : limit * 10])).rows.map((r) =>
    CompareRunRow.parse(r),
  );
  if (orgs === '*') return rows;
  return rows.filter((r) => r.orgs !== '*' && r.orgs.split(',').every((o) => orgs.includes(o))).slice(0, limit);
}
