/**
 * The one pipeline every receive function uses: parse → normalise → validate → store the typed
 * row, its history, its receipt and one outbox row per destination in a single transaction. A
 * record that fails validation stores nothing (its rejection — fields and rules, masked — is
 * logged for the HIS to query). Posting the same content twice changes nothing (one row, one
 * history entry per real change); DELETE or invalidFlag=1 retires the record as a new version.
 * A child whose parent has not arrived is stored but held: it leaves only after its parent.
 */
import { createHash } from 'node:crypto';
import type { Db, Tx } from '../db/index.js';
import { inOrder, together, type TxPipeline, withTx } from '../db/index.js';
import { AppError, type FieldIssue } from '../http/errors.js';
import type { Resource } from '../../schemas/resource.js';
import { documentItems, resources as registry } from '../../schemas/index.js';
import { formatLocal, formatSent, precisionOf } from '../time/index.js';
import { dayBounds, localDay } from '../time/day.js';
import { TIME_ZONE } from '../../schemas/fields.js';
import { MAX_FIELDS, normalizeKeys, normalizedOnce, textIssues } from './normalize.js';
import { validateRecord } from './validate.js';
import { qualityWarnings } from './quality.js';
import { domainMapper, emptyMapping, stamp, type Mapping } from './mapping.js';
import { isParent } from './parents.js';
import { newRecordOdds } from './new-records.js';
import { birthKey, EVENT_TIMES, resolveOrgs, storedBirthDays } from './resolve.js';
import { birthDayOf, checkResidentId } from '../../schemas/idcard.js';
import type { CodeCache } from '../codes/index.js';
import { recordObservedIn, type Observation } from '../codes/store.js';
import { enqueue, enqueuePart, supersedeHeld } from '../outbox/index.js';
import { composeWrites, type WritePart } from '../db/sql.js';
import { sealRecord } from '../pii/index.js';
import { versionBase } from './restore-gap.js';
import {
  appendHistory,
  awaitedParents,
  existingParents,
  holdKey,
  holdsOf,
  holdText,
  keyOf,
  lockCurrent,
  lockMany,
  recordRejections,
  type Link,
  lockLinks,
  newRecordsGuardPart,
  historyPart,
  receiptPart,
  recordsPart,
  releaseWaiting,
  replaceHolds,
  releaseWaitsPart,
  replaceWaits,
  retire,
  WAITING_COLUMNS,
  writeReceipts,
  type Current,
  type Hold,
  type ReceiptRow,
  type RecordItem,
  type Rejection,
  type Wait,
  type WaitingRow,
} from './store.js';

/** Records per composed write: a bound on one statement's size (its arrays; one row's VALUES form for a single record). */
const COMPOSE_RECORDS = 1000;

export interface IngestContext {
  callId: string | null;
  /** Test mode asked for by the request (header). Records of a test org code are test records too. */
  test: boolean;
  now: Date;
  /** Who sent it, for the rejection log (never personal data). */
  caller?: string | null;
  /** Org codes whose records are always test records (TEST_ORG_CODES). */
  testOrgs?: ReadonlySet<string>;
  /** Throws 403 when the caller may not write the org's data (several hospitals on one front). */
  authorize?: (orgCode: string) => void;
  /** The orgs the caller is bound to, and the installation's org: where a record's missing org comes from. */
  callerOrgs?: '*' | readonly string[];
  installationOrg?: string | null;
  /**
   * The hospital's code mappings. With them, a code outside its national list is mapped, or the
   * record is held (never refused); without them (tools, unit tests) it is refused (rule 'domain').
   */
  codes?: CodeCache;
}

export type Status = 'created' | 'updated' | 'unchanged' | 'retired';

export interface Outcome {
  id: string;
  orgCode: string;
  status: Status;
  version: number;
  /** Why the record is held back from the platforms (waiting for a parent, a mapping), as display text. */
  held: string[];
  test: boolean;
  warnings: FieldIssue[];
}

/**
 * Canonical JSON: sorted keys, times as local "yyyy-MM-dd HH:mm:ss" — the form sent upstream — and
 * date-only values as "yyyy-MM-dd" (docs/data-set.md "Times").
 */
export function canonical(record: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(record).sort()) {
    const v = record[k];
    // A date-only value stays a date ("yyyy-MM-dd"); every other time in the notice's local form.
    out[k] = v instanceof Date ? formatSent(v, TIME_ZONE()) : v;
  }
  if (Object.keys(extra).length) out._extra = extra;
  return out;
}

function digest(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', '记录应为 JSON 对象 (a record must be a JSON object)');
  }
  return body as Record<string, unknown>;
}

const keyText = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() || null : null);

function isTest(ctx: IngestContext, orgCode: string | null): boolean {
  return ctx.test || (orgCode !== null && (ctx.testOrgs?.has(orgCode) ?? false));
}

interface Prepared {
  /** When and in which call it was received (a group commit writes many calls' records together). */
  now: Date;
  callId: string | null;
  /** The typed record, its personal fields sealed (shared/pii); `hashes` their HMACs by column. */
  record: Record<string, unknown>;
  hashes: Record<string, string | null>;
  warnings: FieldIssue[];
  id: string;
  orgCode: string;
  test: boolean;
  retiring: boolean;
  payload: Record<string, unknown>;
  hash: string;
  businessAt: Date | null;
  latenessS: number | null;
  parentRefs: Array<{ resource: string; table: string; id: string }>;
  flags: string[];
  mapping: Mapping | null;
}

export type ItemResult = { ok: true; outcome: Outcome } | { ok: false; error: AppError };

/** Normalise, authorise and validate one record; throws AppError (400, 403) naming every failure. */
function prepare(r: Resource, body: unknown, ctx: IngestContext, rejections: Rejection[], births: Map<string, string> = new Map()): Prepared {
  const sent = asObject(body);
  const normalized = normalizedOnce(r, sent);
  if (normalized.tooMany !== undefined) {
    throw refusal(r, ctx, rejections, null, null, [
      {
        field: '(record)',
        rule: 'tooManyFields',
        message: `一条记录最多 ${MAX_FIELDS} 个字段，收到 ${normalized.tooMany} 个 (at most ${MAX_FIELDS} keys per record)`,
      },
    ]);
  }
  const { known, extra } = normalized;
  const warnings = [...normalized.warnings];
  // Before validation: another org's records never reach this org's rejection log.
  const claimedOrg = keyText(known.orgCode);
  if (claimedOrg) ctx.authorize?.(claimedOrg);
  // Text no database can store is refused before anything reads it (codes, names, the raw copy).
  const unstorable = textIssues(sent);
  const mapping = ctx.codes && unstorable.length === 0 ? emptyMapping() : null;
  const v = validateRecord(r, known, ctx.now, ctx.codes && mapping ? domainMapper(r, claimedOrg ?? '', ctx.codes, mapping) : undefined);
  // What is really wrong beyond each field's own rule: keys that are not keys, an event before birth.
  const wrong = [...keyIssues(r, known), ...(v.ok && EVENT_TIMES[r.name] ? beforeBirth(r, v.record, birthOf(v.record, births)) : [])];
  if (!v.ok || unstorable.length || wrong.length)
    throw refusal(r, ctx, rejections, claimedOrg, keyText(known.id), [
      ...unstorable,
      ...(v.ok ? [] : v.issues.filter((i) => !(ctx.codes && !mapping && i.rule === 'domain'))),
      ...wrong,
    ]);
  const record = (v as Extract<typeof v, { ok: true }>).record;
  if ('warnings' in v && Array.isArray(v.warnings)) warnings.push(...(v.warnings as FieldIssue[]));
  warnings.push(...qualityWarnings(record));
  const orgCode = String(record.orgCode);
  const retiring = record.invalidFlag === 1;
  const content = canonical(record, extra);
  if (mapping && Object.keys(mapping.local).length) content._local = mapping.local;
  // The first time of the resource's chain the record carries (docs/data-set.md "Business time").
  const bt = r.businessTimes.map((k) => record[k]).find((v) => v instanceof Date);
  const businessAt = bt instanceof Date ? bt : null;
  // Every stored copy — the typed row, rec_raw, history, outbox — holds the same protected forms of
  // the personal fields (docs/keys.md); the content hash below is of the clear content, so posting
  // the same record again is still 'unchanged'. Sealed here, before any transaction is open.
  // A hospital code longer than its national code waits for its mapping in the content only: its typed
  // column holds national codes (docs/code-mapping.md "Local codes"); the release writes the mapped code.
  const long = (v as Extract<typeof v, { ok: true }>).unmappedLong;
  const typed = long.length ? { ...record, ...Object.fromEntries(long.map((k) => [k, null])) } : record;
  const sealed = sealRecord(r, typed, stamp(content, mapping));
  return {
    now: ctx.now,
    callId: ctx.callId,
    record: sealed.record,
    hashes: sealed.hashes,
    warnings,
    id: String(record.id),
    orgCode,
    test: isTest(ctx, orgCode),
    retiring,
    // The hash covers what was sent and what it maps to, not the map version: an unrelated mapping
    // change is no new version, a corrected mapping of this record's codes is.
    payload: sealed.payload,
    hash: digest({ payload: content, retired: retiring }),
    businessAt,
    // Seconds from business time to receipt, within the integer column.
    // A business time known only to the day counts from the end of that day: never more late than it was.
    latenessS: businessAt
      ? Math.min(2147483647, Math.max(0, Math.round((ctx.now.getTime() - businessAt.getTime() - (precisionOf(businessAt) === 'day' ? 86_399_000 : 0)) / 1000)))
      : null,
    parentRefs: r.parents.flatMap((p) => {
      const pid = keyText(record[p.field]);
      const pr = registry[p.resource];
      return pid && pr ? [{ resource: p.resource, table: pr.table, id: pid }] : [];
    }),
    flags: warnings.filter((w) => w.rule === 'garbledText' || w.rule === 'nameMismatch').map((w) => `${w.rule}:${w.field}`),
    mapping,
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern finds in a key
const KEY_CHARS = /[\s'"`\u0000-\u001f\u007f]/;

/**
 * Keys that are not keys (docs/his-guide.md "应答"): `id`, `orgCode` and parent ids with whitespace
 * inside, quotes or control characters (padding around them is trimmed: legacy CHAR columns) or
 * that are `.` or `..` (a URL resolves them away), and an `orgCode` that is not letters and digits.
 */
function keyIssues(r: Resource, known: Record<string, unknown>): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const k of ['id', 'orgCode', ...r.parents.map((p) => p.field)]) {
    const v = known[k];
    if (typeof v !== 'string' || v.trim() === '') continue;
    const t = v.trim();
    if (KEY_CHARS.test(t))
      out.push({
        field: k,
        rule: 'keyFormat',
        message: '主键不能含空白、引号或控制字符 (a key holds whitespace, a quote or a control character)',
        value: t.slice(0, 64),
      });
    else if (t === '.' || t === '..')
      // A URL's dot segment: clients resolve it away, so the record could never be traced or deleted by its id.
      out.push({ field: k, rule: 'keyFormat', message: '主键不能是 . 或 ..（无法在地址中查询或删除） (a key that is a URL dot segment)', value: t });
    else if (k === 'orgCode' && !/^[A-Za-z0-9]+$/.test(t))
      out.push({ field: k, rule: 'orgCodeFormat', message: '机构代码只能由字母和数字组成 (an org code is letters and digits)', value: t.slice(0, 64) });
  }
  return out;
}

/** A record refused: its rejection for the log, and the error naming every issue. */
function refusal(r: Resource, ctx: IngestContext, rejections: Rejection[], orgCode: string | null, id: string | null, issues: FieldIssue[]): AppError {
  rejections.push({ resource: r.name, orgCode, id, callId: ctx.callId, caller: ctx.caller ?? null, issues, test: isTest(ctx, orgCode) });
  return new AppError('VALIDATION_FAILED', `${r.title}校验不通过：${issues.map((i) => `${i.field}(${i.rule})`).join('，')}`, issues, id);
}

const dayOf = (t: Date) => localDay(t, TIME_ZONE());

/**
 * The patient's birth day (yyyy-MM-dd, local) for the rule that no visit, diagnosis, death or report
 * precedes it: from the stored patient, else the record's own birth date, else its resident ID.
 */
function birthOf(record: Record<string, unknown>, births: Map<string, string>): string | null {
  const stored = births.get(birthKey(String(record.orgCode), String(record.patientId)));
  if (stored) return stored;
  if (record.birthDate instanceof Date) return dayOf(record.birthDate);
  if (record.idCardTypeCode === '01' && typeof record.idCard === 'string') {
    const id = checkResidentId(record.idCard);
    if (id.ok) return birthDayOf(id.facts);
  }
  return null;
}

/** The record's event times before the birth day, by calendar day (born that day is fine). */
function beforeBirth(r: Resource, record: Record<string, unknown>, birth: string | null): FieldIssue[] {
  const fields = EVENT_TIMES[r.name];
  if (!fields || !birth) return [];
  const out: FieldIssue[] = [];
  for (const f of fields) {
    const t = record[f];
    if (t instanceof Date && dayOf(t) < birth)
      out.push({ field: f, rule: 'beforeBirth', message: '不能早于患者出生日期 (before the patient was born)', value: formatLocal(t, TIME_ZONE()) });
  }
  return out;
}

/**
 * For a record validated before the stored birth days were read (a call trying to write its records
 * as new): the patient and the first local day of its event times, which the try's guard checks
 * against the stored birth date (docs/ingest.md "New records in one round trip"). Null when there is
 * nothing to check.
 */
function birthCheck(r: Resource, p: Prepared): { orgCode: string; patientId: string; bornFrom: Date } | null {
  const fields = EVENT_TIMES[r.name];
  const patientId = keyText(p.record.patientId);
  if (!fields || !patientId) return null;
  const days = fields.flatMap((f) => (p.record[f] instanceof Date ? [dayOf(p.record[f] as Date)] : []));
  if (days.length === 0) return null;
  // A birth day after the first event day is a birth on or after the end of that local day.
  return { orgCode: p.orgCode, patientId, bornFrom: dayBounds(days.sort()[0]!, TIME_ZONE()).to };
}

/** Records-held counts of the unmapped queue: +1 for each code newly holding a record, −1 released. */
type HeldDelta = Map<string, { org: string; domain: string; code: string; n: number }>;

function countHolds(delta: HeldDelta, org: string, before: Hold[], after: Hold[]): void {
  const mappings = (hs: Hold[]) => new Map(hs.flatMap((h) => (h.kind === 'mapping' ? [[holdKey(h), h] as const] : [])));
  const b = mappings(before);
  const a = mappings(after);
  const bump = (k: string, h: Extract<Hold, { kind: 'mapping' }>, n: number) => {
    const e = delta.get(`${org}|${k}`) ?? { org, domain: h.domain, code: h.code, n: 0 };
    e.n += n;
    delta.set(`${org}|${k}`, e);
  };
  for (const [k, h] of a) if (!b.has(k)) bump(k, h, 1);
  for (const [k, h] of b) if (!a.has(k)) bump(k, h, -1);
}

/**
 * A child checks whether its parent is stored (else it is held and waits), and a parent releases the
 * children waiting for it: in two concurrent transactions each could miss the other's uncommitted row,
 * leaving a child held behind a stored parent. Both therefore take a transaction lock on the link —
 * the child a shared one on its parents' keys, the parent an exclusive one on its own — in one
 * statement, in key order (no deadlock): whichever commits first is seen by the other, and children
 * of one parent do not wait for each other (docs/ingest.md "Parents and children").
 */
function parentLinks(r: Resource, wave: Prepared[]): Link[] {
  const links: Link[] = [];
  for (const p of wave) {
    for (const ref of p.parentRefs) links.push([ref.resource, p.orgCode, ref.id, 'shared']);
    if (isParent(r.name)) links.push([r.name, p.orgCode, p.id, 'exclusive']);
  }
  return links;
}

/** How writeWaveIn meets its transaction (withTx's TxPipeline; docs/ingest.md "Round trips"). */
interface WaveTx {
  /** Where a new record's versions start on this database (versionBase, shared/ingest/restore-gap.ts). */
  base: number;
  /** BEGIN was sent without waiting: awaited with the wave's first reads. */
  pipe?: TxPipeline;
  /** The wave is the transaction's last work: its last statement goes with COMMIT when it can. */
  last?: boolean;
}

/** A record of the wave that is written: not unchanged. */
interface Changed {
  p: Prepared;
  cur: Current | undefined;
  version: number;
  held: Hold[];
}

/**
 * Writes one wave of records (no key twice) inside the caller's transaction, with one statement per
 * table: a batch of 500 costs about as many round trips as a single record. The caller holds the
 * transaction (upsertGroup: one per wave; a report document: header and items together). The reads
 * go out together (readWave), then the composed write per chunk — the last with COMMIT behind it
 * when nothing is left to do after it (docs/ingest.md "Round trips").
 */
async function writeWaveIn(tx: Tx, r: Resource, wave: Prepared[], ctx: IngestContext, delta: HeldDelta, o: WaveTx): Promise<Outcome[]> {
  const { current, found, awaited } = await readWave(tx, r, wave, o.pipe);
  const outcomes: Outcome[] = [];
  const changed: Changed[] = [];
  for (const p of wave) {
    const cur = current.get(keyOf(p.orgCode, p.id));
    if (cur && cur.hash === p.hash && cur.retired === p.retiring) {
      outcomes.push({ id: p.id, orgCode: p.orgCode, status: 'unchanged', version: cur.version, held: [], test: p.test, warnings: p.warnings });
    } else {
      changed.push({ p, cur, version: (cur?.version ?? o.base) + 1, held: [...(p.mapping?.holds ?? [])] });
    }
  }
  if (changed.length === 0) return outcomes;
  const before = await settleWaits(tx, r, changed, found, ctx.now);
  // One statement per chunk; the parent's own outbox rows come first, so platforms receive parents
  // before their children.
  for (let i = 0; i < changed.length; i += COMPOSE_RECORDS) {
    const last = i + COMPOSE_RECORDS >= changed.length;
    await writeChunk(tx, r, changed.slice(i, i + COMPOSE_RECORDS), before, awaited, last && o.last ? o.pipe : undefined);
  }
  for (const c of changed) countHolds(delta, c.p.orgCode, before.get(keyOf(c.p.orgCode, c.p.id)) ?? [], c.held);
  for (const c of changed) outcomes.push(writtenOutcome(c));
  return outcomes;
}

/** What the call is answered for a record that was written. */
function writtenOutcome(c: Changed): Outcome {
  const status: Status = c.p.retiring ? 'retired' : c.cur ? 'updated' : 'created';
  return { id: c.p.id, orgCode: c.p.orgCode, status, version: c.version, held: c.held.map(holdText), test: c.p.test, warnings: c.p.warnings };
}

/**
 * A wave's first round trip, sent together (and behind the BEGIN when it was not awaited): the
 * wave's parent-link locks, first, so the server takes them before anything below; the current
 * versions, locked; which parents are stored — one query per parent resource, for every
 * record of the wave (those found unchanged ignore the answer); and, for a parent resource, which of
 * these parents have children waiting for them — known before the write, as no child can add a wait
 * while this transaction holds the parent's link lock (docs/ingest.md "Parents and children").
 */
async function readWave(tx: Tx, r: Resource, wave: Prepared[], pipe: TxPipeline | undefined) {
  const byParent = new Map<string, { table: string; keys: Array<[string, string]> }>();
  for (const p of wave) {
    for (const ref of p.parentRefs) {
      const e = byParent.get(ref.resource) ?? { table: ref.table, keys: [] };
      e.keys.push([p.orgCode, ref.id]);
      byParent.set(ref.resource, e);
    }
  }
  const keys = wave.map((p): [string, string] => [p.orgCode, p.id]);
  const parents = [...byParent];
  // Nothing is written before the BEGIN and the link locks are known to have been taken; awaited
  // beside the reads. The first failure in the order sent is the one reported (a deadlock on the
  // link locks or the row locks: retried by withTx), not the aborted statements behind it (inOrder).
  const [, [, current, awaited, found]] = await inOrder([
    pipe?.began ?? Promise.resolve(),
    together(tx, [
      () => lockLinks(tx, parentLinks(r, wave)),
      () => lockMany(tx, r, keys),
      () => (isParent(r.name) ? awaitedParents(tx, r.name, keys) : Promise.resolve(new Set<string>())),
      () =>
        together(
          tx,
          parents.map(
            ([name, e]) =>
              () =>
                existingParents(tx, name, e.table, e.keys),
          ),
        ).then((sets) => new Map(parents.map(([name], i) => [name, sets[i]!]))),
    ] as const),
  ]);
  return { current, awaited, found };
}

/**
 * The changed records' parent holds (a parent not stored yet), the holds their previous versions had
 * (returned, for the unmapped queue's counts), held versions that this one replaces, and their waits
 * replaced. Only rewritten records whose receipt says they may have been held are looked up.
 */
async function settleWaits(tx: Tx, r: Resource, changed: Changed[], found: Map<string, Set<string>>, now: Date): Promise<Map<string, Hold[]>> {
  const waits: Wait[] = [];
  for (const c of changed) {
    for (const ref of c.p.parentRefs) {
      if (found.get(ref.resource)?.has(keyOf(c.p.orgCode, ref.id))) continue;
      c.held.push({ kind: 'parent', resource: ref.resource, id: ref.id });
      waits.push({ resource: r.name, orgCode: c.p.orgCode, id: c.p.id, parentResource: ref.resource, parentId: ref.id });
    }
  }
  const wasHeld = changed.filter((c) => c.cur?.mayBeHeld).map((c): [string, string] => [c.p.orgCode, c.p.id]);
  const before = new Map<string, Hold[]>();
  if (wasHeld.length) for (const [k, v] of await holdsOf(tx, r.name, wasHeld)) before.set(k, v);
  // Versions still held for a reason this version no longer has are replaced by it.
  const superseded = changed.filter((c) => c.cur && c.held.length === 0 && (before.get(keyOf(c.p.orgCode, c.p.id))?.length ?? 0) > 0);
  await supersedeHeld(
    tx,
    r.name,
    superseded.map((c): [string, string] => [c.p.orgCode, c.p.id]),
  );
  if (wasHeld.length || waits.length) await replaceWaits(tx, r.name, wasHeld, waits, now);
  return before;
}

/** Where a composed write's parts find the records' payloads: its first parameter (writeChunk). */
const REC_RAW_AT_1 = { rec_raw: '$1' } as const;
const RAW_AT_1 = { raw: '$1' } as const;
const PAYLOAD_AT_1 = { payload: '$1' } as const;

/**
 * One chunk's typed rows, history, outbox rows, receipts and (for a parent) its waiting children's
 * waits in one composed statement; then its holds, and the children released. `pipe`, for the
 * transaction's last chunk: when nothing follows the statement, COMMIT goes with it. `guard`: the
 * chunk is written only if it holds (newRecordsGuardPart); false when it did not, and nothing was.
 */
async function writeChunk(
  tx: Tx,
  r: Resource,
  chunk: Changed[],
  before: Map<string, Hold[]>,
  awaited: Set<string>,
  pipe: TxPipeline | undefined,
  guard: { part: WritePart; shape: string } | null = null,
): Promise<boolean> {
  const op = (c: Changed) => (c.p.retiring ? ('retire' as const) : ('upsert' as const));
  /** Which version of which record a history row or an outbox row is. */
  const versionOf = (c: Changed) => ({ resource: r.name, orgCode: c.p.orgCode, id: c.p.id, version: c.version, op: op(c) });
  const typed = (c: Changed): RecordItem => ({
    record: c.p.record,
    hashes: c.p.hashes,
    b: { version: c.version, hash: c.p.hash, raw: c.p.payload, retired: c.p.retiring, test: c.p.test, receivedAt: c.p.now, latenessS: c.p.latenessS },
  });
  // A parent that is not held itself releases the children waiting for it.
  const ready = chunk.filter((c) => c.held.length === 0 && awaited.has(keyOf(c.p.orgCode, c.p.id))).map((c): [string, string] => [c.p.orgCode, c.p.id]);
  const receipts = chunk.map(
    (c): ReceiptRow => ({
      resource: r.name,
      orgCode: c.p.orgCode,
      id: c.p.id,
      version: c.version,
      state: c.held.length ? 'held' : c.p.retiring ? 'retired' : 'stored',
      retired: c.p.retiring,
      holds: c.held,
      hadHolds: (before.get(keyOf(c.p.orgCode, c.p.id))?.length ?? 0) > 0,
      flags: c.p.flags,
      businessAt: c.p.businessAt,
      businessDay: c.p.businessAt ? dayOf(c.p.businessAt) : null,
      test: c.p.test,
      at: c.p.now,
    }),
  );
  // A guarded statement's text also depends on what its guard checks; a name past PostgreSQL's 63
  // characters would be cut, so such a one is named by its text (nameOf).
  const name = `side1_${r.table}_${chunk[0]!.cur ? 'upd' : 'ins'}${ready.length ? '_release' : ''}${guard ? `_new_${guard.shape}` : ''}`;
  const single = chunk.length === 1 && name.length <= 63 && name;
  // Each record's payload goes once, as the statement's first parameter (one text, or an array of
  // them in the chunk's order), read there by its history and outbox rows and, when the chunk's
  // rows are all new or all stored (one source in the chunk's order), by its typed row
  // (docs/opengauss.md "Composed writes").
  const payloads = chunk.map((c) => JSON.stringify(c.p.payload));
  const fresh = chunk.filter((c) => !c.cur).map(typed);
  const stored = chunk.filter((c) => c.cur).map(typed);
  const compose = () =>
    composeWrites<WaitingRow>(
      tx,
      [
        ...(guard ? [guard.part] : []),
        recordsPart(r, fresh, stored, fresh.length === 0 || stored.length === 0 ? REC_RAW_AT_1 : undefined),
        historyPart(
          chunk.map((c) => ({ ...versionOf(c), hash: c.p.hash, raw: c.p.payload, callId: c.p.callId, at: c.p.now, warn: !c.p.test })),
          RAW_AT_1,
        ),
        enqueuePart(
          chunk.map((c) => ({ ...versionOf(c), deadline: r.deadline, test: c.p.test, held: c.held.length > 0, payload: c.p.payload })),
          PAYLOAD_AT_1,
        ),
        receiptPart(
          receipts.filter((_, i) => !chunk[i]!.cur),
          receipts.filter((_, i) => chunk[i]!.cur),
        ),
        ...(ready.length ? [releaseWaitsPart(r.name, ready)] : []),
      ],
      ready.length ? WAITING_COLUMNS : [],
      single,
      [chunk.length === 1 ? payloads[0] : payloads],
    );
  // Nothing after this statement (no children to release, no holds to replace): COMMIT goes with it.
  if (pipe && ready.length === 0 && receipts.every((x) => !x.hadHolds && x.holds.length === 0)) {
    return (await pipe.commitWith(compose)).passed;
  }
  // A guard comes only with new records that hold nothing and release nothing: the branch above.
  if (guard) throw new Error("writeChunk: a guarded write must be the transaction's last statement");
  const waiting = (await compose()).rows;
  await replaceHolds(tx, receipts);
  if (waiting.length) await releaseWaiting(tx, r.name, waiting, isParent);
  return true;
}

/**
 * POST of one or many records: each is validated on its own (a bad one does not stop the rest);
 * the valid ones are written set-wise, in waves in which no key appears twice, so repeated keys
 * keep their order. A database error fails the call (the HIS retries; what committed is then
 * "unchanged").
 */
export async function upsertMany(db: Db, r: Resource, sent: unknown[], ctx: IngestContext): Promise<ItemResult[]> {
  return upsertGroup(
    db,
    r,
    sent.map((body) => ({ body, ctx })),
  );
}

/** One record of a group: its body and the context of the call that sent it. */
export interface GroupItem {
  body: unknown;
  ctx: IngestContext;
}

/**
 * Records of one resource from one or many calls (a batch, or the group commit gathering concurrent
 * single-record calls: shared/ingest/group.ts), each validated and authorised with its own call's
 * context, written together as upsertMany writes a batch: waves in which no key appears twice, in
 * the order given. The transaction's shared work (waits) is dated by the first item's call.
 */
export interface GroupOptions {
  /**
   * Runs inside each wave's transaction, after the wave's writes, with the items it wrote (index in
   * `items`, outcome): what the caller records there commits or rolls back with the records
   * (database sync marks its staging rows taken this way, docs/dbsync.md).
   */
  inWave?: (tx: Tx, written: Array<{ index: number; outcome: Outcome }>) => Promise<void>;
  /**
   * Told, when the write fails, of each record the call refused (its rejection logged): a retry of
   * the call record by record (shared/ingest/group.ts) answers those without refusing and logging them again.
   */
  onRefused?: (index: number, result: ItemResult) => void;
  /**
   * The group's refusals and code sightings are the caller's, written in its own transactions
   * instead of the rejection log's and the buffered sightings' (database sync, docs/dbsync.md
   * "Exactly once": a run killed mid-batch takes its rows again, and what it counted must be counted
   * once): `rejections` is handed the refusals to write with their outcome; each wave's code
   * sightings and records-held changes are written in the wave's own transaction.
   */
  bookkeeping?: { rejections: (list: Rejection[]) => void };
}

export async function upsertGroup(db: Db, r: Resource, items: GroupItem[], opts: GroupOptions = {}): Promise<ItemResult[]> {
  if (items.length === 0) return [];
  const ctx = items[0]!.ctx;
  const bodies = await resolveGroupOrgs(db, r, items);
  // A call that may try to write its records as new leaves the stored birth days to the try's guard
  // and reads them only when the try is not made or misses (docs/ingest.md "New records in one round trip").
  const mayTry = !opts.inWave && bodies.length <= NEW_WAVE_MAX && EVENT_TIMES[r.name] !== undefined && newRecordOdds(db).wouldTry(r.name);
  let births = mayTry ? null : await storedBirthDays(db, r, bodies);
  let g = prepareGroup(r, items, bodies, births ?? new Map());
  // Refused without them, a record may be judged otherwise with its stored patient's birth date (it
  // comes before the record's own; it may add an issue to a record refused for another): the whole
  // call is validated again with them.
  // So is a call with a key sent twice (only its first wave tries), so that a copy refused by them
  // leaves the next copy of its key in the wave it had (the waves are the same as when read first).
  if (births === null && (g.results.some(Boolean) || g.waves.length > 1)) g = prepareGroup(r, items, bodies, (births = await storedBirthDays(db, r, bodies)));
  const { results, rejections, waves } = g;
  const logRejections = async (list: Rejection[]) => {
    if (opts.bookkeeping) opts.bookkeeping.rejections(list);
    // Best effort: a rejection log that cannot be written must not turn a 400 into a 500.
    else await recordRejections(db, list).catch(() => undefined);
  };
  await logRejections(rejections);
  // Read after the try (it missed, was not made, or failed): the records they refuse are refused and logged as if read first.
  const refuseLate = async () => {
    const late: Rejection[] = [];
    refuseBeforeBirth(r, items, waves, results, late, await storedBirthDays(db, r, bodies));
    await logRejections(late);
  };
  try {
    await writeWaves(db, r, ctx, waves, results, births === null, refuseLate, opts);
  } catch (err) {
    // What it refused is final and logged: a retry of the group answers those calls without logging them again.
    for (const [i, res] of results.entries()) if (res && !res.ok) opts.onRefused?.(i, res);
    throw err;
  }
  return results;
}

/** A call's waves written, the first tried as new when `tried` (upsertGroup); their outcomes put in `results`. */
async function writeWaves(
  db: Db,
  r: Resource,
  ctx: IngestContext,
  waves: Wave[],
  results: Array<ItemResult | undefined>,
  tried: boolean,
  refuseLate: () => Promise<void>,
  opts: GroupOptions,
): Promise<void> {
  let first: Awaited<ReturnType<typeof writeNewWave>> = null;
  const base = await versionBase(db);
  try {
    if (waves.length > 0 && !opts.inWave) first = await writeNewWave(db, r, waves[0]!, tried, base);
  } catch (err) {
    if (tried) await refuseLate().catch(() => undefined);
    throw err;
  }
  if (tried && !first) await refuseLate();
  const delta: HeldDelta = new Map();
  for (const [w, wave] of waves.entries()) {
    if (wave.length === 0) continue;
    // Only the first wave may be new: a later one holds keys sent again in this call.
    const written =
      (w === 0 && first) ||
      (await withTx(
        db,
        async (tx, pipe) => {
          // Counted in the wave's transaction, the wave's own changes (a retried transaction counts afresh).
          const waveDelta: HeldDelta = opts.bookkeeping ? new Map() : delta;
          const outcomes = await writeWaveIn(
            tx,
            r,
            wave.map((x) => x.p),
            ctx,
            waveDelta,
            { base, pipe, last: !opts.inWave },
          );
          if (opts.bookkeeping && ctx.codes)
            await recordObservedIn(
              tx,
              observationsOf(
                wave.map((x) => x.p),
                waveDelta,
              ),
            );
          const byKey = new Map(outcomes.map((o) => [keyOf(o.orgCode, o.id), o]));
          const w = wave.map(({ index, p }) => ({ index, outcome: byKey.get(keyOf(p.orgCode, p.id))! }));
          await opts.inWave?.(tx, w);
          return w;
        },
        undefined,
        true,
      ));
    for (const { index, outcome } of written) results[index] = { ok: true, outcome };
  }
  if (!opts.bookkeeping)
    observeCodes(
      ctx,
      waves.flatMap((w) => w.map((x) => x.p)),
      delta,
    );
}

/** A wave's code sightings and records-held changes, merged per code, as the cache's buffer merges them. */
function observationsOf(written: Prepared[], delta: HeldDelta): Observation[] {
  const out = new Map<string, Observation>();
  const now = new Date();
  const add = (org: string, domain: string, local: string, name: string | null, count: number, held: number) => {
    const code = local.trim();
    if (!code) return;
    const k = `${org}\u0000${domain}\u0000${code}`;
    const cur = out.get(k);
    if (cur) {
      cur.count += count;
      cur.held += held;
      cur.name ??= name;
    } else out.set(k, { org, domain, local: code, name, count, held, first: now, last: now });
  };
  for (const p of written) for (const o of p.mapping?.observed ?? []) add(p.orgCode, o.domain, o.code, o.name?.trim() || null, 1, 0);
  for (const d of delta.values()) if (d.n !== 0) add(d.org, d.domain, d.code, null, 0, d.n);
  return [...out.values()];
}

type Wave = Array<{ index: number; p: Prepared }>;

/** A call's records normalised, authorised and validated (each with its own call's context), in waves in which no key appears twice. */
function prepareGroup(
  r: Resource,
  items: GroupItem[],
  bodies: unknown[],
  births: Map<string, string>,
): { results: ItemResult[]; rejections: Rejection[]; waves: Wave[] } {
  const results: ItemResult[] = new Array(bodies.length);
  const rejections: Rejection[] = [];
  const waves: Wave[] = [];
  const seen = new Map<string, number>();
  bodies.forEach((body, index) => {
    try {
      const p = prepare(r, body, items[index]!.ctx, rejections, births);
      const k = keyOf(p.orgCode, p.id);
      const w = seen.get(k) ?? 0;
      seen.set(k, w + 1);
      (waves[w] ??= []).push({ index, p });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      results[index] = { ok: false, error: err };
    }
  });
  return { results, rejections, waves };
}

/**
 * Records validated before the stored birth days were read (a call of one wave), checked against
 * them now: one whose event times precede its stored patient's birth day is refused (and leaves its
 * wave), as validation would have refused it with them.
 */
function refuseBeforeBirth(r: Resource, items: GroupItem[], waves: Wave[], results: ItemResult[], rejections: Rejection[], births: Map<string, string>): void {
  if (births.size === 0) return;
  for (const wave of waves) {
    const kept = wave.filter(({ index, p }) => {
      const stored = births.get(birthKey(p.orgCode, keyText(p.record.patientId)));
      const issues = stored ? beforeBirth(r, p.record, stored) : [];
      if (issues.length === 0) return true;
      results[index] = { ok: false, error: refusal(r, items[index]!.ctx, rejections, p.orgCode, p.id, issues) };
      return false;
    });
    wave.splice(0, wave.length, ...kept);
  }
}

/** Waves of at most this many records try to be written as new (a few guard conditions per key). */
const NEW_WAVE_MAX = 8;

/** A try at writing as new that raced another transaction: a key created meanwhile, a deadlock, a serialization failure. */
const NEW_RACE = new Set(['23505', '40P01', '40001']);

/**
 * A wave written as new records in one round trip — BEGIN, its link locks, the composed write of
 * new records behind its guard, COMMIT — when every record may be new: not a retirement, held by no
 * mapping (docs/ingest.md "New records in one round trip"). Null when the wave does not try, or
 * tried and missed (nothing of it was written): it is then written the usual way.
 */
async function writeNewWave(db: Db, r: Resource, wave: Wave, checkBirths: boolean, base: number): Promise<Array<{ index: number; outcome: Outcome }> | null> {
  const ps = wave.map((x) => x.p);
  if (ps.length === 0 || ps.length > NEW_WAVE_MAX || ps.some((p) => p.retiring || (p.mapping?.holds.length ?? 0) > 0)) return null;
  const odds = newRecordOdds(db);
  if (!odds.shouldTry(r.name)) return null;
  const changed: Changed[] = ps.map((p) => ({ p, cur: undefined, version: base + 1, held: [] }));
  const guard = newRecordsGuardPart(
    r,
    ps.map((p): [string, string] => [p.orgCode, p.id]),
    ps.flatMap((p) => p.parentRefs.map((ref) => ({ resource: ref.resource, table: ref.table, orgCode: p.orgCode, id: ref.id }))),
    isParent(r.name),
    checkBirths ? ps.flatMap((p) => birthCheck(r, p) ?? []) : [],
  );
  let written: boolean;
  try {
    written = await withTx(
      db,
      // The link locks first, the guarded write behind them with COMMIT: one round trip.
      async (tx, pipe) =>
        (
          await inOrder([
            pipe.began,
            together(tx, [() => lockLinks(tx, parentLinks(r, ps)), () => writeChunk(tx, r, changed, new Map(), new Set(), pipe, guard)] as const),
          ])
        )[1][1],
      0,
      true,
    );
  } catch (err) {
    if (!NEW_RACE.has((err as { code?: string }).code ?? '')) throw err;
    written = false;
  }
  odds.saw(r.name, written);
  if (!written) return null;
  return wave.map(({ index }, i) => ({ index, outcome: writtenOutcome(changed[i]!) }));
}

/** resolveOrgs per caller (a group may hold several callers' records, each with its own bindings). */
async function resolveGroupOrgs(db: Db, r: Resource, items: GroupItem[]): Promise<unknown[]> {
  const byCaller = new Map<IngestContext['callerOrgs'] | null, number[]>();
  items.forEach((it, i) => {
    const k = it.ctx.callerOrgs ?? null;
    (byCaller.get(k) ?? byCaller.set(k, []).get(k)!).push(i);
  });
  const out: unknown[] = new Array(items.length);
  for (const idx of byCaller.values()) {
    const first = items[idx[0]!]!.ctx;
    const resolved = await resolveOrgs(
      db,
      r,
      idx.map((i) => items[i]!.body),
      { callerOrgs: first.callerOrgs, installationOrg: first.installationOrg },
    );
    for (const [j, i] of idx.entries()) out[i] = resolved[j];
  }
  return out;
}

/**
 * Every code seen feeds the unmapped queue and the completeness report (buffered, after commit): one
 * sighting per code of a record; the records-held changes are no sightings (one record counts once).
 */
function observeCodes(ctx: IngestContext, written: Prepared[], delta: HeldDelta): void {
  if (!ctx.codes) return;
  for (const p of written) for (const o of p.mapping?.observed ?? []) ctx.codes.observe(p.orgCode, o.domain, o.code, o.name, 0);
  for (const d of delta.values()) if (d.n !== 0) ctx.codes.held(d.org, d.domain, d.code, d.n);
}

/**
 * A document's items, each with its header's id and org filled in where it leaves them out, prepared
 * as records of the item resource. What fails is added to `issues` under `items[i].field` (the
 * document is then refused whole); an item id twice, or an item naming another header, fails too.
 */
function prepareItems(
  doc: { item: Resource; link: string },
  list: unknown[],
  header: { id: string | null; org: string | null },
  ctx: IngestContext,
  rejections: Rejection[],
  issues: FieldIssue[],
): Prepared[] {
  const { item, link } = doc;
  const headerId = header.id;
  const headerOrg = header.org;
  const prepared: Prepared[] = [];
  // An item id twice in one report: the second would silently replace the first in the same
  // transaction (a result lost), so the document is refused naming both.
  const firstAt = new Map<string, number>();
  list.forEach((raw, i) => {
    const at = (f: string) => `items[${i}]${f ? `.${f}` : ''}`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      issues.push({ field: at(''), rule: 'type', message: '条目应为 JSON 对象 (an item must be a JSON object)' });
      return;
    }
    const known = normalizeKeys(item, raw as Record<string, unknown>).known;
    const itemId = keyText(known.id);
    if (itemId !== null) {
      const first = firstAt.get(itemId);
      if (first !== undefined) {
        issues.push({
          field: at('id'),
          rule: 'duplicateItem',
          message: `与 items[${first}] 的 id 相同：同一份报告中条目 id 不能重复 (same id as items[${first}])`,
        });
        return;
      }
      firstAt.set(itemId, i);
    }
    const named = keyText(known[link]);
    if (named !== null && headerId !== null && named !== headerId) {
      issues.push({ field: at(link), rule: 'documentParent', message: `应为本报告的 ID ${headerId} (must name this document's header)` });
      return;
    }
    const filled: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    if (named === null && headerId !== null) filled[link] = headerId;
    if (keyText(known.orgCode) === null && headerOrg !== null) filled.orgCode = headerOrg;
    try {
      prepared.push(prepare(item, filled, ctx, rejections));
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      issues.push(...(err.issues.length ? err.issues.map((x) => ({ ...x, field: at(x.field) })) : [{ field: at(''), rule: err.code, message: err.desc }]));
    }
  });
  return prepared;
}

export interface DocumentOutcome {
  header: Outcome;
  items: Outcome[];
}

/**
 * A report document: a header with its items, `{ ...header, items: [ ...item ] }` (docs/his-guide.md
 * §1). Each item names its header by the link field (exLabId, exClinicalId, orderId) or leaves it out
 * (the header's id is taken), and takes the header's org when it carries none. The document is
 * validated whole — any failing field of the header or an item (named `items[i].field`) refuses it
 * all — and stored in one transaction, the header's rows before its items', so a platform never
 * receives an item without its header and no item waits for a header that has not arrived (items of a
 * header that is itself held wait with it, and leave right after it).
 */
export async function upsertDocument(db: Db, header: Resource, body: unknown, ctx: IngestContext): Promise<DocumentOutcome> {
  const doc = documentItems(header);
  if (!doc) throw new AppError('BAD_REQUEST', `${header.title}不接受 items (this resource takes no items)`);
  const { items: rawItems, ...sentHead } = asObject(body);
  const head = (await resolveOrgs(db, header, [sentHead], ctx))[0] as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  if (rawItems !== undefined && !Array.isArray(rawItems)) {
    issues.push({ field: 'items', rule: 'type', message: '应为数组 (items must be an array)' });
  }
  const list = Array.isArray(rawItems) ? rawItems : [];
  const maxItems = 5_000;
  if (list.length > maxItems) throw new AppError('PAYLOAD_TOO_LARGE', `单个报告的条目不能超过 ${maxItems} 条 (at most ${maxItems} items per document)`);
  const rejections: Rejection[] = [];
  let hp: Prepared | undefined;
  try {
    hp = prepare(header, head, ctx, rejections, await storedBirthDays(db, header, [head]));
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    issues.push(...err.issues);
  }
  const headKnown = normalizeKeys(header, head).known;
  const headerId = hp?.id ?? keyText(headKnown.id);
  const headerOrg = hp?.orgCode ?? keyText(headKnown.orgCode);
  const prepared = prepareItems(doc, list, { id: headerId, org: headerOrg }, ctx, rejections, issues);
  if (issues.length || !hp) {
    await recordRejections(db, rejections).catch(() => undefined);
    throw new AppError(
      'VALIDATION_FAILED',
      `${header.title}校验不通过，整份报告未保存：${issues.map((x) => `${x.field}(${x.rule})`).join('，')}`,
      issues,
      headerId,
    );
  }
  // Every item id once (above): the items are one wave, written after their header.
  const delta: HeldDelta = new Map();
  const head1 = hp;
  const base = await versionBase(db);
  const out = await withTx(db, async (tx) => {
    delta.clear();
    const [h] = await writeWaveIn(tx, header, [head1], ctx, delta, { base });
    const byId = new Map<string, Outcome>();
    if (prepared.length) for (const o of await writeWaveIn(tx, doc.item, prepared, ctx, delta, { base })) byId.set(o.id, o);
    return { header: h!, items: prepared.map((p) => byId.get(p.id)!) };
  });
  observeCodes(ctx, [head1, ...prepared], delta);
  return out;
}

/** POST: insert or update one record. Throws AppError (400/403) naming every failing field. */
export async function upsertRecord(db: Db, r: Resource, body: unknown, ctx: IngestContext, opts: GroupOptions = {}): Promise<Outcome> {
  const [res] = await upsertGroup(db, r, [{ body, ctx }], opts);
  if (!res!.ok) throw res!.error;
  return res!.outcome;
}

async function reject(db: Db, r: Resource, known: Record<string, unknown>, err: AppError, ctx: IngestContext): Promise<never> {
  const orgCode = keyText(known.orgCode);
  await recordRejections(db, [
    { resource: r.name, orgCode, id: keyText(known.id), callId: ctx.callId, caller: ctx.caller ?? null, issues: err.issues, test: isTest(ctx, orgCode) },
  ]).catch(() => undefined);
  throw err;
}

/** DELETE with the key in the body: retires the record (a new version the platforms receive too). */
export async function retireRecord(db: Db, r: Resource, sent: unknown, ctx: IngestContext): Promise<Outcome> {
  // A DELETE by id alone finds its org as a POST does (the parent in the body, the caller, the installation).
  const body = (await resolveOrgs(db, r, [asObject(sent)], ctx))[0];
  const normalized = normalizeKeys(r, asObject(body)).known;
  // A resource keyed by another field (baseDept by deptCode) may name its record by that field.
  const known = r.keyField && !keyText(normalized.id) ? { ...normalized, id: normalized[r.keyField] } : normalized;
  const claimedOrg = keyText(known.orgCode);
  if (claimedOrg) ctx.authorize?.(claimedOrg);
  const issues: FieldIssue[] = [];
  const key: Record<string, string> = {};
  for (const k of r.key) {
    const v = keyText(known[k]);
    if (v) key[k] = v;
    else issues.push({ field: k, rule: 'required', message: `删除时必填 (${k} is required to delete)` });
  }
  if (issues.length) return reject(db, r, known, new AppError('VALIDATION_FAILED', '删除请求缺少主键 (the key is missing)', issues), ctx);
  const { orgCode, id } = key as { orgCode: string; id: string };
  const test = isTest(ctx, orgCode);
  return withTx(db, async (tx) => {
    const cur = await lockCurrent(tx, r, orgCode, id);
    if (!cur) throw new AppError('NOT_FOUND', `${r.title}不存在：${id} (no such record)`, [], id);
    if (cur.retired) return { id, orgCode, status: 'unchanged' as const, version: cur.version, held: [], test, warnings: [] };
    const version = cur.version + 1;
    const payload = { id, orgCode, invalidFlag: 1 };
    const hash = digest({ payload, retired: true });
    const rc = await tx.query<{ business_at: Date | null; business_day: string | null; flags: string | null }>(
      'SELECT business_at, business_day, flags FROM record_receipt WHERE resource = $1 AND org_code = $2 AND record_id = $3',
      [r.name, orgCode, id],
    );
    const prev = rc.rows[0];
    const held = (await holdsOf(tx, r.name, [[orgCode, id]])).get(keyOf(orgCode, id)) ?? [];
    await retire(tx, r, orgCode, id, version, hash, ctx.now);
    // A retirement always reaches the warning loop: it only takes the record's evidence away.
    await appendHistory(tx, [{ resource: r.name, orgCode, id, version, op: 'retire', hash, raw: payload, callId: ctx.callId, at: ctx.now, warn: true }]);
    await enqueue(tx, [{ resource: r.name, orgCode, id, version, op: 'retire', deadline: r.deadline, test, held: held.length > 0, payload }]);
    await writeReceipts(tx, [
      {
        resource: r.name,
        orgCode,
        id,
        version,
        state: held.length ? 'held' : 'retired',
        retired: true,
        holds: held,
        flags: (prev?.flags ?? '').split(' ').filter(Boolean),
        businessAt: prev?.business_at ?? null,
        businessDay: prev?.business_day ?? null,
        test,
        at: ctx.now,
      },
    ]);
    return { id, orgCode, status: 'retired' as const, version, held: held.map(holdText), test, warnings: [] };
  });
}
