// Migration 0009 (docs/faults.md, "Hold storage"): the space-joined hold_reasons of a database at
// 0008 — including ones an id with spaces had poisoned — become record_hold rows, and the column goes.
// A database of its own on the test server, migrated to 0008 first, then to the end.
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { databaseUrl, testDb } from '../setup/db.js';
import { migrate } from '../../infra/db/migrate.js';

const admin = testDb({ max: 1 });
const name = `holdmig_${randomBytes(4).toString('hex')}`;
let url: string;
let db: pg.Pool;
const dir = mkdtempSync(join(tmpdir(), 'cdc-holdmig-'));

beforeAll(async () => {
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(databaseUrl());
  u.pathname = `/${name}`;
  url = u.toString();
  db = new pg.Pool({ connectionString: url, max: 2 });
  // The migrations as they were before 0009.
  const src = resolve('infra/db');
  for (const f of readdirSync(src).filter((f) => /^000[1-8]_.*\.sql$/.test(f))) cpSync(join(src, f), join(dir, f));
  await migrate(url, dir);
});

afterAll(async () => {
  await db?.end();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  rmSync(dir, { recursive: true, force: true });
});

it('turns hold_reasons into record_hold rows, keeps only real mapping holds, and drops the column', async () => {
  const receipt = (resource: string, id: string, holds: string | null) =>
    db.query(
      `INSERT INTO record_receipt (resource, org_code, record_id, version, state, retired, hold_reasons, received_at, updated_at)
       VALUES ($1, '123456789', $2, 1, $3, false, $4, now(), now())`,
      [resource, id, holds ? 'held' : 'stored', holds],
    );
  const wait = (resource: string, id: string, parentResource: string, parentId: string) =>
    db.query(`INSERT INTO record_parent_wait (resource, org_code, record_id, parent_resource, parent_id, since) VALUES ($1, '123456789', $2, $3, $4, now())`, [
      resource,
      id,
      parentResource,
      parentId,
    ]);
  // A child of a parent whose id held " mapping:x/% " (the old format split it into three tokens).
  await receipt('emrExLabItem', 'i1', 'parent:emrExLab/a mapping:x/% b');
  await wait('emrExLabItem', 'i1', 'emrExLab', 'a mapping:x/% b');
  // A child of a parent whose id held a decodable "mapping:sex/M" piece.
  await receipt('emrExLabItem', 'i2', 'parent:emrExLab/p mapping:sex/M q');
  await wait('emrExLabItem', 'i2', 'emrExLab', 'p mapping:sex/M q');
  // Real mapping holds, one URI-encoded, one with a parent hold besides.
  await receipt('emrPatientInfo', 'p1', 'mapping:sex/%25 mapping:ethnicity/%E6%B1%89');
  await receipt('emrExLab', 'l1', 'parent:emrPatientInfo/P9 mapping:activityType/9');
  await wait('emrExLab', 'l1', 'emrPatientInfo', 'P9');
  await receipt('emrPatientInfo', 'p2', null);

  const applied = await migrate(url);
  expect(applied).toContain('0009_record_hold.sql');
  const rows = await db.query<{ record_id: string; kind: string; target: string; value: string }>(
    'SELECT record_id, kind, target, value FROM record_hold ORDER BY record_id, kind, target, value',
  );
  expect(rows.rows).toEqual([
    { record_id: 'i1', kind: 'parent', target: 'emrExLab', value: 'a mapping:x/% b' },
    { record_id: 'i2', kind: 'parent', target: 'emrExLab', value: 'p mapping:sex/M q' },
    { record_id: 'l1', kind: 'mapping', target: 'activityType', value: '9' },
    { record_id: 'l1', kind: 'parent', target: 'emrPatientInfo', value: 'P9' },
    { record_id: 'p1', kind: 'mapping', target: 'ethnicity', value: '汉' },
    { record_id: 'p1', kind: 'mapping', target: 'sex', value: '%' },
  ]);
  const col = await db.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'record_receipt' AND column_name = 'hold_reasons'`);
  expect(col.rowCount).toBe(0);
  // Run again: nothing left to apply.
  expect(await migrate(url)).toEqual([]);
});
