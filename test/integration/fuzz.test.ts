// Fuzz: valid samples of every resource, mutated thousands of times (wrong types, over-long and huge
// strings, missing keys, junk bytes, invalid UTF-8, control characters, deep nesting, SQL fragments,
// numbers as strings, NaN / Infinity / 1e400, unicode, prototype-pollution keys, arrays for objects,
// empty and non-JSON bodies), through each receive function's app.request() on the real database.
//
// Every answer must be 2xx or 4xx, never 5xx, in the answer envelope; a record answered 4xx leaves
// nothing behind (no row, no history, no outbox, no receipt); a record answered 2xx has its row.
// Each mutated record has an org code of its own, so "nothing behind" is exact.
//
// Reproduce a failure with the seed in its message: FUZZ_SEED=<seed> FUZZ_N=<n> npx vitest run test/integration/fuzz.test.ts
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { rng } from '../../infra/simulators/his.js';
import { sample } from '../../infra/simulators/samples.js';
import { resources } from '../../schemas/index.js';
import { AnswerSchema } from '../../shared/http/errors.js';
import { parseJsonExact } from '../../shared/http/json.js';
import type { FaasFunction } from '../../shared/fn/index.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8,::1/128';
process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? 'error';

const N = Number(process.env.FUZZ_N ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const db = testDb();

const apps = new Map<string, FaasFunction>([
  ['patient', (await import('../../functions/patient/handler.js')).default],
  ['diagnosis', (await import('../../functions/diagnosis/handler.js')).default],
  ['card', (await import('../../functions/card/handler.js')).default],
  ['lab', (await import('../../functions/lab/handler.js')).default],
  ['exam', (await import('../../functions/exam/handler.js')).default],
  ['order', (await import('../../functions/order/handler.js')).default],
  ['death', (await import('../../functions/death/handler.js')).default],
  ['record', (await import('../../functions/record/handler.js')).default],
]);

beforeAll(async () => {
  for (const r of Object.values(resources)) if (!apps.has(r.fn)) throw new Error(`fuzz: no receive function ${r.fn} imported for ${r.name}`);
  // Each function opens its own pool on init; they share one process here, as in the bench.
  for (const f of apps.values()) await f.init?.();
});
afterAll(async () => {
  for (const f of apps.values()) await f.close?.();
});

type Rec = Record<string, unknown>;
type R = () => number;

/** What one request carries: the records in it (each with its own org) and the body as sent. */
interface Case {
  resource: string;
  mutations: string[];
  body: string | Uint8Array<ArrayBuffer>;
  contentType: string;
  /** The records the body holds, in order (a batch holds several), with the key they were built with. */
  records: Array<{ org: string; id: string; rec: unknown }>;
  batch: boolean;
}

const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const deep = (n: number, leaf: unknown, kind: 'object' | 'array'): unknown => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
};

const SQL = [
  "'; DROP TABLE emr_patient_info; --",
  '$1',
  '\\x00',
  "' OR '1'='1",
  '"; SELECT pg_sleep(5); --',
  "Robert'); DELETE FROM outbox;--",
  '%',
  '_',
  '\\',
  "E'\\\\x41'",
];
const UNICODE = ['😷🦠🧪', '\u202eRTL\u202c覆盖', 'e\u0301\u0301\u0301\u0301', '𠀀𠀁𪚥', '\u200d\u200b\ufeff', 'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǵ̟̮ͩo̩͚͓', 'ﾃｽﾄ', '锟斤拷烫烫烫'];
const CONTROL = ['a\u0000b', '\u0001\u0002\u001f', 'line\nbreak\r\ttab', '\u007f\u0085\u2028\u2029', '\u0000'];
const WRONG_TYPES: unknown[] = [123, -1, 0.5, true, false, {}, [], { a: 1 }, [1, 2, 3], null, [null]];
const NUMBERS_AS_STRINGS = ['1', ' 2 ', '1e3', '0x10', '-0', '+1', '١٢٣', '9'.repeat(30), '1.5', '-2147483649', '2147483648'];
const BAD_NUMBERS = [
  'NaN',
  'Infinity',
  '-Infinity',
  '1e400',
  '-1e400',
  '1e-400',
  '123456789012345678901234567890',
  '-0',
  '9007199254740993',
  '2147483648',
  '99999999999',
];
const TIMES = [
  '2026-02-30 10:00:00',
  '0000-00-00 00:00:00',
  '9999-12-31 23:59:59',
  '1900-01-01',
  '2026-13-01',
  '20261126',
  '2026-11-26T25:00:00Z',
  '-271821-04-20T00:00:00Z',
  '0001-01-01 00:00:00',
  'yesterday',
];
const TIME_NUMBERS = [8.64e15, -8.64e15, 8.64e15 + 1, 1e20, -1, 0, 253402300800000, -62198755200000];

/** Field mutations: each changes one field of the record and names what it did. */
const fieldMutations: Array<(rec: Rec, k: string, r: R) => string> = [
  (rec, k, r) => ((rec[k] = pick(r, WRONG_TYPES)), `${k}: wrong type ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, ['x', '医', 'Ab']).repeat(pick(r, [51, 81, 101, 251, 300, 2001]))), `${k}: over-long (${String(rec[k]).length})`),
  (rec, k) => (delete rec[k], `${k}: missing`),
  (rec, k, r) => ((rec[k] = pick(r, CONTROL)), `${k}: control characters ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, ['\ud800', 'a\udfffb', '\udbff\udbff', 'x\ud83d'])), `${k}: lone surrogate ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, SQL)), `${k}: SQL fragment ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, NUMBERS_AS_STRINGS)), `${k}: number as string ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, UNICODE)), `${k}: unicode ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, TIMES)), `${k}: odd time ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = pick(r, TIME_NUMBERS)), `${k}: odd epoch ${JSON.stringify(rec[k])}`),
  (rec, k, r) => ((rec[k] = deep(pick(r, [50, 1000]), 'x', pick(r, ['object', 'array'] as const))), `${k}: nested deep`),
  (rec, k, r) => ((rec[k] = pick(r, ['', '   ', '\t'])), `${k}: blank`),
  (rec, k, r) =>
    (
      // biome-ignore lint/correctness/noPrecisionLoss: a sender's number beyond 2^53 is exactly what this case sends
      (rec[k] = pick(r, [-2147483649, 2147483648, 99999999999, 1e300, -1e300, 0.1, 9007199254740993])), `${k}: out-of-range number ${String(rec[k])}`
    ),
];

const HUGE = 'x'.repeat(1_100_000);

/** A mutated record as JSON text (some mutations only exist as text: NaN, 1e400, __proto__, invalid bytes). */
function mutate(resource: string, r: R, org: string, id: string): { text: string; rec: unknown; mutations: string[]; bytes?: boolean } {
  const rec = sample(resource, { orgCode: org, id, seed: 1 + Math.floor(r() * 1e6), patientId: `${id}-p`, parentId: `${id}-parent` });
  // baseDept carries its key as deptCode.
  if (resources[resource]!.keyField) rec[resources[resource]!.keyField!] = id;
  const mutations: string[] = [];
  const keys = Object.keys(resources[resource]!.fields);
  const times = 1 + Math.floor(r() * 3);
  for (let i = 0; i < times; i++) {
    // Key fields are mutated too, but less often: the check of "nothing stored" then uses the key as sent.
    const k = r() < 0.1 ? pick(r, ['orgCode', 'id']) : r() < 0.7 ? pick(r, Object.keys(rec)) : pick(r, keys);
    mutations.push(pick(r, fieldMutations)(rec, k, r));
  }
  let text = JSON.stringify(rec);
  const textual = r();
  if (textual < 0.04) {
    const v = pick(r, BAD_NUMBERS);
    const k = pick(r, keys);
    text = text.replace(/}$/, `,"${k}":${v}}`);
    mutations.push(`${k}: raw number ${v}`);
  } else if (textual < 0.08) {
    const key = pick(r, ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString']);
    const v = pick(r, ['{"polluted":true}', '{"prototype":{"polluted":true}}', '"x"', '1', 'null', '[1]']);
    text = text.replace(/^{/, `{"${key}":${v},`);
    mutations.push(`prototype key ${key}=${v}`);
  } else if (textual < 0.1) {
    const k = pick(r, keys.filter((x) => resources[resource]!.fields[x]!.kind === 'text').concat(['notes']));
    text = text.replace(/}$/, `,"${k}":"${HUGE}"}`);
    mutations.push(`${k}: huge string (1.1 MB)`);
  } else if (textual < 0.12) {
    const k = pick(r, keys);
    text = text.replace(/}$/, `,"${k}":${'['.repeat(1000)}1${']'.repeat(1000)}}`);
    mutations.push(`${k}: array 1000 deep`);
  } else if (textual < 0.14) {
    const k = pick(r, keys);
    text = text.replace(/}$/, `,"${k}":${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}}`);
    mutations.push(`${k}: object 1000 deep`);
  } else if (textual < 0.16) {
    // The same key twice, camelCase and UPPER_SNAKE, with different values.
    const k = pick(r, keys);
    text = text.replace(/}$/, `,"${k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()}":"other"}`);
    mutations.push(`${k}: sent twice (camelCase and UPPER_SNAKE)`);
  } else if (textual < 0.19) {
    // Invalid UTF-8 inside a string value (bytes, not text).
    mutations.push('invalid UTF-8 bytes in a value');
    return { text: text.replace(/"([^"]*)"}$/, '"$1\u0001JUNK"}'), rec, mutations, bytes: true };
  }
  // The record as the front will read it (a key appended as text wins over the same key before it;
  // a number a double cannot hold keeps its digits: shared/http/json.ts).
  let read: unknown = rec;
  try {
    read = parseJsonExact(text);
  } catch {
    read = rec;
  }
  return { text, rec: read, mutations };
}

const enc = new TextEncoder();
function withJunkBytes(text: string, r: R): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(enc.encode(text));
  const junk = pick(r, [
    [0xff, 0xfe],
    [0xc3, 0x28],
    [0xe2, 0x82],
    [0xf0, 0x28, 0x8c, 0xbc],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xa1, 0xa1, 0xd2, 0xbd], // GBK bytes for "　医"
  ]);
  // Replace the marker we planted inside the last string value with raw bytes.
  const marker = enc.encode('\u0001JUNK');
  for (let i = b.length - marker.length; i >= 0; i--) {
    if (marker.every((m, j) => b[i + j] === m)) return new Uint8Array([...b.slice(0, i), ...junk, ...b.slice(i + marker.length)]);
  }
  return new Uint8Array([...b.slice(0, -2), ...junk, ...b.slice(-2)]);
}

/** Whole-body mutations: not a record at all, or not JSON. */
function wholeBody(resource: string, r: R, org: string, id: string): Case {
  const valid = JSON.stringify(sample(resource, { orgCode: org, id, seed: 1 }));
  const [body, what, type] = pick(r, [
    ['', 'empty body', 'application/json'],
    ['{}', 'empty object', 'application/json'],
    ['[]', 'empty batch', 'application/json'],
    ['null', 'null', 'application/json'],
    ['"record"', 'a string', 'application/json'],
    ['42', 'a number', 'application/json'],
    ['true', 'a boolean', 'application/json'],
    ['[[]]', 'array in a batch', 'application/json'],
    [`[${'['.repeat(1000)}${']'.repeat(1000)}]`, 'batch of an array 1000 deep', 'application/json'],
    [`${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}`, 'object 1000 deep', 'application/json'],
    ['[1, "a", null, true]', 'batch of scalars', 'application/json'],
    [valid.slice(0, Math.max(1, Math.floor(valid.length / 2))), 'truncated JSON', 'application/json'],
    [`id=${id}&orgCode=${org}`, 'form-encoded', 'application/json'],
    ['<record><id>1</id></record>', 'XML', 'application/json'],
    [valid, 'JSON as text/plain', 'text/plain'],
    [valid, 'no content type', ''],
    [valid + 'garbage', 'trailing garbage', 'application/json'],
    ['{"id": NaN}', 'NaN', 'application/json'],
    [`{"orgCode":"${org}","id":"${id}","id":"${id}-2"}`, 'duplicate key in JSON', 'application/json'],
    [valid, 'charset=gbk', 'application/json; charset=gbk'],
  ] as const);
  let rec: unknown = null;
  try {
    rec = parseJsonExact(body);
  } catch {
    rec = null;
  }
  return { resource, mutations: [what], body, contentType: type, records: [{ org, id, rec }], batch: false };
}

function makeCase(resource: string, r: R): Case {
  const roll = r();
  if (roll < 0.08) return wholeBody(resource, r, uniqueOrg(), uniqueId('fz'));
  if (roll < 0.18) {
    // A batch of mutated records (and sometimes a valid one among them).
    const n = 2 + Math.floor(r() * 4);
    const parts = Array.from({ length: n }, () => {
      const org = uniqueOrg();
      const id = uniqueId('fz');
      if (r() < 0.3) return { org, id, text: JSON.stringify(sample(resource, { orgCode: org, id, seed: 3 })), mutations: ['valid'], rec: null as unknown };
      const m = mutate(resource, r, org, id);
      return { org, id, text: m.bytes ? JSON.stringify(m.rec) : m.text, mutations: m.mutations, rec: m.rec };
    });
    return {
      resource,
      mutations: parts.map((p, i) => `[${i}] ${p.mutations.join('; ')}`),
      body: `[${parts.map((p) => p.text).join(',')}]`,
      contentType: 'application/json',
      records: parts.map((p) => ({ org: p.org, id: p.id, rec: p.rec })),
      batch: true,
    };
  }
  const org = uniqueOrg();
  const id = uniqueId('fz');
  const m = mutate(resource, r, org, id);
  return {
    resource,
    mutations: m.mutations,
    body: m.bytes ? withJunkBytes(m.text, r) : m.text,
    contentType: 'application/json',
    records: [{ org, id, rec: m.rec }],
    batch: false,
  };
}

const keyText = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() || null : null);

interface Verdict {
  resource: string;
  org: string;
  id: string;
  /** The key as finally sent (a mutation may have changed orgCode or id). */
  sentOrg: string | null;
  sentId: string | null;
  accepted: boolean;
  answerId: string | null;
  what: string;
}

/** Orgs of records in a request answered 5xx: neither refused nor accepted (a batch may be partly stored). */
const errored = new Set<string>();

describe(`fuzzing the receive functions (seed ${SEED}, ${N} mutations)`, () => {
  const verdicts: Verdict[] = [];

  it('answers every mutated request 2xx or 4xx in the answer envelope, never 5xx', { timeout: 600_000 }, async () => {
    const r = rng(SEED);
    const names = Object.keys(resources);
    let made = 0;
    let n = 0;
    const failures: string[] = [];
    while (made < N) {
      const resource = names[n++ % names.length]!;
      const c = makeCase(resource, r);
      made += c.records.length;
      const app = apps.get(resources[resource]!.fn)!.app;
      const where = `seed ${SEED}, case ${n}, ${resource}: ${c.mutations.join(' | ').slice(0, 600)}`;
      const headers: Record<string, string> = { 'x-forwarded-for': '127.0.0.1' };
      if (c.contentType) headers['content-type'] = c.contentType;
      const res = await app.request(`/${resource}`, { method: 'POST', headers, body: c.body });
      const text = await res.text();
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch {
        answer = undefined;
      }
      if (res.status >= 500 || res.status < 200) {
        const line = `${where} → HTTP ${res.status} ${text.slice(0, 200)}`;
        failures.push(line);
        for (const rec of c.records) errored.add(rec.org);
        continue;
      }
      const env = AnswerSchema.safeParse(answer);
      if (!env.success) {
        failures.push(`${where} → HTTP ${res.status}, not the answer envelope: ${text.slice(0, 200)}`);
        continue;
      }
      // 2xx exactly when something was accepted: the record, or at least one record of a non-empty
      // batch (a batch with none accepted is 400, docs/his-guide.md §3; an empty one refuses nothing).
      const batchResults = (answer as { results?: unknown }).results;
      const someAccepted = Array.isArray(batchResults)
        ? batchResults.length === 0 || batchResults.some((x) => (x as { result?: unknown } | null)?.result === true)
        : env.data.result === true;
      if (res.status < 300 !== someAccepted) {
        failures.push(`${where} → HTTP ${res.status} with result ${env.data.result}`);
      }
      if (res.status >= 400 && env.data.errorCode === null) failures.push(`${where} → HTTP ${res.status} without an errorCode`);
      const results = (answer as { results?: unknown[] }).results;
      c.records.forEach((rec, i) => {
        let accepted = res.status < 300 && env.data.result === true;
        let answerId = env.data.id;
        if (c.batch && res.status < 300) {
          const one = AnswerSchema.safeParse(results?.[i]);
          if (!one.success) {
            failures.push(`${where} → batch result ${i} not the answer envelope: ${JSON.stringify(results?.[i]).slice(0, 200)}`);
            return;
          }
          accepted = one.data.result;
          answerId = one.data.id;
        }
        const sent = rec.rec && typeof rec.rec === 'object' ? (rec.rec as Rec) : {};
        const def = resources[resource]!;
        verdicts.push({
          resource,
          org: rec.org,
          id: rec.id,
          sentOrg: keyText(sent.orgCode),
          sentId: keyText(sent.id ?? (def.keyField ? sent[def.keyField] : undefined)),
          accepted,
          answerId,
          what: `${where}${c.batch ? ` [record ${i}]` : ''}`,
        });
      });
    }
    if (process.env.FUZZ_REPORT) writeFileSync(process.env.FUZZ_REPORT, failures.join('\n') + '\n');
    expect(failures.slice(0, 20), `${failures.length} bad answers`).toEqual([]);
    expect(made).toBeGreaterThanOrEqual(N);
    // Prototype pollution did not reach this process's objects.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    // Some mutations are harmless (a missing optional field, unicode in a name): both kinds occurred.
    expect(verdicts.some((v) => v.accepted)).toBe(true);
    expect(verdicts.some((v) => !v.accepted)).toBe(true);
  });

  it('leaves nothing behind for a refused record, and a row for an accepted one', { timeout: 120_000 }, async () => {
    expect(verdicts.length, 'the fuzz ran').toBeGreaterThan(0);
    const refused = verdicts.filter((v) => !v.accepted && !errored.has(v.org));
    const orgs = refused.map((v) => v.org);
    const leftovers: string[] = [];
    // Every mutated record had an org code of its own: any row under it is a leftover.
    const tables = [...new Set(Object.values(resources).map((r) => r.table))];
    for (const t of [...tables, 'record_history', 'outbox', 'record_receipt']) {
      const rows = await db.query<{ org_code: string }>(`SELECT DISTINCT org_code FROM ${t} WHERE org_code = ANY($1::varchar[])`, [orgs]);
      for (const row of rows.rows) leftovers.push(`${t}: ${refused.find((v) => v.org === row.org_code)!.what}`);
    }
    // A mutation that changed the org code: nothing under the org code as sent, for that id.
    // (A key holding NUL cannot even be looked up: PostgreSQL text has no NUL, so nothing holds it.)
    for (const v of refused.filter((x) => x.sentOrg && x.sentOrg !== x.org && x.sentId === x.id && !x.sentOrg.includes('\u0000'))) {
      const table = resources[v.resource]!.table;
      const n = await db.query(
        `SELECT 1 FROM ${table} WHERE org_code = $1 AND id = $2
         UNION ALL SELECT 1 FROM record_history WHERE resource = $3 AND org_code = $1 AND record_id = $2
         UNION ALL SELECT 1 FROM outbox WHERE resource = $3 AND org_code = $1 AND record_id = $2
         UNION ALL SELECT 1 FROM record_receipt WHERE resource = $3 AND org_code = $1 AND record_id = $2`,
        [v.sentOrg, v.id, v.resource],
      );
      if (n.rowCount) leftovers.push(`${table} (org as sent ${v.sentOrg}): ${v.what}`);
    }
    expect(leftovers.slice(0, 20), `${leftovers.length} leftovers of refused records`).toEqual([]);

    const missing: string[] = [];
    // (An accepted body that held no record — an empty batch — has no row to look for.)
    for (const v of verdicts.filter((x) => x.accepted && x.sentOrg)) {
      const table = resources[v.resource]!.table;
      const res = await db.query(`SELECT 1 FROM ${table} WHERE org_code = $1 AND id = $2`, [v.sentOrg, v.answerId ?? v.sentId]);
      if (!res.rowCount) missing.push(`${table} ${v.sentOrg}/${v.answerId}: ${v.what}`);
    }
    expect(missing.slice(0, 20), `${missing.length} accepted records without a row`).toEqual([]);
  });
});
