/**
 * The data layer of code mapping (tables in infra/db/0006_codes.sql). All SQL of shared/codes is
 * here, parameterised and openGauss-safe: MERGE for upserts, UPDATE … RETURNING for the version
 * counter, no ON CONFLICT, no jsonb builders (docs/opengauss.md).
 *
 * Every change to an org's mappings or policies bumps its row of code_map_version in the same
 * transaction; every national-list import bumps the row '*' and its domain's list counter
 * (code_domain.list_seq). The code caches poll that table, and read the counters when '*' moved.
 */
import { withinDeadline, withTx, type Db, type Deadline, type Tx } from '../db/index.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import {
  DEFAULT_POLICY,
  MappingInputSchema,
  POLICY_ZH,
  resolve,
  type Actor,
  type Equivalence,
  type LookupStatus,
  type MappingInput,
  type Policy,
} from './model.js';
import { DOMAIN_COUNT, DOMAINS, domainInfo, listDomainOf } from './registry.js';
import { resources } from '../../schemas/index.js';
import { NameIndex, notifiableLookalike, type Candidate, type Danger } from './similarity.js';

type Q = Db | Tx;

/** The org row that national-list imports bump. */
export const NATIONAL_VERSION_KEY = '*';

// ---- the version counter ----------------------------------------------------------------------

/** Bumps an org's map version inside the caller's transaction; returns the new version. */
export async function bumpVersion(tx: Tx, org: string): Promise<number> {
  const up = await tx.query<{ version: string }>(
    'UPDATE code_map_version SET version = version + 1, changed_at = now() WHERE org_code = $1 RETURNING version',
    [org],
  );
  if (up.rows[0]) return Number(up.rows[0].version);
  // A race with another first change of this org ends in 23505; withTx runs the transaction again.
  await tx.query('INSERT INTO code_map_version (org_code, version, changed_at) VALUES ($1, 1, now())', [org]);
  return 1;
}

export async function loadVersions(db: Q): Promise<Map<string, number>> {
  const r = await db.query<{ org_code: string; version: string }>('SELECT org_code, version FROM code_map_version');
  return new Map(r.rows.map((x) => [x.org_code, Number(x.version)]));
}

export async function mapVersion(db: Q, org: string): Promise<number> {
  const r = await db.query<{ version: string }>('SELECT version FROM code_map_version WHERE org_code = $1', [org]);
  return r.rows[0] ? Number(r.rows[0].version) : 0;
}

// ---- domains and national lists ---------------------------------------------------------------

export interface DomainRow {
  domain: string;
  slot: number;
  no: number | null;
  nameZh: string;
  nameEn: string;
  fields: string;
  nameStatus: string;
  nameSource: string;
  publicList: boolean;
  listOf: string | null;
  standard: string | null;
  listStatus: 'none' | 'loaded' | 'partial' | 'inferred';
  listSource: string | null;
  listVersion: string | null;
  codeCount: number;
  loadedAt: string | null;
  note: string | null;
}

export async function listDomains(db: Q): Promise<DomainRow[]> {
  const r = await db.query(
    `SELECT domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard,
            list_status, list_source, list_version, code_count, loaded_at, note
       FROM code_domain ORDER BY slot`,
  );
  return r.rows.map((x) => ({
    domain: x.domain,
    slot: x.slot,
    no: x.domain_no,
    nameZh: x.name_zh,
    nameEn: x.name_en,
    fields: x.fields,
    nameStatus: x.name_status,
    nameSource: x.name_source,
    publicList: x.public_list,
    listOf: x.list_of,
    standard: x.standard,
    listStatus: x.list_status,
    listSource: x.list_source,
    listVersion: x.list_version,
    codeCount: x.code_count,
    loadedAt: x.loaded_at ? new Date(x.loaded_at).toISOString() : null,
    note: x.note,
  }));
}

export interface NationalCode {
  code: string;
  name: string;
  nameEn: string | null;
  version: string;
}

/** The current national list of a domain (of the domain it takes its codes from). */
export async function nationalCodes(db: Q, domain: string): Promise<NationalCode[]> {
  const r = await db.query<{ code: string; name: string; name_en: string | null; version: string }>(
    'SELECT code, name, name_en, version FROM code_national WHERE domain = $1 AND valid_to IS NULL ORDER BY code',
    [listDomainOf(domain)],
  );
  return r.rows.map((x) => ({ code: x.code, name: x.name, nameEn: x.name_en, version: x.version }));
}

/** The most codes one query of loadNational returns: a larger list is read in pages of this many. */
export const NATIONAL_PAGE = 20_000;

/**
 * The current national codes of `domains` (every domain when null), by domain: what the cache holds.
 * A domain without current codes is absent. The lists `code_domain.code_count` says are small come in
 * one query; a larger one (a full drug list: hundreds of thousands of codes) in pages of NATIONAL_PAGE
 * codes, by code — every function's cache reads it again at once when it changes, and one query for
 * all of it would hold a pool connection and build every row in memory for as long as it runs
 * (docs/code-mapping.md "Refresh"). The count only chooses the way: a list it undercounts is read
 * whole in the first query, never lost.
 */
export async function loadNational(db: Q, domains: string[] | null = null, page = NATIONAL_PAGE): Promise<Map<string, Map<string, string>>> {
  const counts = await db.query<{ domain: string; code_count: number }>(
    domains === null ? 'SELECT domain, code_count FROM code_domain' : 'SELECT domain, code_count FROM code_domain WHERE domain = ANY($1::varchar[])',
    domains === null ? [] : [domains],
  );
  const large = counts.rows.filter((r) => Number(r.code_count) > page).map((r) => r.domain);
  const out = new Map<string, Map<string, string>>();
  const add = (domain: string, code: string, name: string) => {
    let m = out.get(domain);
    if (!m) out.set(domain, (m = new Map()));
    m.set(code, name);
  };
  const small = await db.query<{ domain: string; code: string; name: string }>(
    domains === null
      ? 'SELECT domain, code, name FROM code_national WHERE valid_to IS NULL AND domain <> ALL($1::varchar[])'
      : 'SELECT domain, code, name FROM code_national WHERE valid_to IS NULL AND domain = ANY($2::varchar[]) AND domain <> ALL($1::varchar[])',
    domains === null ? [large] : [large, domains],
  );
  for (const x of small.rows) add(x.domain, x.code, x.name);
  for (const domain of large) {
    // Keyset pages on the primary key (domain, code, version): each query reads on from the last code.
    let after = '';
    for (;;) {
      const r = await db.query<{ code: string; name: string }>(
        'SELECT code, name FROM code_national WHERE domain = $1 AND valid_to IS NULL AND code > $2 ORDER BY code LIMIT $3',
        [domain, after, page],
      );
      for (const x of r.rows) add(domain, x.code, x.name);
      if (r.rows.length < page) break;
      after = r.rows[r.rows.length - 1]!.code;
    }
  }
  return out;
}

/**
 * Each domain's list counter (code_domain.list_seq): one more with every change of its current list,
 * in the transaction that bumps '*' (docs/code-mapping.md "Refresh"). The cache reloads the domains
 * whose counter moved.
 */
export async function loadListSeqs(db: Q): Promise<Map<string, number>> {
  const r = await db.query<{ domain: string; list_seq: string }>('SELECT domain, list_seq FROM code_domain');
  return new Map(r.rows.map((x) => [x.domain, Number(x.list_seq)]));
}

export interface NationalImport {
  domain: string;
  version: string;
  /** Where the list came from: a file name, "配置推送", … */
  source: string;
  codes: Array<{ code: string; name: string; nameEn?: string | null }>;
  status?: 'loaded' | 'partial';
}

/** The checks of a national-list import, the same for a CSV file and a configuration bundle; throws AppError. */
export function checkNationalImport(imp: NationalImport): void {
  const info = domainInfo(imp.domain);
  if (!info) throw new AppError('BAD_REQUEST', `未知值域：${imp.domain} (unknown domain)`);
  if (info.listOf)
    throw new AppError(
      'BAD_REQUEST',
      `值域 ${imp.domain} 使用 ${info.listOf} 的国家代码：请导入到 ${info.listOf} (this domain takes the codes of ${info.listOf})`,
    );
  if (!imp.version.trim() || imp.version.length > 50) throw new AppError('BAD_REQUEST', '版本号应为 1–50 个字符 (version: 1–50 characters)');
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  imp.codes.forEach((c, i) => {
    if (!c.code || c.code.length > 50) issues.push({ field: `codes[${i}].code`, rule: 'required', message: '代码应为 1–50 个字符' });
    else if (seen.has(c.code)) issues.push({ field: `codes[${i}].code`, rule: 'duplicate', message: `代码重复：${c.code}`, value: c.code });
    seen.add(c.code);
    if (!c.name || c.name.length > 250) issues.push({ field: `codes[${i}].name`, rule: 'required', message: '名称应为 1–250 个字符', value: c.code });
  });
  if (imp.codes.length === 0) issues.push({ field: 'codes', rule: 'required', message: '文件中没有代码 (no codes)' });
  if (issues.length) throw new AppError('VALIDATION_FAILED', `国家值域 ${imp.domain} 导入失败：${issues.length} 处错误`, issues.slice(0, 50));
}

async function insertNationalCodes(
  tx: Tx,
  domain: string,
  codes: Array<{ code: string; name: string; nameEn?: string | null; version: string }>,
  d?: Deadline,
): Promise<void> {
  // One array per column, 5 000 codes a statement (docs/opengauss.md "Statement sources"): a national
  // drug list of 235 000 codes is 47 statements of one fixed text, not 470 VALUES lists of 2 500
  // parameters each, parsed one by one — which kept a configuration bundle's apply past the config
  // function's exec_timeout on a loaded server.
  for (let i = 0; i < codes.length; i += 5000) {
    const chunk = codes.slice(i, i + 5000);
    await withinDeadline(tx, d);
    await tx.query(
      `INSERT INTO code_national (domain, code, version, name, name_en)
       SELECT $1, s.code, s.version, s.name, s.name_en
         FROM (SELECT unnest($2::text[]) AS code, unnest($3::text[]) AS version, unnest($4::text[]) AS name, unnest($5::text[]) AS name_en) s`,
      [domain, chunk.map((c) => c.code), chunk.map((c) => c.version), chunk.map((c) => c.name), chunk.map((c) => c.nameEn ?? null)],
    );
  }
}

/**
 * Writes a checked national list (checkNationalImport) in the caller's transaction: the version's
 * rows become the current list, earlier rows are closed, the domain's row (its list counter one more)
 * and the '*' map version are updated (so every code cache reloads this domain's list).
 */
export async function writeNationalList(
  tx: Tx,
  imp: NationalImport,
  d?: Deadline,
): Promise<{ domain: string; version: string; codes: number; closed: number }> {
  // Bounded here, after the caller's checks of the codes (CPU time of their own), not before them.
  await withinDeadline(tx, d);
  await tx.query('DELETE FROM code_national WHERE domain = $1 AND version = $2', [imp.domain, imp.version]);
  const closed = await tx.query('UPDATE code_national SET valid_to = now() WHERE domain = $1 AND valid_to IS NULL', [imp.domain]);
  await insertNationalCodes(
    tx,
    imp.domain,
    imp.codes.map((c) => ({ ...c, version: imp.version })),
    d,
  );
  await withinDeadline(tx, d);
  await tx.query(
    `UPDATE code_domain SET list_status = $2, list_source = $3, list_version = $4, code_count = $5, loaded_at = now(), list_seq = list_seq + 1 WHERE domain = $1`,
    [imp.domain, imp.status ?? 'loaded', imp.source.slice(0, 300), imp.version, imp.codes.length],
  );
  await bumpVersion(tx, NATIONAL_VERSION_KEY);
  return { domain: imp.domain, version: imp.version, codes: imp.codes.length, closed: closed.rowCount ?? 0 };
}

/**
 * Loads a version of a national list (lists that are not public arrive this way: drugs, region and
 * org codes, the full ICD-10 list). The version's rows become the current list; the rows of earlier
 * versions are closed (valid_to = now), never deleted. Importing the same version again replaces it.
 */
export async function importNational(
  db: Db,
  imp: NationalImport,
): Promise<{ domain: string; version: string; codes: number; closed: number; removedInUse: RemovedInUse }> {
  checkNationalImport(imp);
  return withTx(db, async (tx) => {
    const before = await inUse(tx, imp.domain);
    const r = await writeNationalList(tx, imp);
    return { ...r, removedInUse: await removedInUse(tx, before) };
  });
}

/** A domain's current national list and its row in code_domain: what a configuration bundle replaces. */
export interface NationalListState {
  listStatus: string;
  listSource: string | null;
  listVersion: string | null;
  codeCount: number;
  loadedAt: string | null;
  codes: Array<{ code: string; name: string; nameEn: string | null; version: string }>;
}

export async function nationalListState(q: Q, domain: string): Promise<NationalListState> {
  const d = await q.query('SELECT list_status, list_source, list_version, code_count, loaded_at FROM code_domain WHERE domain = $1', [domain]);
  const row = d.rows[0];
  if (!row) throw new AppError('BAD_REQUEST', `未知值域：${domain} (unknown domain)`);
  const codes = await q.query<{ code: string; name: string; name_en: string | null; version: string }>(
    'SELECT code, name, name_en, version FROM code_national WHERE domain = $1 AND valid_to IS NULL ORDER BY code',
    [domain],
  );
  return {
    listStatus: row.list_status,
    listSource: row.list_source,
    listVersion: row.list_version,
    codeCount: row.code_count,
    loadedAt: row.loaded_at ? new Date(row.loaded_at).toISOString() : null,
    codes: codes.rows.map((c) => ({ code: c.code, name: c.name, nameEn: c.name_en, version: c.version })),
  };
}

/**
 * Puts a domain's list back as nationalListState saw it, in the caller's transaction: the current
 * rows are closed, the saved rows become current again (their versions' closed rows replaced), the
 * domain's row is restored (its list counter one more, never back) and the '*' map version bumped.
 */
export async function restoreNationalList(tx: Tx, domain: string, state: NationalListState, d?: Deadline): Promise<void> {
  await tx.query('UPDATE code_national SET valid_to = now() WHERE domain = $1 AND valid_to IS NULL', [domain]);
  const versions = [...new Set(state.codes.map((c) => c.version))];
  if (versions.length) await tx.query('DELETE FROM code_national WHERE domain = $1 AND version = ANY($2::varchar[])', [domain, versions]);
  await insertNationalCodes(tx, domain, state.codes, d);
  await withinDeadline(tx, d);
  await tx.query(
    `UPDATE code_domain SET list_status = $2, list_source = $3, list_version = $4, code_count = $5, loaded_at = $6, list_seq = list_seq + 1 WHERE domain = $1`,
    [domain, state.listStatus, state.listSource, state.listVersion, state.codeCount, state.loadedAt],
  );
  await bumpVersion(tx, NATIONAL_VERSION_KEY);
}

/** A national code a list change took away that the front's data still uses, per org. */
export interface RemovedCode {
  org: string;
  code: string;
  /** sent: how often the HIS sent it (code_observed.seen_count); mapped: how many mappings point at it. */
  count: number;
}

/** What a list change took away that is still in use (docs/code-mapping.md "A list that drops codes in use"). */
export interface RemovedInUse {
  domain: string;
  /** Codes the HIS sent within `days` as national codes, with no mapping that still applies: held from now on. */
  sent: RemovedCode[];
  /** Mappings whose target the list no longer has ('retiredTarget'): their codes are held from now on. */
  mapped: RemovedCode[];
  days: number;
}

/** The codes named at most per kind, and the orgs per code; the counts are whole. */
const REMOVED_NAMED = 50;
const ORGS_NAMED = 5;

/**
 * Before a list change (writeNationalList, restoreNationalList), what of the current list is in use:
 * codes the HIS sent in the last `days` days as they are — under a policy other than 'local', with no
 * mapping of that code whose target is current — and mappings' targets. Taken before the change, since
 * a version imported again replaces its rows rather than closing them; removedInUse then keeps those
 * the new list no longer has (docs/code-mapping.md "A list that drops codes in use").
 */
export async function inUse(tx: Tx, domain: string, days = 30, d?: Deadline): Promise<RemovedInUse> {
  const fields = DOMAINS.filter((x) => listDomainOf(x.key) === domain).map((x) => x.key);
  const current = (col: string) => `EXISTS (SELECT 1 FROM code_national c WHERE c.domain = $2 AND c.code = ${col} AND c.valid_to IS NULL)`;
  await withinDeadline(tx, d);
  const sent = await tx.query<{ org: string; code: string; n: string }>(
    `SELECT o.org_code AS org, o.local_code AS code, o.seen_count AS n FROM code_observed o
      WHERE o.domain = ANY($1::varchar[]) AND o.last_seen > now() - $3::integer * interval '1 day' AND ${current('o.local_code')}
        AND NOT EXISTS (SELECT 1 FROM code_policy p WHERE p.org_code = o.org_code AND p.domain = o.domain AND p.policy = 'local')
        AND NOT EXISTS (SELECT 1 FROM code_mapping m JOIN code_national t ON t.domain = $2 AND t.code = m.national_code AND t.valid_to IS NULL
                         WHERE m.org_code = o.org_code AND m.domain = o.domain AND m.local_code = o.local_code)
      ORDER BY o.seen_count DESC, o.org_code, o.local_code`,
    [fields, domain, days],
  );
  await withinDeadline(tx, d);
  const mapped = await tx.query<{ org: string; code: string; n: string }>(
    `SELECT m.org_code AS org, m.national_code AS code, count(*) AS n FROM code_mapping m
      WHERE m.domain = ANY($1::varchar[]) AND m.national_code IS NOT NULL AND ${current('m.national_code')}
      GROUP BY m.org_code, m.national_code ORDER BY count(*) DESC, m.org_code, m.national_code`,
    [fields, domain],
  );
  const rows = (r: typeof sent.rows) => r.map((x) => ({ org: x.org, code: x.code, count: Number(x.n) }));
  return { domain, sent: rows(sent.rows), mapped: rows(mapped.rows), days };
}

/** After the list change: of what was in use before it (inUse), what the list no longer has. */
export async function removedInUse(tx: Tx, before: RemovedInUse, d?: Deadline): Promise<RemovedInUse> {
  const codes = [...new Set([...before.sent, ...before.mapped].map((x) => x.code))];
  if (!codes.length) return before;
  await withinDeadline(tx, d);
  const still = await tx.query<{ code: string }>(
    'SELECT DISTINCT code FROM code_national WHERE domain = $1 AND valid_to IS NULL AND code = ANY($2::varchar[])',
    [before.domain, codes],
  );
  const kept = new Set(still.rows.map((x) => x.code));
  return { ...before, sent: before.sent.filter((x) => !kept.has(x.code)), mapped: before.mapped.filter((x) => !kept.has(x.code)) };
}

/**
 * One line naming what a list change took away that is in use (removedInUse), or null when nothing
 * is: each code with its total and the orgs that use it, the most used first.
 */
export function removedInUseWarning(r: RemovedInUse, at: string): string | null {
  if (!r.sent.length && !r.mapped.length) return null;
  const named = (xs: RemovedCode[], unit: string) => {
    const byCode = new Map<string, RemovedCode[]>();
    for (const x of xs) byCode.set(x.code, [...(byCode.get(x.code) ?? []), x]);
    const codes = [...byCode].map(([code, uses]) => ({ code, uses, total: uses.reduce((n, u) => n + u.count, 0) })).sort((a, b) => b.total - a.total);
    const shown = codes
      .slice(0, REMOVED_NAMED)
      .map((c) => {
        const orgs = c.uses.slice(0, ORGS_NAMED).map((u) => `${u.org} ×${u.count}`);
        if (c.uses.length > ORGS_NAMED) orgs.push(`… ${c.uses.length - ORGS_NAMED} more orgs`);
        return `${c.code} (${c.total} ${unit}: ${orgs.join(', ')})`;
      })
      .join(', ');
    return { count: codes.length, text: shown + (codes.length > REMOVED_NAMED ? `, … ${codes.length - REMOVED_NAMED} more` : '') };
  };
  const parts: string[] = [];
  if (r.sent.length) {
    const n = named(r.sent, 'times');
    parts.push(`${n.count} code(s) the HIS sent in the last ${r.days} days are no longer on the list: ${n.text}`);
  }
  if (r.mapped.length) {
    const n = named(r.mapped, 'mappings');
    parts.push(`${n.count} code(s) mappings point at are no longer on the list: ${n.text}`);
  }
  return `${at}: ${parts.join('; ')} — records carrying them are held for mapping from now on (the monitor's holds component counts them)`;
}

// ---- mappings ---------------------------------------------------------------------------------

export interface MappingRow {
  id: string;
  org: string;
  domain: string;
  localCode: string;
  localName: string | null;
  nationalCode: string | null;
  nationalName: string | null;
  equivalence: Equivalence;
  version: number;
  mapVersion: number;
  madeBy: string;
  madeVia: string | null;
  madeAt: string;
  note: string | null;
}

export interface HistoryRow extends Omit<MappingRow, 'nationalName'> {
  histId: string;
  action: 'create' | 'update' | 'delete';
}

const MAPPING_COLS = `m.map_id, m.org_code, m.domain, m.local_code, m.local_name, m.national_code, m.equivalence, m.version, m.map_version,
  m.made_by, m.made_via, m.made_at, m.note`;

// The national name is the current one of the domain the mapping's codes come from.
const WITH_NATIONAL_NAME = `LEFT JOIN code_domain d ON d.domain = m.domain
  LEFT JOIN code_national n ON n.domain = COALESCE(d.list_of, m.domain) AND n.code = m.national_code AND n.valid_to IS NULL`;

// biome-ignore lint/suspicious/noExplicitAny: a database row, read field by field into the typed MappingRow
function mappingOf(x: Record<string, any>): MappingRow {
  return {
    id: String(x.map_id),
    org: x.org_code,
    domain: x.domain,
    localCode: x.local_code,
    localName: x.local_name,
    nationalCode: x.national_code,
    nationalName: x.national_name ?? null,
    equivalence: x.equivalence,
    version: x.version,
    mapVersion: Number(x.map_version),
    madeBy: x.made_by,
    madeVia: x.made_via,
    madeAt: new Date(x.made_at).toISOString(),
    note: x.note,
  };
}

export async function listMappings(db: Q, org: string, domain?: string): Promise<MappingRow[]> {
  const r = await db.query(
    `SELECT ${MAPPING_COLS}, n.name AS national_name FROM code_mapping m ${WITH_NATIONAL_NAME}
      WHERE m.org_code = $1 AND ($2::varchar IS NULL OR m.domain = $2) ORDER BY m.domain, m.local_code`,
    [org, domain ?? null],
  );
  return r.rows.map(mappingOf);
}

export async function getMapping(db: Q, id: string): Promise<MappingRow | null> {
  if (!/^\d{1,18}$/.test(id)) return null;
  const r = await db.query(`SELECT ${MAPPING_COLS}, n.name AS national_name FROM code_mapping m ${WITH_NATIONAL_NAME} WHERE m.map_id = $1`, [id]);
  return r.rows[0] ? mappingOf(r.rows[0]) : null;
}

export async function mappingHistory(db: Q, org: string, filter: { domain?: string; localCode?: string; id?: string } = {}): Promise<HistoryRow[]> {
  const r = await db.query(
    `SELECT h.hist_id, h.action, h.map_id, h.org_code, h.domain, h.local_code, h.local_name, h.national_code, h.equivalence, h.version,
            h.map_version, h.made_by, h.made_via, h.made_at, h.note
       FROM code_mapping_history h
      WHERE h.org_code = $1 AND ($2::varchar IS NULL OR h.domain = $2) AND ($3::varchar IS NULL OR h.local_code = $3)
        AND ($4::bigint IS NULL OR h.map_id = $4)
      ORDER BY h.hist_id`,
    [org, filter.domain ?? null, filter.localCode ?? null, filter.id ?? null],
  );
  return r.rows.map((x) => ({ ...mappingOf(x), histId: String(x.hist_id), action: x.action }));
}

async function isCurrentNational(q: Q, domain: string, code: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM code_national WHERE domain = $1 AND code = $2 AND valid_to IS NULL', [listDomainOf(domain), code]);
  return (r.rowCount ?? 0) > 0;
}

async function writeHistory(tx: Tx, action: 'create' | 'update' | 'delete', row: Record<string, unknown>): Promise<void> {
  await tx.query(
    `INSERT INTO code_mapping_history (map_id, action, org_code, domain, local_code, local_name, national_code, equivalence, version, map_version,
       made_by, made_via, made_at, note)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
    [
      row.map_id,
      action,
      row.org_code,
      row.domain,
      row.local_code,
      row.local_name ?? null,
      row.national_code ?? null,
      row.equivalence,
      row.version,
      row.map_version,
      row.made_by,
      row.made_via ?? null,
      row.made_at,
      row.note ?? null,
    ],
  );
}

export type SaveOutcome = 'created' | 'updated' | 'unchanged';

/** What checkTarget needs of a row that failed its schema: a registered domain and a national code, else null. */
function readablePart(org: string, values: Record<string, string | undefined>): MappingInput | null {
  const domain = values.domain?.trim() ?? '';
  const nationalCode = values.national_code?.trim() ?? '';
  if (!domainInfo(domain) || !nationalCode || nationalCode.length > 50) return null;
  return { org, domain, localCode: values.local_code?.trim() ?? '', nationalCode, equivalence: 'equivalent' };
}

/** Issues with a mapping that only the database can see: the target must be a current national code. */
async function checkTarget(q: Q, m: MappingInput): Promise<FieldIssue[]> {
  if (m.equivalence === 'unmatched' || !m.nationalCode) return [];
  if (await isCurrentNational(q, m.domain, m.nationalCode)) return [];
  const info = domainInfo(m.domain)!;
  return [
    {
      field: 'nationalCode',
      rule: 'domain',
      message: `国家代码 ${m.nationalCode} 不在 ${info.nameZh}（${m.domain}）的现行国家值域中 (not a current national code of ${m.domain})`,
      value: m.nationalCode,
    },
  ];
}

/** The org's policy for a domain (no row: the default, auto). */
async function policyFor(q: Q, org: string, domain: string): Promise<Policy> {
  const r = await q.query<{ policy: Policy }>('SELECT policy FROM code_policy WHERE org_code = $1 AND domain = $2', [org, domain]);
  return r.rows[0]?.policy ?? DEFAULT_POLICY;
}

/**
 * A mapping whose local code is itself a current national code of the domain can apply only under
 * policy `local`: under `auto` and `national` the national code is kept as sent and the mapping is
 * never looked at (docs/code-mapping.md, "Status, exactly"), so the hospital's code would be forwarded
 * with the national meaning. Refused while the policy is not `local`; a mapping onto the same code
 * changes nothing and passes.
 */
async function checkOverlap(q: Q, m: MappingInput, policy: Policy): Promise<FieldIssue[]> {
  if (policy === 'local' || m.nationalCode === m.localCode) return [];
  if (!(await isCurrentNational(q, m.domain, m.localCode))) return [];
  const info = domainInfo(m.domain)!;
  return [
    {
      field: 'localCode',
      rule: 'localIsNational',
      message:
        `本地代码 ${m.localCode} 本身就是${info.nameZh}（${m.domain}）的现行国家代码：映射策略为“${POLICY_ZH[policy]}”时按国家代码上报，此映射不会生效。` +
        `若本院代码与国家代码重叠，请先将该值域的映射策略设为“${POLICY_ZH.local}”（local，本院代码），再保存映射 ` +
        `(local code ${m.localCode} is itself a current national code of ${m.domain}: under policy ${policy} the national code is kept and this mapping would never apply; ` +
        `if the hospital's codes overlap the national ones, set the domain's policy to local first)`,
      value: m.localCode,
    },
  ];
}

/** Creates or changes the mapping in an open transaction whose map version is `version`. */
async function applyMapping(tx: Tx, m: MappingInput, actor: Actor, nextVersion: () => Promise<number>): Promise<{ outcome: SaveOutcome; id: string }> {
  const cur = await tx.query(
    'SELECT map_id, local_name, national_code, equivalence, version, note FROM code_mapping WHERE org_code = $1 AND domain = $2 AND local_code = $3 FOR UPDATE',
    [m.org, m.domain, m.localCode],
  );
  const old = cur.rows[0];
  const localName = m.localName ?? old?.local_name ?? null;
  const note = m.note ?? null;
  if (old && old.national_code === (m.nationalCode ?? null) && old.equivalence === m.equivalence && old.local_name === localName && old.note === note) {
    return { outcome: 'unchanged', id: String(old.map_id) };
  }
  const mv = await nextVersion();
  const by = (m.madeBy ?? actor.by).slice(0, 100);
  const via = actor.via?.slice(0, 120) ?? null;
  let row: Record<string, unknown>;
  if (old) {
    const r = await tx.query(
      `UPDATE code_mapping SET local_name = $2, national_code = $3, equivalence = $4, version = version + 1, map_version = $5,
              made_by = $6, made_via = $7, made_at = now(), note = $8
        WHERE map_id = $1 RETURNING *`,
      [old.map_id, localName, m.nationalCode ?? null, m.equivalence, mv, by, via, note],
    );
    row = r.rows[0];
  } else {
    const r = await tx.query(
      `INSERT INTO code_mapping (org_code, domain, local_code, local_name, national_code, equivalence, version, map_version, made_by, made_via, made_at, note)
       VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, now(), $10) RETURNING *`,
      [m.org, m.domain, m.localCode, localName, m.nationalCode ?? null, m.equivalence, mv, by, via, note],
    );
    row = r.rows[0];
  }
  await writeHistory(tx, old ? 'update' : 'create', row);
  return { outcome: old ? 'updated' : 'created', id: String(row.map_id) };
}

/** Creates or changes one mapping (keyed by org, domain, local code); history kept, version bumped. */
export async function saveMapping(db: Db, input: MappingInput, actor: Actor): Promise<{ outcome: SaveOutcome; mapping: MappingRow }> {
  const issues = [...(await checkTarget(db, input)), ...(await checkOverlap(db, input, await policyFor(db, input.org, input.domain)))];
  if (issues.length) throw new AppError('VALIDATION_FAILED', issues[0]!.message, issues);
  const { outcome, id } = await withTx(db, async (tx) => {
    let v: number | undefined;
    return applyMapping(tx, input, actor, async () => (v ??= await bumpVersion(tx, input.org)));
  });
  return { outcome, mapping: (await getMapping(db, id))! };
}

/** Deletes a mapping; the history keeps it. Returns the deleted row, or null when there was none. */
export async function deleteMapping(db: Db, id: string, actor: Actor): Promise<MappingRow | null> {
  const before = await getMapping(db, id);
  if (!before) return null;
  await withTx(db, async (tx) => {
    const r = await tx.query('DELETE FROM code_mapping WHERE map_id = $1 RETURNING *', [id]);
    const row = r.rows[0];
    if (!row) return;
    const mv = await bumpVersion(tx, row.org_code);
    await writeHistory(tx, 'delete', {
      ...row,
      version: row.version + 1,
      map_version: mv,
      made_by: actor.by.slice(0, 100),
      made_via: actor.via ?? null,
      made_at: new Date(),
    });
  });
  return before;
}

export interface ImportResult {
  org: string;
  created: number;
  updated: number;
  unchanged: number;
  /** Rows without a national code and without an equivalence: left for later (templates). */
  skipped: number;
  mapVersion: number;
}

/**
 * Imports mappings (rows as parsed from CSV or xlsx), all or nothing: every row is checked first
 * (domain, codes, equivalence, the target a current national code, a local code that is itself a
 * national code under a policy other than local), and one error refuses the file with the line
 * numbers — every error of every row in one answer, so a file is corrected in one round
 * (docs/code-mapping.md, "CSV files"). One map-version bump for the whole file.
 */
export async function importMappings(
  db: Db,
  org: string,
  rows: Array<{ line: number; values: Record<string, string | undefined> }>,
  actor: Actor,
): Promise<ImportResult> {
  const issues: FieldIssue[] = [];
  const inputs: MappingInput[] = [];
  const keys = new Set<string>();
  const policies = new Map((await listPolicies(db, org)).map((p) => [p.domain, p.policy]));
  let skipped = 0;
  for (const { line, values } of rows) {
    if (!values.national_code && !values.equivalence) {
      skipped++;
      continue;
    }
    const at = (field: string) => `第 ${line} 行 ${field}`;
    const p = MappingInputSchema.safeParse({
      org,
      domain: values.domain,
      localCode: values.local_code,
      localName: values.local_name,
      nationalCode: values.national_code,
      equivalence: values.equivalence,
      note: values.note,
      madeBy: values.made_by,
    });
    if (!p.success) {
      for (const i of p.error.issues) issues.push({ field: at(i.path.join('.')), rule: 'invalid', message: i.message });
      // The row's other faults are reported in the same answer: its target, when domain and code can be read.
      const partial = readablePart(org, values);
      if (partial) for (const i of await checkTarget(db, partial)) issues.push({ ...i, field: at(i.field) });
      continue;
    }
    const key = `${p.data.domain}\u0000${p.data.localCode}`;
    if (keys.has(key)) {
      issues.push({
        field: `第 ${line} 行`,
        rule: 'duplicate',
        message: `重复：${p.data.domain} ${p.data.localCode} (duplicate row)`,
        value: p.data.localCode,
      });
      continue;
    }
    keys.add(key);
    const policy = policies.get(p.data.domain) ?? DEFAULT_POLICY;
    for (const i of [...(await checkTarget(db, p.data)), ...(await checkOverlap(db, p.data, policy))]) issues.push({ ...i, field: at(i.field) });
    inputs.push(p.data);
  }
  if (issues.length) {
    throw new AppError(
      'VALIDATION_FAILED',
      `导入失败，未做任何修改：${issues.length} 处错误 (nothing imported: ${issues.length} errors)`,
      issues.slice(0, 100),
    );
  }
  return withTx(db, async (tx) => {
    let v: number | undefined;
    const next = async () => (v ??= await bumpVersion(tx, org));
    const out: ImportResult = { org, created: 0, updated: 0, unchanged: 0, skipped, mapVersion: 0 };
    for (const m of inputs) out[(await applyMapping(tx, m, actor, next)).outcome]++;
    out.mapVersion = v ?? (await mapVersion(tx, org));
    return out;
  });
}

// ---- policies ---------------------------------------------------------------------------------

export async function listPolicies(db: Q, org: string): Promise<Array<{ domain: string; policy: Policy; setBy: string | null; setAt: string | null }>> {
  const r = await db.query<{ domain: string; policy: Policy; set_by: string; set_at: Date }>(
    'SELECT domain, policy, set_by, set_at FROM code_policy WHERE org_code = $1',
    [org],
  );
  const set = new Map(r.rows.map((x) => [x.domain, x]));
  return DOMAINS.map((d) => {
    const x = set.get(d.key);
    return { domain: d.key, policy: x?.policy ?? DEFAULT_POLICY, setBy: x?.set_by ?? null, setAt: x ? new Date(x.set_at).toISOString() : null };
  });
}

export async function setPolicy(db: Db, org: string, domain: string, policy: Policy, actor: Actor): Promise<number> {
  return withTx(db, async (tx) => {
    await tx.query(
      `MERGE INTO code_policy p
       USING (SELECT $1::varchar AS org_code, $2::varchar AS domain) s
          ON (p.org_code = s.org_code AND p.domain = s.domain)
        WHEN MATCHED THEN UPDATE SET policy = $3, set_by = $4, set_at = now()
        WHEN NOT MATCHED THEN INSERT (org_code, domain, policy, set_by, set_at) VALUES (s.org_code, s.domain, $3, $4, now())`,
      [org, domain, policy, actor.by.slice(0, 100)],
    );
    return bumpVersion(tx, org);
  });
}

/**
 * An org's mappings that cannot apply: under the `national` policy every one (only national codes
 * are taken); otherwise those whose local code is itself a current national code of the domain while
 * the policy is not `local`, so the national code wins (checkOverlap refuses such a mapping when it is
 * saved; it arises when the policy is switched back, or a new national list adds the code). The completeness report lists them as a gap; a policy change names them
 * (docs/code-mapping.md, "The completeness report").
 */
export async function mappingsNotApplying(
  db: Q,
  org: string,
  domain?: string,
): Promise<Array<{ domain: string; localCode: string; nationalCode: string | null; policy: Policy }>> {
  const r = await db.query<{ domain: string; local_code: string; national_code: string | null; policy: Policy | null }>(
    `SELECT m.domain, m.local_code, m.national_code, p.policy
       FROM code_mapping m
       LEFT JOIN code_domain d ON d.domain = m.domain
       LEFT JOIN code_policy p ON p.org_code = m.org_code AND p.domain = m.domain
       LEFT JOIN code_national n ON n.domain = COALESCE(d.list_of, m.domain) AND n.code = m.local_code AND n.valid_to IS NULL
      WHERE m.org_code = $1 AND ($2::varchar IS NULL OR m.domain = $2)
        AND (p.policy IS NULL OR p.policy <> 'local')
        AND (n.code IS NOT NULL OR p.policy = 'national')
        AND (m.national_code IS NULL OR m.national_code <> m.local_code)
      ORDER BY m.domain, m.local_code`,
    [org, domain ?? null],
  );
  return r.rows.map((x) => ({ domain: x.domain, localCode: x.local_code, nationalCode: x.national_code, policy: x.policy ?? DEFAULT_POLICY }));
}

// ---- what the cache loads ---------------------------------------------------------------------

export interface OrgMaps {
  version: number;
  policies: Map<string, Policy>;
  maps: Map<string, Map<string, { national: string | null; equivalence: Equivalence }>>;
}

/** Mappings and policies of the given orgs (all orgs when null), for the cache. */
export async function loadOrgMaps(db: Q, orgs: string[] | null): Promise<Map<string, OrgMaps>> {
  const [versions, maps, pols] = await Promise.all([
    db.query<{ org_code: string; version: string }>('SELECT org_code, version FROM code_map_version WHERE ($1::varchar[] IS NULL OR org_code = ANY($1))', [
      orgs,
    ]),
    db.query<{ org_code: string; domain: string; local_code: string; national_code: string | null; equivalence: Equivalence }>(
      'SELECT org_code, domain, local_code, national_code, equivalence FROM code_mapping WHERE ($1::varchar[] IS NULL OR org_code = ANY($1))',
      [orgs],
    ),
    db.query<{ org_code: string; domain: string; policy: Policy }>(
      'SELECT org_code, domain, policy FROM code_policy WHERE ($1::varchar[] IS NULL OR org_code = ANY($1))',
      [orgs],
    ),
  ]);
  const out = new Map<string, OrgMaps>();
  const of = (org: string): OrgMaps => {
    let o = out.get(org);
    if (!o) out.set(org, (o = { version: 0, policies: new Map(), maps: new Map() }));
    return o;
  };
  for (const o of orgs ?? []) of(o);
  for (const v of versions.rows) if (v.org_code !== NATIONAL_VERSION_KEY) of(v.org_code).version = Number(v.version);
  for (const m of maps.rows) {
    const o = of(m.org_code);
    let d = o.maps.get(m.domain);
    if (!d) o.maps.set(m.domain, (d = new Map()));
    d.set(m.local_code, { national: m.national_code, equivalence: m.equivalence });
  }
  for (const p of pols.rows) of(p.org_code).policies.set(p.domain, p.policy);
  return out;
}

// ---- observed local codes ---------------------------------------------------------------------

export interface Observation {
  org: string;
  domain: string;
  local: string;
  name: string | null;
  count: number;
  first: Date;
  last: Date;
  /** Change of records_held (records held because of this code; negative on release). */
  held: number;
}

/** Adds a batch of observations (at most one per org, domain and code) with one MERGE per 200. */
export async function recordObserved(db: Db, batch: Observation[]): Promise<void> {
  const sorted = [...batch].sort((a, b) => (a.org + a.domain + a.local < b.org + b.domain + b.local ? -1 : 1));
  // All of a batch or none of it: the cache puts a batch whose write failed back whole, for the next
  // flush (docs/code-mapping.md), so chunks already written would be counted twice. Sorted, two
  // replicas' batches lock their common codes in the same order.
  await withTx(db, (tx) => writeObserved(tx, sorted));
}

/**
 * Adds a batch of observations (at most one per org, domain and code) in the caller's transaction:
 * counted with the records they were seen in, or not at all (database sync, docs/dbsync.md
 * "Exactly once"). Sorted, as recordObserved's.
 */
export async function recordObservedIn(tx: Tx, batch: Observation[]): Promise<void> {
  if (batch.length === 0) return;
  await writeObserved(
    tx,
    [...batch].sort((a, b) => (a.org + a.domain + a.local < b.org + b.domain + b.local ? -1 : 1)),
  );
}

/** One MERGE per 200 codes, in the caller's transaction. */
async function writeObserved(db: Tx, sorted: Observation[]): Promise<void> {
  for (let i = 0; i < sorted.length; i += 200) {
    const chunk = sorted.slice(i, i + 200);
    const params: unknown[] = [];
    const values = chunk.map((o) => {
      params.push(o.org, o.domain, o.local.slice(0, 100), o.name?.slice(0, 250) ?? null, o.count, o.first, o.last, o.held);
      const b = params.length - 8;
      return `($${b + 1}::varchar, $${b + 2}::varchar, $${b + 3}::varchar, $${b + 4}::varchar, $${b + 5}::bigint, $${b + 6}::timestamptz, $${b + 7}::timestamptz, $${b + 8}::integer)`;
    });
    await db.query(
      `MERGE INTO code_observed t
       USING (SELECT * FROM (VALUES ${values.join(', ')}) AS v (org_code, domain, local_code, local_name, n, first_seen, last_seen, held)) s
          ON (t.org_code = s.org_code AND t.domain = s.domain AND t.local_code = s.local_code)
        WHEN MATCHED THEN UPDATE SET
             seen_count = t.seen_count + s.n,
             first_seen = LEAST(t.first_seen, s.first_seen),
             last_seen = GREATEST(t.last_seen, s.last_seen),
             local_name = COALESCE(s.local_name, t.local_name),
             records_held = GREATEST(0, t.records_held + s.held)
        WHEN NOT MATCHED THEN INSERT (org_code, domain, local_code, local_name, seen_count, first_seen, last_seen, records_held)
             VALUES (s.org_code, s.domain, s.local_code, s.local_name, s.n, s.first_seen, s.last_seen, GREATEST(0, s.held))`,
      params,
    );
  }
}

// ---- the unmapped queue and the completeness report -------------------------------------------

interface ObservedState {
  domain: string;
  localCode: string;
  localName: string | null;
  count: number;
  firstSeen: string;
  lastSeen: string;
  recordsHeld: number;
  policy: Policy;
  status: LookupStatus;
  reason?: 'unmatched' | 'retiredTarget';
  nationalCode: string | null;
}

/** Every observed local code of an org, resolved as the cache would resolve it now. */
async function observedStates(db: Q, org: string, domain?: string): Promise<ObservedState[]> {
  const r = await db.query(
    `SELECT o.domain, o.local_code, o.local_name, o.seen_count, o.first_seen, o.last_seen, o.records_held,
            m.national_code, m.equivalence, p.policy,
            CASE WHEN n.code IS NULL THEN 0 ELSE 1 END AS is_national,
            CASE WHEN t.code IS NULL THEN 0 ELSE 1 END AS target_current
       FROM code_observed o
       LEFT JOIN code_domain d ON d.domain = o.domain
       LEFT JOIN code_mapping m ON m.org_code = o.org_code AND m.domain = o.domain AND m.local_code = o.local_code
       LEFT JOIN code_policy p ON p.org_code = o.org_code AND p.domain = o.domain
       LEFT JOIN code_national n ON n.domain = COALESCE(d.list_of, o.domain) AND n.code = o.local_code AND n.valid_to IS NULL
       LEFT JOIN code_national t ON t.domain = COALESCE(d.list_of, o.domain) AND t.code = m.national_code AND t.valid_to IS NULL
      WHERE o.org_code = $1 AND ($2::varchar IS NULL OR o.domain = $2)`,
    [org, domain ?? null],
  );
  return r.rows.map((x) => {
    const policy: Policy = x.policy ?? DEFAULT_POLICY;
    const res = resolve(
      policy,
      x.local_code,
      (c) => (c === x.local_code ? x.is_national === 1 : c === x.national_code && x.target_current === 1),
      x.equivalence ? { national: x.national_code, equivalence: x.equivalence } : undefined,
    );
    return {
      domain: x.domain,
      localCode: x.local_code,
      localName: x.local_name,
      count: Number(x.seen_count),
      firstSeen: new Date(x.first_seen).toISOString(),
      lastSeen: new Date(x.last_seen).toISOString(),
      recordsHeld: x.records_held,
      policy,
      status: res.status,
      ...(res.reason ? { reason: res.reason } : {}),
      nationalCode: res.national ?? null,
    };
  });
}

const indexes = new Map<string, { key: string; index: NameIndex }>();

/** A name index over a domain's current national list, rebuilt when the list's version changes. */
async function nameIndex(db: Q, domain: string): Promise<NameIndex> {
  const ld = listDomainOf(domain);
  const codes = await nationalCodes(db, ld);
  const key = `${codes.length}:${codes[0]?.version ?? ''}`;
  const hit = indexes.get(ld);
  if (hit && hit.key === key) return hit.index;
  const index = new NameIndex(codes.map((c) => ({ code: c.code, name: c.name })));
  indexes.set(ld, { key, index });
  return index;
}

/** National candidates for a local code, best first. */
export async function suggest(db: Q, domain: string, localName: string | null, localCode: string | null, limit = 5): Promise<Candidate[]> {
  return (await nameIndex(db, domain)).search(localName, localCode, limit);
}

export interface QueueItem {
  domain: string;
  domainName: string;
  localCode: string;
  localName: string | null;
  count: number;
  firstSeen: string;
  lastSeen: string;
  recordsHeld: number;
  /** unmapped (policy local/auto) or unknown (policy national: not a national code). */
  status: 'unmapped' | 'unknown';
  reason?: 'retiredTarget';
  /** Set when the local diagnosis looks like a notifiable disease: ranked first. */
  danger: Danger | null;
  suggestions: Candidate[];
}

/**
 * The unmapped queue of an org: local codes seen in real data that resolve to unmapped or unknown
 * (codes reviewed as 'unmatched' are not work to do: they are gaps of the completeness report).
 * Dangerous gaps first (by their score), then by records held, by count, by last seen.
 */
export async function unmappedQueue(db: Q, org: string, opts: { domain?: string; limit?: number; suggestions?: number } = {}): Promise<QueueItem[]> {
  const states = (await observedStates(db, org, opts.domain)).filter((s) => (s.status === 'unmapped' || s.status === 'unknown') && s.reason !== 'unmatched');
  const items: QueueItem[] = states.map((s) => ({
    domain: s.domain,
    domainName: domainInfo(s.domain)?.nameZh ?? s.domain,
    localCode: s.localCode,
    localName: s.localName,
    count: s.count,
    firstSeen: s.firstSeen,
    lastSeen: s.lastSeen,
    recordsHeld: s.recordsHeld,
    status: s.status as 'unmapped' | 'unknown',
    ...(s.reason === 'retiredTarget' ? { reason: 'retiredTarget' as const } : {}),
    danger: domainInfo(s.domain)?.diagnosis ? notifiableLookalike(s.localCode, s.localName) : null,
    suggestions: [],
  }));
  items.sort(
    (a, b) =>
      (b.danger?.score ?? -1) - (a.danger?.score ?? -1) ||
      b.recordsHeld - a.recordsHeld ||
      b.count - a.count ||
      b.lastSeen.localeCompare(a.lastSeen) ||
      a.localCode.localeCompare(b.localCode),
  );
  const top = items.slice(0, opts.limit ?? 200);
  const n = opts.suggestions ?? 5;
  if (n > 0) for (const it of top) it.suggestions = await suggest(db, it.domain, it.localName, it.localCode, n);
  return top;
}

export type GapKind = 'noName' | 'noList' | 'partialList' | 'notChecked' | 'unmapped' | 'unknown' | 'unmatched' | 'retiredTarget' | 'notApplying';

export const GAP_ZH: Record<GapKind, string> = {
  noName: '值域名称未知',
  noList: '国家值域未加载',
  partialList: '国家值域不完整',
  notChecked: '接收时未按此值域校验：前置尚未把它用于数据集字段，本地代码会原样上报',
  unmapped: '本地代码未映射',
  unknown: '不是国家代码（策略：国家代码）',
  unmatched: '本地代码无对应国家代码',
  retiredTarget: '映射的国家代码已停用',
  notApplying: '映射不生效：本地代码即国家代码，或策略只收国家代码；须调整映射策略',
};

export interface Gap {
  domain: string;
  domainName: string;
  kind: GapKind;
  /** Local codes concerned (0 for the list-level gaps). */
  codes: number;
  recordsHeld: number;
}

export interface DomainCompleteness {
  domain: string;
  slot: number;
  no: number | null;
  nameZh: string;
  nameStatus: string;
  policy: Policy;
  listStatus: string;
  listVersion: string | null;
  /** National codes in the current list (of the domain it takes its codes from). */
  nationalCodes: number;
  /** Distinct local codes seen in real data. */
  localSeen: number;
  /** Seen and sent as a valid national code (policies national and auto). */
  national: number;
  mapped: number;
  /** Seen and neither national nor mapped (unmapped, unknown, retired target). */
  unmapped: number;
  /** Seen and reviewed as having no national code. */
  unmatched: number;
  recordsHeld: number;
  /** Mappings defined (seen in data or not). */
  mappings: number;
  gapFree: boolean;
}

export interface CompletenessReport {
  org: string;
  /** The notice's "forty domains with no gaps" as one figure: domains without a gap, of 40. */
  gapFreeDomains: number;
  totalDomains: number;
  /** gapFreeDomains / totalDomains, in percent. */
  percent: number;
  /** Local codes seen that resolve (national or mapped), of all seen. */
  resolvedCodes: number;
  seenCodes: number;
  recordsHeld: number;
  mapVersion: number;
  gaps: Gap[];
  domains: DomainCompleteness[];
}

/**
 * The completeness report of an org (docs/code-mapping.md): per domain, national codes, local codes seen in
 * real data, mapped, unmapped, records held; reduced to one figure — domains without a gap, of the
 * forty — and its list of gaps. A domain has a gap when its name is unknown, its national list is not
 * loaded or is incomplete, or a local code seen in data does not resolve under its policy.
 */
/**
 * The domains whose codes ingest reads — a data-set field declares them — and so can check, map and hold
 * at intake. A loaded list of any other domain changes nothing at intake: such a domain is a gap
 * (`notChecked`), never counted as complete (docs/code-mapping.md "The completeness report").
 */
export const CHECKED_AT_INTAKE: ReadonlySet<string> = new Set(
  Object.values(resources).flatMap((r) => Object.values(r.fields).flatMap((f) => (f.domain ? [f.domain] : []))),
);

export async function completeness(db: Q, org: string): Promise<CompletenessReport> {
  const [domains, states, policies, maps, version, notApplying] = await Promise.all([
    listDomains(db),
    observedStates(db, org),
    listPolicies(db, org),
    db.query<{ domain: string; n: string }>('SELECT domain, count(*) AS n FROM code_mapping WHERE org_code = $1 GROUP BY domain', [org]),
    mapVersion(db, org),
    mappingsNotApplying(db, org),
  ]);
  const byDomain = new Map(domains.map((d) => [d.domain, d]));
  const policyOf = new Map(policies.map((p) => [p.domain, p.policy]));
  const mapCount = new Map(maps.rows.map((r) => [r.domain, Number(r.n)]));
  const gaps: Gap[] = [];
  const rows: DomainCompleteness[] = [];
  for (const d of domains) {
    const list = byDomain.get(d.listOf ?? d.domain) ?? d;
    const seen = states.filter((s) => s.domain === d.domain);
    const count = (f: (s: ObservedState) => boolean) => seen.filter(f).length;
    const held = (f: (s: ObservedState) => boolean) => seen.filter(f).reduce((a, s) => a + s.recordsHeld, 0);
    const name = d.nameZh;
    const add = (kind: GapKind, codes: number, recordsHeld: number) => gaps.push({ domain: d.domain, domainName: name, kind, codes, recordsHeld });
    const before = gaps.length;
    if (d.nameStatus === 'unknown') add('noName', 0, 0);
    if (list.listStatus === 'none') add('noList', 0, 0);
    else if (list.listStatus !== 'loaded') add('partialList', 0, 0);
    if (list.listStatus !== 'none' && !CHECKED_AT_INTAKE.has(d.domain)) add('notChecked', 0, 0);
    for (const [kind, f] of [
      ['unmapped', (s: ObservedState) => s.status === 'unmapped' && !s.reason],
      ['unknown', (s: ObservedState) => s.status === 'unknown'],
      ['unmatched', (s: ObservedState) => s.reason === 'unmatched'],
      ['retiredTarget', (s: ObservedState) => s.reason === 'retiredTarget'],
    ] as const) {
      const n = count(f);
      if (n) add(kind, n, held(f));
    }
    // Mappings defined (seen in data or not) that the policy keeps from applying.
    const shadowed = notApplying.filter((m) => m.domain === d.domain).length;
    if (shadowed) add('notApplying', shadowed, 0);
    rows.push({
      domain: d.domain,
      slot: d.slot,
      no: d.no,
      nameZh: d.nameZh,
      nameStatus: d.nameStatus,
      policy: policyOf.get(d.domain) ?? DEFAULT_POLICY,
      listStatus: list.listStatus,
      listVersion: list.listVersion,
      nationalCodes: list.codeCount,
      localSeen: seen.length,
      national: count((s) => s.status === 'national'),
      mapped: count((s) => s.status === 'mapped'),
      unmapped: count((s) => (s.status === 'unmapped' || s.status === 'unknown') && s.reason !== 'unmatched'),
      unmatched: count((s) => s.reason === 'unmatched'),
      recordsHeld: held(() => true),
      mappings: mapCount.get(d.domain) ?? 0,
      gapFree: gaps.length === before,
    });
  }
  const gapFreeDomains = rows.filter((r) => r.gapFree).length;
  const resolvedCodes = states.filter((s) => s.status === 'national' || s.status === 'mapped').length;
  return {
    org,
    gapFreeDomains,
    totalDomains: DOMAIN_COUNT,
    percent: Math.round((gapFreeDomains / DOMAIN_COUNT) * 1000) / 10,
    resolvedCodes,
    seenCodes: states.length,
    recordsHeld: states.reduce((a, s) => a + s.recordsHeld, 0),
    mapVersion: version,
    gaps,
    domains: rows,
  };
}

/** Rows for a mapping export; with `unmapped`, the queue's codes too (national code empty: a template). */
export async function exportRows(
  db: Q,
  org: string,
  opts: { domain?: string; unmapped?: boolean } = {},
): Promise<Array<Record<(typeof EXPORT_COLUMNS)[number], string>>> {
  const maps = await listMappings(db, org, opts.domain);
  const out: Array<Record<(typeof EXPORT_COLUMNS)[number], string>> = maps.map((m) => ({
    domain: m.domain,
    local_code: m.localCode,
    local_name: m.localName ?? '',
    national_code: m.nationalCode ?? '',
    national_name: m.nationalName ?? '',
    equivalence: m.equivalence,
    note: m.note ?? '',
    made_by: m.madeBy,
    made_at: m.madeAt,
  }));
  if (opts.unmapped) {
    for (const q of await unmappedQueue(db, org, { domain: opts.domain, limit: 100_000, suggestions: 1 })) {
      if (maps.some((m) => m.domain === q.domain && m.localCode === q.localCode)) continue;
      out.push({
        domain: q.domain,
        local_code: q.localCode,
        local_name: q.localName ?? '',
        national_code: '',
        national_name: '',
        equivalence: '',
        note: q.suggestions[0] ? `建议：${q.suggestions[0].code} ${q.suggestions[0].name}` : '',
        made_by: '',
        made_at: '',
      });
    }
  }
  return out;
}

export const EXPORT_COLUMNS = ['domain', 'local_code', 'local_name', 'national_code', 'national_name', 'equivalence', 'note', 'made_by', 'made_at'] as const;

/** Column headers as written ("本地代码(local_code)") and the aliases read back. */
export const MAPPING_COLUMNS: Record<(typeof EXPORT_COLUMNS)[number], readonly string[]> = {
  domain: ['值域', '值域代码'],
  local_code: ['本地代码', '院内代码'],
  local_name: ['本地名称', '院内名称'],
  national_code: ['国家代码', '国家标准代码'],
  national_name: ['国家名称', '国家标准名称'],
  equivalence: ['对应关系'],
  note: ['备注'],
  made_by: ['操作人'],
  made_at: ['操作时间'],
};

export function exportHeader(): string[] {
  return EXPORT_COLUMNS.map((k) => `${MAPPING_COLUMNS[k][0]}(${k})`);
}
