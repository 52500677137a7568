// Children waiting for parents, record fates, reconciliation and test mode — through a receive
// function built for two test resources (a header and its items), on the real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';

process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
const TEST_ORG = uniqueOrg();
process.env.TEST_ORG_CODES = TEST_ORG;

const { defineResource } = await import('../../schemas/resource.js');
const { f, fields } = await import('../../schemas/fields.js');
const { tableDdl } = await import('../../schemas/ddl.js');
const { resources } = await import('../../schemas/index.js');
const { receiveFunction } = await import('../../shared/ingest/receiver.js');
const { listOrphans, sweepOrphans } = await import('../../shared/ingest/orphans.js');
const { formatLocal } = await import('../../shared/time/index.js');

const tag = randomBytes(3).toString('hex');
const header = defineResource({
  name: `tHeader${tag}`,
  table: `t_header_${tag}`,
  title: '测试报告',
  fn: 'test',
  deadline: 'realtime',
  businessTime: 'reportTime',
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    orgCode: f.str(50, '机构', { required: true }),
    reportTime: f.time('报告时间', { required: true }),
    patientName: f.str(50, '姓名', { personal: 'name' }),
  }),
});
const item = defineResource({
  name: `tItem${tag}`,
  table: `t_item_${tag}`,
  title: '测试项目',
  fn: 'test',
  deadline: 'realtime',
  businessTime: 'reportTime',
  fields: fields({
    id: f.str(80, 'ID', { required: true }),
    orgCode: f.str(50, '机构', { required: true }),
    headerId: f.str(80, '报告ID', { required: true }),
    reportTime: f.time('报告时间', { required: true }),
    value: f.str(50, '结果'),
  }),
  parents: [{ resource: `tHeader${tag}`, field: 'headerId' }],
});
(resources as Record<string, unknown>)[header.name] = header;
(resources as Record<string, unknown>)[item.name] = item;

const db = testDb({ max: 4 });
const fn = receiveFunction({ resources: [header as never, item as never] });
const now = () => formatLocal(new Date(Date.now() - 60_000));
const H = { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' };
const post = (res: string, body: unknown, headers: Record<string, string> = {}) =>
  fn.app.request(`/${res}`, { method: 'POST', headers: { ...H, ...headers }, body: JSON.stringify(body) });
const get = (path: string) => fn.app.request(path, { headers: H });

beforeAll(async () => {
  await db.query(tableDdl(header as never));
  await db.query(tableDdl(item as never));
  await fn.init?.();
});
afterAll(async () => {
  await fn.close?.();
  await db.query(`DROP TABLE t_item_${tag}`);
  await db.query(`DROP TABLE t_header_${tag}`);
});

// The national platform's rows by default: other test files enable destinations of their own meanwhile.
async function outbox(res: string, org: string, id: string, allDestinations = false) {
  return (
    await db.query(
      `SELECT outbox_id, destination, state, version FROM outbox WHERE resource = $1 AND org_code = $2 AND record_id = $3
          AND ($4 OR destination = 'national') ORDER BY outbox_id`,
      [res, org, id, allDestinations],
    )
  ).rows;
}

describe('a child before its parent', () => {
  it('is stored and held, listed as an orphan, and released behind the parent when it arrives', async () => {
    const org = uniqueOrg();
    const hid = uniqueId('h');
    const iid = uniqueId('i');
    const res = await post(item.name, { id: iid, orgCode: org, headerId: hid, reportTime: now(), value: '阳性' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ result: true, status: 'created', held: [`parent:${header.name}/${hid}`] });
    expect((await db.query(`SELECT count(*)::int AS n FROM t_item_${tag} WHERE org_code = $1 AND id = $2`, [org, iid])).rows[0].n).toBe(1);
    expect((await outbox(item.name, org, iid)).map((o) => o.state)).toEqual(['held']);
    expect((await (await get(`/${item.name}/${iid}?orgCode=${org}`)).json()).fate).toMatchObject({ fate: 'held', held: [`parent:${header.name}/${hid}`] });
    const orphans = await listOrphans(db, { orgCodes: [org] });
    expect(orphans).toEqual([expect.objectContaining({ resource: item.name, id: iid, parentResource: header.name, parentId: hid })]);

    // An update of the child while it waits is held too, and stays in order.
    await post(item.name, { id: iid, orgCode: org, headerId: hid, reportTime: now(), value: '阴性' });
    expect((await outbox(item.name, org, iid)).map((o) => [o.version, o.state])).toEqual([
      [1, 'held'],
      [2, 'held'],
    ]);

    expect((await post(header.name, { id: hid, orgCode: org, reportTime: now() })).status).toBe(200);
    const parentRow = (await outbox(header.name, org, hid))[0];
    const childRows = await outbox(item.name, org, iid);
    expect(childRows.map((o) => [o.version, o.state])).toEqual([
      [1, 'pending'],
      [2, 'pending'],
    ]);
    expect(Number(childRows[0].outbox_id)).toBeGreaterThan(Number(parentRow.outbox_id));
    expect((await (await get(`/${item.name}/${iid}?orgCode=${org}`)).json()).fate).toMatchObject({ fate: 'stored', held: [] });
    expect(await listOrphans(db, { orgCodes: [org] })).toEqual([]);
  });

  it('is not held when its parent is already stored', async () => {
    const org = uniqueOrg();
    const hid = uniqueId('h');
    await post(header.name, { id: hid, orgCode: org, reportTime: now() });
    const body = await (await post(item.name, { id: uniqueId('i'), orgCode: org, headerId: hid, reportTime: now() })).json();
    expect(body.held).toBeUndefined();
  });

  it('the sweep links a child whose parent committed concurrently, and releases expired waits with a flag', async () => {
    const org = uniqueOrg();
    const hid = uniqueId('h');
    const late = uniqueId('i');
    const lost = uniqueId('i');
    await post(item.name, { id: late, orgCode: org, headerId: hid, reportTime: now() });
    await post(item.name, { id: lost, orgCode: org, headerId: uniqueId('never'), reportTime: now() });
    // The parent row appears without passing through the pipeline's release (as in a race).
    await db.query(
      `INSERT INTO t_header_${tag} (id, org_code, rec_version, rec_hash, rec_raw, rec_received_at, rec_updated_at) VALUES ($1, $2, 1, $3, '{}', now(), now())`,
      [hid, org, 'x'.repeat(64)],
    );
    await db.query(`UPDATE record_parent_wait SET since = now() - interval '49 hours' WHERE org_code = $1 AND record_id = $2`, [org, lost]);
    const swept = await sweepOrphans(db, 48);
    expect(swept.linked).toBeGreaterThanOrEqual(1);
    expect(swept.expired).toBeGreaterThanOrEqual(1);
    expect((await outbox(item.name, org, late)).map((o) => o.state)).toEqual(['pending']);
    expect((await outbox(item.name, org, lost)).map((o) => o.state)).toEqual(['pending']);
    const fate = (await (await get(`/${item.name}/${lost}?orgCode=${org}`)).json()).fate;
    expect(fate).toMatchObject({ fate: 'stored', flags: ['parentMissing'] });
  });
  it('keeps the children of a parent that came and is held waiting past the expiry, and sends them behind it once it is released', async () => {
    const org = uniqueOrg();
    const hid = uniqueId('h');
    const child = uniqueId('i');
    await post(item.name, { id: child, orgCode: org, headerId: hid, reportTime: now() });
    // The parent stored and held for a data-set rule after its codes were mapped (no outbox rows).
    await db.query(
      `INSERT INTO t_header_${tag} (id, org_code, rec_version, rec_hash, rec_raw, rec_received_at, rec_updated_at) VALUES ($1, $2, 1, $3, '{}', now(), now())`,
      [hid, org, 'y'.repeat(64)],
    );
    await db.query(
      `INSERT INTO record_receipt (resource, org_code, record_id, version, state, received_at, updated_at) VALUES ($1, $2, $3, 1, 'held', now(), now())`,
      [header.name, org, hid],
    );
    await db.query(
      `INSERT INTO record_hold (resource, org_code, record_id, kind, target, value, since) VALUES ($1, $2, $3, 'rule', 'genderCode', 'idConsistency', now())`,
      [header.name, org, hid],
    );
    await db.query(`UPDATE record_parent_wait SET since = now() - interval '49 hours' WHERE org_code = $1 AND record_id = $2`, [org, child]);
    await sweepOrphans(db, 48);
    expect((await outbox(item.name, org, child)).map((o) => o.state)).toEqual(['held']);
    expect((await listOrphans(db, { orgCodes: [org] })).map((o) => o.id)).toEqual([child]);
    expect((await (await get(`/${item.name}/${child}?orgCode=${org}`)).json()).fate.flags ?? []).not.toContain('parentMissing');
    // The parent released (its correction came): the child goes out behind it, with no flag.
    await db.query('DELETE FROM record_hold WHERE resource = $1 AND org_code = $2 AND record_id = $3', [header.name, org, hid]);
    await db.query(`UPDATE record_receipt SET state = 'stored' WHERE resource = $1 AND org_code = $2 AND record_id = $3`, [header.name, org, hid]);
    const swept = await sweepOrphans(db, 48);
    expect(swept.linked).toBeGreaterThanOrEqual(1);
    expect((await outbox(item.name, org, child)).map((o) => o.state)).toEqual(['pending']);
    expect(await listOrphans(db, { orgCodes: [org] })).toEqual([]);
    expect((await (await get(`/${item.name}/${child}?orgCode=${org}`)).json()).fate.flags ?? []).not.toContain('parentMissing');
  });
});

describe('record fates', () => {
  it('unknown → 404; rejected → the fields and rules; stored → forwarded once every platform has it', async () => {
    const org = uniqueOrg();
    const id = uniqueId('h');
    expect((await get(`/${header.name}/${id}?orgCode=${org}`)).status).toBe(404);
    expect((await post(header.name, { id, orgCode: org, reportTime: 'soon', patientName: '张三' })).status).toBe(400);
    const rejected = (await (await get(`/${header.name}/${id}?orgCode=${org}`)).json()).fate;
    expect(rejected.fate).toBe('rejected');
    expect(JSON.stringify(rejected.rejections)).toContain('reportTime');
    expect(JSON.stringify(rejected.rejections)).not.toContain('张三');
    await post(header.name, { id, orgCode: org, reportTime: now() });
    expect((await (await get(`/${header.name}/${id}?orgCode=${org}`)).json()).fate.fate).toBe('stored');
    await db.query(`UPDATE outbox SET state = 'sent', sent_at = now() WHERE resource = $1 AND org_code = $2 AND record_id = $3`, [header.name, org, id]);
    const f = (await (await get(`/${header.name}/${id}?orgCode=${org}`)).json()).fate;
    expect(f.fate).toBe('forwarded');
    // One delivery per destination enabled when the record was stored: the national one, and any
    // destination another test file enables meanwhile on the shared database — all of them sent.
    expect(f.deliveries).toContainEqual(expect.objectContaining({ destination: 'national', state: 'sent', version: 1 }));
    expect(f.deliveries.filter((d: { state: string }) => d.state !== 'sent')).toEqual([]);
    const destinations = f.deliveries.map((d: { destination: string }) => d.destination);
    expect(new Set(destinations).size).toBe(destinations.length);
  });

  it('the fate query needs the org code', async () => {
    const res = await get(`/${header.name}/x`);
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0]).toMatchObject({ field: 'orgCode', rule: 'required' });
  });
});

describe('reconciliation', () => {
  it('answers which listed ids are held, in which state, which are missing, and what the HIS did not list', async () => {
    const org = uniqueOrg();
    const day = now().slice(0, 10);
    const stored = uniqueId('h');
    const forwarded = uniqueId('h');
    const notListed = uniqueId('h');
    const rejected = uniqueId('h');
    const never = uniqueId('h');
    const heldChild = uniqueId('i');
    for (const id of [stored, forwarded, notListed]) await post(header.name, { id, orgCode: org, reportTime: now() });
    await post(header.name, { id: rejected, orgCode: org, reportTime: 'x' });
    await post(item.name, { id: heldChild, orgCode: org, headerId: uniqueId('nope'), reportTime: now() });
    await db.query(`UPDATE outbox SET state = 'sent' WHERE org_code = $1 AND record_id = $2`, [org, forwarded]);
    const res = await post(`${header.name}/_reconcile`, { orgCode: org, date: day, ids: [stored, forwarded, rejected, never] });
    expect(res.status).toBe(200);
    const r = (await res.json()).reconciliation;
    expect(Object.fromEntries(r.records.map((x: { id: string; fate: string }) => [x.id, x.fate]))).toEqual({
      [stored]: 'stored',
      [forwarded]: 'forwarded',
      [rejected]: 'rejected',
      [never]: 'unknown',
    });
    expect(r.missing.sort()).toEqual([rejected, never].sort());
    expect(r.extra).toEqual([notListed]);
    expect(r.counts).toMatchObject({ listed: 4, stored: 1, forwarded: 1, rejected: 1, unknown: 1, extra: 1 });
    const items = (await (await post(`${item.name}/_reconcile`, { orgCode: org, date: day, ids: [heldChild] })).json()).reconciliation;
    expect(items.records).toEqual([expect.objectContaining({ id: heldChild, fate: 'held' })]);
  });

  it('refuses a malformed request naming the field', async () => {
    const res = await post(`${header.name}/_reconcile`, { orgCode: uniqueOrg(), date: '2026/11/01', ids: [] });
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0]).toMatchObject({ field: 'date' });
  });
});

describe('destinations', () => {
  it('a destination that takes a subset of resources gets outbox rows for those only', async () => {
    const prov = `prov_${tag}`;
    await db.query(`INSERT INTO uplink_destination (name, kind, enabled, resources) VALUES ($1, 'provincial', true, $2)`, [prov, `tOther${tag} ${item.name}`]);
    try {
      const org = uniqueOrg();
      const hid = uniqueId('h');
      const iid = uniqueId('i');
      await post(header.name, { id: hid, orgCode: org, reportTime: now() });
      await post(item.name, { id: iid, orgCode: org, headerId: hid, reportTime: now() });
      expect((await outbox(header.name, org, hid, true)).map((o) => o.destination)).not.toContain(prov);
      expect((await outbox(item.name, org, iid, true)).map((o) => o.destination)).toContain(prov);
    } finally {
      await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [prov]);
    }
  });
});

describe('test mode', () => {
  it('a record sent with X-Test-Mode is stored but never queued for a live platform', async () => {
    const org = uniqueOrg();
    const id = uniqueId('h');
    const body = await (await post(header.name, { id, orgCode: org, reportTime: now() }, { 'x-test-mode': '1' })).json();
    expect(body).toMatchObject({ result: true, test: true });
    expect(await outbox(header.name, org, id, true)).toEqual([]);
    expect((await db.query(`SELECT rec_test FROM t_header_${tag} WHERE org_code = $1 AND id = $2`, [org, id])).rows[0].rec_test).toBe(true);
  });

  it('a test org code (TEST_ORG_CODES) makes test records; a destination that accepts tests gets them', async () => {
    const acceptance = `acc_${tag}`;
    await db.query(`INSERT INTO uplink_destination (name, kind, enabled, accepts_test) VALUES ($1, 'simulator', true, true)`, [acceptance]);
    try {
      const id = uniqueId('h');
      const body = await (await post(header.name, { id, orgCode: TEST_ORG, reportTime: now() })).json();
      expect(body.test).toBe(true);
      expect((await outbox(header.name, TEST_ORG, id, true)).map((o) => o.destination)).toEqual([acceptance]);
    } finally {
      await db.query(`UPDATE uplink_destination SET enabled = false WHERE name = $1`, [acceptance]);
    }
  });
});
