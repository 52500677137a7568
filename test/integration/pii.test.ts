// Personal data at rest (docs/keys.md, docs/security.md "Data at rest"), on the real runtime and a
// database of this file's own (so that every table can be scanned, and every value re-encrypted):
// - a record posted on the data port stores no clear ID number, name, phone or address anywhere in
//   the database, while the platform simulator receives the record exactly as sent;
// - the duplicate-card rules find an earlier card of the same ID number by its HMAC, and without one
//   an earlier card of the same person by the name's HMAC — or by the clear name in a card stored
//   before migration 0990 (no HMAC yet); a name under a key id the key file lacks claims no match;
// - rotation: a new key becomes current for the running functions, the job re-encrypts every old
//   value (and clear values stored before migration 0032), and the old key can then be removed;
// - a value under a key id the key file does not hold is refused with an error naming the key id.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { residentId, samplePatient } from '../../infra/simulators/his.js';
import { sample } from '../../infra/simulators/samples.js';
import { startPlatformSimulator, type PlatformHandle } from '../../infra/simulators/platform.js';
import { keyIdOf, openRecord, type Pii, PiiKeyError, piiFromDir, setPii } from '../../shared/pii/index.js';
import { keyStatus, readKeyFile, reencrypt, retireKey, rotateKey } from '../../shared/pii/rotate.js';
import { personKey, priorCards } from '../../shared/warning/duplicates.js';
import { privateDatabase, uniqueId, uniqueOrg } from '../setup/db.js';
import { startTestFront, type TestFront } from './front-stack.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
const DEST = `pii${randomBytes(3).toString('hex')}`;
let url: string;
let db: pg.Pool;
let sim: PlatformHandle;
let front: TestFront;
let keys: Pii;

beforeAll(async () => {
  priv = await privateDatabase('pii');
  ({ url, db } = priv);
  sim = await startPlatformSimulator({ role: 'national' });
  front = await startTestFront({ functions: ['patient', 'card', 'push'], databaseUrl: url, destination: { name: DEST, url: sim.url } });
  // The runtime made this front's keys (development); this process reads the same files.
  keys = piiFromDir(front.rt.secretsDir);
  setPii(keys);
}, 120_000);

afterAll(async () => {
  setPii(undefined);
  await front?.close();
  await sim?.close();
  await priv?.drop();
});

/** A person of this file's own: a fresh seed, addresses and a contact phone no other record holds. */
type Person = Record<string, unknown> & {
  id: string;
  idCard: string;
  tel: string;
  patientName: string;
  contacts: string;
  contactsTel: string;
  permanentAddrDetail: string;
  currentAddrDetail: string;
};
function person(org: string, id: string): Person {
  // A random seed for unique phones and addresses, drawn until the patient is an adult: the card the
  // duplicate test files for them is an adult's (no guardian, an adult's population group).
  let n: number;
  let base: Record<string, unknown>;
  do {
    n = Number.parseInt(randomBytes(3).toString('hex'), 16);
    base = samplePatient({ orgCode: org, id, seed: n });
  } while (Date.now() - Date.parse(String(base.birthDate).slice(0, 10)) < 15 * 366 * 86_400_000);
  // Names no other record holds: a scan of the database for them finds a clear copy only.
  const cjk = (k: number) => String.fromCodePoint(0x4e00 + (k % 0x5000));
  return {
    ...base,
    patientName: `欧阳${cjk(n)}${cjk(n >> 8)}`,
    contacts: `司马${cjk(n >> 4)}${cjk(n)}`,
    contactsTel: `137${String(n).padStart(8, '0').slice(-8)}`,
    permanentAddrDetail: `户籍测试路${n}号`,
    currentAddrDetail: `现住测试街${n}号`,
  } as Person;
}

const post = async (resource: string, body: unknown) => {
  const res = await fetch(`${front.data}/hclient/emr/receive/${resource}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json;
};

/** Every table of every schema but the system's: the ones whose rows' text holds `needle`. */
async function tablesHolding(needle: string): Promise<string[]> {
  const tables = (
    await db.query<{ s: string; t: string }>(
      `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    )
  ).rows;
  expect(tables.length).toBeGreaterThan(40);
  const found: string[] = [];
  for (const { s, t } of tables) {
    const r = await db.query(`SELECT 1 FROM "${s}"."${t}" x WHERE strpos(x::text, $1) > 0 LIMIT 1`, [needle]);
    if (r.rowCount) found.push(`${s}.${t}`);
  }
  return found;
}

/** The names, sealed under the current key in each copy — the typed row, rec_raw, history, outbox — with their HMACs. */
async function expectNamesSealed(org: string, p: Person): Promise<void> {
  const row = (
    await db.query('SELECT patient_name, contacts, patient_name_hmac, contacts_hmac, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [
      org,
      p.id,
    ])
  ).rows[0];
  const hist = (await db.query('SELECT raw FROM record_history WHERE org_code = $1 AND record_id = $2', [org, p.id])).rows[0].raw;
  const outbox = (await db.query('SELECT payload FROM outbox WHERE org_code = $1 AND record_id = $2', [org, p.id])).rows.map((r) => r.payload);
  expect(outbox.length).toBeGreaterThan(0);
  const copies = [
    row,
    { patient_name: row.rec_raw.patientName, contacts: row.rec_raw.contacts },
    ...[hist, ...outbox].map((d) => ({ patient_name: d.patientName, contacts: d.contacts })),
  ];
  for (const c of copies) {
    expect(keyIdOf(c.patient_name)).toBe(keys.currentKeyId);
    expect(keyIdOf(c.contacts)).toBe(keys.currentKeyId);
    expect([keys.open(c.patient_name), keys.open(c.contacts)]).toEqual([p.patientName, p.contacts]);
  }
  expect(row.patient_name_hmac).toBe(keys.hash('name', p.patientName));
  expect(row.contacts_hmac).toBe(keys.hash('name', p.contacts));
}

async function pushUntil<T>(fn: () => T | undefined): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('the simulator did not receive it');
    await front.push();
  }
}

describe('a record posted on the data port', () => {
  it('stores no clear ID number, name, phone or address anywhere, and reaches the platform as sent', { timeout: 90_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('pii'));
    expect(await post('emrPatientInfo', p)).toMatchObject({ result: true, status: 'created' });
    const got = await pushUntil(() => sim.records().find((r) => r.id === p.id));
    expect(got.payload).toMatchObject({
      idCard: p.idCard,
      tel: p.tel,
      contactsTel: p.contactsTel,
      permanentAddrDetail: p.permanentAddrDetail,
      currentAddrDetail: p.currentAddrDetail,
      patientName: p.patientName,
      contacts: p.contacts,
    });

    // The stored forms: sealed in the typed row, rec_raw, history and outbox; the HMACs beside.
    const row = (
      await db.query('SELECT id_card, tel, current_addr_detail, id_card_hmac, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, p.id])
    ).rows[0];
    for (const v of [row.id_card, row.tel, row.current_addr_detail, row.rec_raw.idCard]) expect(keyIdOf(v)).toBe(keys.currentKeyId);
    expect(keys.open(row.id_card)).toBe(p.idCard);
    expect(row.id_card_hmac).toBe(keys.hash('idno', p.idCard));
    const hist = (await db.query('SELECT raw FROM record_history WHERE org_code = $1 AND record_id = $2', [org, p.id])).rows[0];
    expect(openRecord('emrPatientInfo', hist.raw)).toMatchObject({ idCard: p.idCard, tel: p.tel });
    await expectNamesSealed(org, p);

    // Not one table holds a clear value (the needles do appear, sealed, so the scan can find them:
    // the record's own id is found where the record is).
    expect((await tablesHolding(p.id)).length).toBeGreaterThan(3);
    for (const clear of [p.idCard, p.tel, p.contactsTel, p.permanentAddrDetail, p.currentAddrDetail, p.patientName, p.contacts]) {
      expect(await tablesHolding(clear), clear.slice(0, 3)).toEqual([]);
    }
  });
});

describe('duplicate cards', () => {
  it('an earlier card of the same ID number is found by its HMAC', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('pii'));
    await post('emrPatientInfo', p);
    const card = {
      ...sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: p.id, seed: 3 }),
      ...Object.fromEntries(['patientName', 'idCardTypeCode', 'idCardTypeName', 'idCard', 'genderCode', 'genderName', 'birthDate'].map((k) => [k, p[k]])),
    } as unknown as Record<string, unknown> & { id: string; diseaseCode: string };
    expect(await post('emrInfReport', card)).toMatchObject({ result: true });
    const stored = (await db.query('SELECT id_card, id_card_hmac FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, card.id])).rows[0];
    expect(keyIdOf(stored.id_card)).not.toBeNull();
    expect(stored.id_card_hmac).toBe(keys.hash('idno', p.idCard));

    const who = personKey({ idCardTypeCode: '01', idCard: p.idCard.toLowerCase() });
    expect(who?.by).toBe('id');
    const prior = await priorCards(db, org, who!, String(card.diseaseCode), { windowDays: 90, now: new Date() });
    expect(prior.map((c) => [c.cardId, c.rule])).toEqual([[card.id, expect.stringMatching(/same-id|chronic-once/)]]);
    // Another ID number finds nothing.
    const other = personKey({ idCardTypeCode: '01', idCard: residentId('110105', { y: 1980, m: 1, d: 1 }, '2', 7) });
    expect(await priorCards(db, org, other!, String(card.diseaseCode), { windowDays: 90, now: new Date() })).toEqual([]);
  });
});

/** A report card of `p` without a resident ID number (the national form's "unknown"), for the rule by name. */
function cardWithoutId(org: string, p: Person): Record<string, unknown> & { id: string; diseaseCode: string } {
  const keys = [
    'patientName',
    'genderCode',
    'genderName',
    'birthDate',
    'nultitudeTypeCode',
    'nultitudeTypeName',
    'currentAddrCode',
    'currentAddrName',
    'currentAddrDetail',
  ];
  return {
    ...sample('emrInfReport', { orgCode: org, id: uniqueId('card'), patientId: p.id, seed: 3 }),
    ...Object.fromEntries(keys.filter((k) => p[k] !== undefined).map((k) => [k, p[k]])),
    idCardTypeCode: '01',
    idCardTypeName: '居民身份证',
    idCard: '00000000000000000X',
  } as unknown as Record<string, unknown> & { id: string; diseaseCode: string };
}

/** Turns a stored card back into its form of before migration 0990: the name clear in the column and rec_raw, no HMAC. */
async function asBefore0990(org: string, id: string, name: string): Promise<void> {
  const raw = (await db.query('SELECT rec_raw FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, id])).rows[0].rec_raw;
  await db.query('UPDATE emr_inf_report SET patient_name = $3, patient_name_hmac = NULL, rec_raw = $4::jsonb WHERE org_code = $1 AND id = $2', [
    org,
    id,
    name,
    JSON.stringify({ ...raw, patientName: name }),
  ]);
}

describe('duplicate cards without an ID number', () => {
  it('find an earlier card of the same person by the name’s HMAC, and one stored clear before migration 0990', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('pii'));
    await post('emrPatientInfo', p);
    const sealed = cardWithoutId(org, p);
    const legacy = cardWithoutId(org, p);
    for (const c of [sealed, legacy]) expect(await post('emrInfReport', c)).toMatchObject({ result: true });
    const row = (await db.query('SELECT patient_name, patient_name_hmac FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, sealed.id])).rows[0];
    expect(keyIdOf(row.patient_name)).toBe(keys.currentKeyId);
    expect(row.patient_name_hmac).toBe(keys.hash('name', p.patientName));
    await asBefore0990(org, legacy.id, p.patientName);

    // The person as a new record names them (the name as the HIS typed it: a space inside, full-width or not).
    const who = personKey({ ...p, idCardTypeCode: '01', idCard: '00000000000000000X', patientName: ` ${p.patientName.slice(0, 2)} ${p.patientName.slice(2)}` });
    expect(who?.by).toBe('person');
    const prior = await priorCards(db, org, who!, sealed.diseaseCode, { windowDays: 90, now: new Date() });
    expect(prior.map((c) => c.cardId).sort()).toEqual([sealed.id, legacy.id].sort());
    expect(new Set(prior.map((c) => c.rule))).toEqual(new Set([expect.stringMatching(/same-person|chronic-once/)]));
    // Another name of the same birth date, sex and address: nothing.
    const other = personKey({ ...p, idCardTypeCode: '01', idCard: '00000000000000000X', patientName: `${p.patientName}乙` });
    expect(await priorCards(db, org, other!, sealed.diseaseCode, { windowDays: 90, now: new Date() })).toEqual([]);
  });

  it('a card whose name is under a key id the key file lacks is no match, as for an address, and nothing throws', { timeout: 60_000 }, async () => {
    const org = uniqueOrg();
    const p = person(org, uniqueId('pii'));
    await post('emrPatientInfo', p);
    const lost = cardWithoutId(org, p);
    await post('emrInfReport', lost);
    const raw = (await db.query('SELECT rec_raw FROM emr_inf_report WHERE org_code = $1 AND id = $2', [org, lost.id])).rows[0].rec_raw;
    const foreign = keys.seal(p.patientName).replace(/^sm4:[a-z0-9]+:/, 'sm4:k7:');
    expect(() => openRecord('emrInfReport', { patientName: foreign }, keys)).toThrow(/key id k7/);
    await db.query('UPDATE emr_inf_report SET patient_name = $3, rec_raw = $4::jsonb WHERE org_code = $1 AND id = $2', [
      org,
      lost.id,
      foreign,
      JSON.stringify({ ...raw, patientName: foreign }),
    ]);
    try {
      const who = personKey({ ...p, idCardTypeCode: '01', idCard: '00000000000000000X' });
      expect(await priorCards(db, org, who!, lost.diseaseCode, { windowDays: 90, now: new Date() })).toEqual([]);
    } finally {
      // Put back as stored: the rotation below re-seals every value, and must open each.
      await db.query('UPDATE emr_inf_report SET patient_name = $3, rec_raw = $4::jsonb WHERE org_code = $1 AND id = $2', [
        org,
        lost.id,
        raw.patientName,
        JSON.stringify(raw),
      ]);
    }
  });
});

describe('key rotation', () => {
  it('makes a new key current, re-encrypts every old and clear value, and lets the old key go', { timeout: 120_000 }, async () => {
    const org = uniqueOrg();
    const before = person(org, uniqueId('pii'));
    await post('emrPatientInfo', before);
    // A row as stored before migration 0032: clear values, no HMAC.
    const legacy = person(org, uniqueId('pii'));
    await post('emrPatientInfo', legacy);
    const raw = (await db.query('SELECT rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, legacy.id])).rows[0].rec_raw;
    await db.query(
      `UPDATE emr_patient_info SET id_card = $3, tel = $4, id_card_hmac = NULL, tel_hmac = NULL, rec_raw = $5::jsonb WHERE org_code = $1 AND id = $2`,
      [org, legacy.id, legacy.idCard, legacy.tel, JSON.stringify({ ...raw, idCard: legacy.idCard, tel: legacy.tel })],
    );
    // Its name as stored before migration 0990: clear, no HMAC.
    await db.query(`UPDATE emr_patient_info SET patient_name = $3, patient_name_hmac = NULL, rec_raw = rec_raw || $4::jsonb WHERE org_code = $1 AND id = $2`, [
      org,
      legacy.id,
      legacy.patientName,
      JSON.stringify({ patientName: legacy.patientName }),
    ]);
    const old = keys.currentKeyId;
    // The runtime's development key has a random id (docs/keys.md "Development"): the next one is named.
    expect(old).toMatch(/^k[0-9a-f]{8}$/);
    const r = rotateKey(front.rt.secretsDir, 'k2');
    expect(r).toEqual({ previous: old, current: 'k2' });

    // The running patient function picks the new key up (it reads the key file again within seconds).
    const end = Date.now() + 30_000;
    let sealedUnder = '';
    while (sealedUnder !== 'k2') {
      if (Date.now() > end) throw new Error(`still sealing under ${sealedUnder}`);
      const p = person(org, uniqueId('pii'));
      await post('emrPatientInfo', p);
      sealedUnder = keyIdOf((await db.query('SELECT id_card FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, p.id])).rows[0].id_card) ?? '';
      if (sealedUnder !== 'k2') await new Promise((ok) => setTimeout(ok, 500));
    }

    const status = await keyStatus(db);
    expect(status.filter((s) => s.keyId === old).reduce((n, s) => n + s.values, 0)).toBeGreaterThan(0);
    expect(status.some((s) => s.keyId === 'clear' && s.place === 'emr_patient_info.id_card')).toBe(true);
    expect(status.some((s) => s.keyId === 'clear' && s.place === 'emr_patient_info.patient_name')).toBe(true);
    await expect(retireKey(db, front.rt.secretsDir, old)).rejects.toThrow(`still under key id ${old}: run cdc-keys reencrypt`);

    // The job stopped after its first batch (as a killed run would be), then run again: it resumes.
    const stale = (st: typeof status) => st.filter((x) => x.keyId !== 'k2').reduce((n, x) => n + x.values, 0);
    const stopped = new Error('stopped after one batch');
    await expect(
      reencrypt(db, keys, {
        batch: 1,
        progress: () => {
          throw stopped;
        },
      }),
    ).rejects.toBe(stopped);
    const mid = stale(await keyStatus(db));
    expect(mid).toBeGreaterThan(0);
    expect(mid).toBeLessThan(stale(status));
    const second = await reencrypt(db, keys, { batch: 2 });
    expect(second.values).toBeGreaterThan(0);
    const third = await reencrypt(db, keys);
    expect(third).toEqual({ rows: expect.any(Object), values: 0, hashes: 0, from: [] });
    const after = await keyStatus(db);
    expect(after.filter((s) => s.keyId !== 'k2')).toEqual([]);

    // Every value still opens to what was sent; the legacy row has its HMACs now.
    for (const p of [before, legacy]) {
      const row = (
        await db.query('SELECT id_card, tel, id_card_hmac, patient_name, patient_name_hmac, rec_raw FROM emr_patient_info WHERE org_code = $1 AND id = $2', [
          org,
          p.id,
        ])
      ).rows[0];
      expect(keyIdOf(row.id_card)).toBe('k2');
      expect(keys.open(row.id_card)).toBe(p.idCard);
      expect(keys.open(row.tel)).toBe(p.tel);
      expect(row.id_card_hmac).toBe(keys.hash('idno', p.idCard));
      expect(keyIdOf(row.patient_name)).toBe('k2');
      expect(keys.open(row.patient_name)).toBe(p.patientName);
      expect(row.patient_name_hmac).toBe(keys.hash('name', p.patientName));
      expect(openRecord('emrPatientInfo', row.rec_raw)).toMatchObject({ idCard: p.idCard, tel: p.tel, patientName: p.patientName });
    }

    await retireKey(db, front.rt.secretsDir, old);
    expect(readKeyFile(front.rt.secretsDir).keys.map((k) => k.id)).toEqual(['k2']);
    // Without the old key everything still opens and still leaves for the platform as sent.
    const fresh = piiFromDir(front.rt.secretsDir);
    const hist = (await db.query('SELECT raw FROM record_history WHERE org_code = $1 AND record_id = $2', [org, before.id])).rows[0];
    expect(openRecord('emrPatientInfo', hist.raw, fresh)).toMatchObject({ idCard: before.idCard });
    const late = person(org, uniqueId('pii'));
    await post('emrPatientInfo', late);
    const got = await pushUntil(() => sim.records().find((x) => x.id === late.id));
    expect(got.payload).toMatchObject({ idCard: late.idCard, tel: late.tel });
  });

  it('a value under a key id the key file does not hold is an error naming the key id, never garbage', { timeout: 60_000 }, async () => {
    const k2 = keys.seal('11010519491231002X');
    const foreign = k2.replace(/^sm4:k2:/, 'sm4:k7:');
    expect(() => keys.open(foreign)).toThrow(PiiKeyError);
    expect(() => keys.open(foreign)).toThrow(/key id k7, which is not in pii-field-keys/);
    expect(() => openRecord('emrPatientInfo', { idCard: foreign }, keys)).toThrow(/key id k7/);

    // In the outbox: push parks that row as dead, naming the key id, and the others still leave.
    const org = uniqueOrg();
    const lost = uniqueId('pii');
    await db.query(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload)
       VALUES ($1, 'emrPatientInfo', $2, $3, 1, 'upsert', 'realtime', $4::jsonb)`,
      [DEST, org, lost, JSON.stringify({ id: lost, orgCode: org, idCard: foreign })],
    );
    const good = person(org, uniqueId('pii'));
    await post('emrPatientInfo', good);
    await pushUntil(() => sim.records().find((x) => x.id === good.id));
    const row = (await db.query('SELECT state, last_error FROM outbox WHERE destination = $1 AND record_id = $2', [DEST, lost])).rows[0];
    expect(row.state).toBe('dead');
    expect(row.last_error).toMatch(/cannot open the record's personal data: .*key id k7/);
    expect(sim.records().some((x) => x.id === lost)).toBe(false);

    // A name is no different: its row parked, naming the key id; the others leave.
    const lostName = uniqueId('pii');
    await db.query(
      `INSERT INTO outbox (destination, resource, org_code, record_id, version, op, deadline_class, payload)
       VALUES ($1, 'emrPatientInfo', $2, $3, 1, 'upsert', 'realtime', $4::jsonb)`,
      [DEST, org, lostName, JSON.stringify({ id: lostName, orgCode: org, patientName: keys.seal('王五').replace(/^sm4:[a-z0-9]+:/, 'sm4:k7:') })],
    );
    const good2 = person(org, uniqueId('pii'));
    await post('emrPatientInfo', good2);
    await pushUntil(() => sim.records().find((x) => x.id === good2.id));
    const row2 = (await db.query('SELECT state, last_error FROM outbox WHERE destination = $1 AND record_id = $2', [DEST, lostName])).rows[0];
    expect(row2.state).toBe('dead');
    expect(row2.last_error).toMatch(/cannot open the record's personal data: .*key id k7/);
    expect(row2.last_error).not.toContain('王五');
    expect(sim.records().some((x) => x.id === lostName)).toBe(false);
  });
});

describe('bin/cdc-keys', () => {
  const cli = (dir: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'infra/keys/cli.ts', ...args, '--secrets', dir], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: url },
      encoding: 'utf8',
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('init, rotate, status, retire: keys made once (0600), never printed, a key in use never removed', { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-keys-'));
    try {
      const init = cli(dir, 'init');
      expect(init.code, init.err).toBe(0);
      expect(statSync(join(dir, 'pii-field-keys')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'pii-hash-key')).mode & 0o777).toBe(0o600);
      const k1 = readKeyFile(dir).keys[0]!.key;
      // Key ids are random (docs/keys.md): the first key's, then the rotated one's.
      const id1 = readKeyFile(dir).current;
      expect(id1).toMatch(/^k[0-9a-f]{8}$/);
      expect(cli(dir, 'init')).toMatchObject({ code: 1, err: expect.stringMatching(/exists already: keys are never replaced/) });
      const rotated = cli(dir, 'rotate');
      expect(rotated).toMatchObject({ code: 0, out: expect.stringMatching(/key k[0-9a-f]{8} is now current for writes/) });
      const id2 = readKeyFile(dir).current;
      expect(id2).not.toBe(id1);
      expect(rotated.out).toContain(`key ${id2} is now current for writes`);
      expect(readKeyFile(dir)).toMatchObject({ current: id2, keys: [{ id: id1, key: k1 }, { id: id2 }] });
      const status = cli(dir, 'status');
      expect(status.code, status.err).toBe(0);
      expect(status.out).toMatch(new RegExp(`${id1}\\s+unused: can be retired\\s+0`));
      expect(status.out).toMatch(new RegExp(`${id2}\\s+current`));
      expect(status.out).toMatch(/emr_patient_info\.id_card/);
      expect(status.out + status.err).not.toContain(k1);
      expect(status.out + status.err).not.toContain(readFileSync(join(dir, 'pii-hash-key'), 'utf8').trim());
      expect(cli(dir, 'retire', '--id', id2)).toMatchObject({ code: 1, err: expect.stringMatching(new RegExp(`${id2} is the current key: rotate first`)) });
      expect(cli(dir, 'retire', '--id', 'K 1')).toMatchObject({ code: 2, err: expect.stringMatching(/--id: a key id is a lowercase letter/) });
      expect(cli(dir, 'retire', '--id', id1)).toMatchObject({ code: 0 });
      expect(readKeyFile(dir).keys.map((k) => k.id)).toEqual([id2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
