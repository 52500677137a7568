// Report documents through port 8881 of a running front (docs/his-guide.md §1): a lab, exam or
// order header with its items in one POST, stored in one transaction — every item linked to the
// header and its org, none held waiting for it, the header's outbox rows before its items' — or,
// when any field of the header or an item is wrong, refused whole with each failing field named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

const db = testDb();
let front: StackRuntime;
let data: string;

beforeAll(async () => {
  front = await startStackRuntime('documents');
  data = front.rt.portUrls.data!;
}, 120_000);

afterAll(async () => {
  await front?.close();
});

type Envelope = {
  result: boolean;
  desc: string;
  id: string | null;
  errorCode: string | null;
  status?: string;
  held?: string[];
  items?: Envelope[];
  errors?: Array<{ field: string; rule: string }>;
};

async function post(path: string, body: unknown): Promise<{ status: number; a: Envelope }> {
  const res = await fetch(`${data}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, a: (await res.json()) as Envelope };
}

/** A patient stored, so that headers are not held waiting for it. */
async function patient(org: string): Promise<string> {
  const id = uniqueId('pat');
  const { status } = await post('/hclient/emr/receive/emrPatientInfo', sample('emrPatientInfo', { orgCode: org, id, seed: 3 }));
  expect(status).toBe(200);
  return id;
}

/** An item as adapters send it: no orgCode, and (for some) no link to the header either. */
function item(resource: string, id: string, link: string | null, seed: number): Record<string, unknown> {
  const rec = sample(resource, { orgCode: 'x', id, seed, parentId: link ?? 'x' });
  delete rec.orgCode;
  if (link === null) for (const k of ['exLabId', 'exClinicalId', 'orderId']) delete rec[k];
  return rec;
}

const KINDS = [
  { fn: 'lab', header: 'emrExLab', item: 'emrExLabItem', link: 'exLabId', table: 'emr_ex_lab', itemTable: 'emr_ex_lab_item' },
  { fn: 'exam', header: 'emrExClinical', item: 'emrExClinicalItem', link: 'exClinicalId', table: 'emr_ex_clinical', itemTable: 'emr_ex_clinical_item' },
  { fn: 'order', header: 'emrOrder', item: 'emrOrderItem', link: 'orderId', table: 'emr_order', itemTable: 'emr_order_item' },
] as const;

describe('a header with its items in one document', () => {
  it.each(KINDS)('POST /function/$fn stores the $header and its items together, items linked and in its org', async (k) => {
    const org = uniqueOrg();
    const patientId = await patient(org);
    const id = uniqueId(k.fn);
    const doc = {
      ...sample(k.header, { orgCode: org, id, patientId, seed: 4 }),
      items: [item(k.item, `${id}-1`, null, 1), item(k.item, `${id}-2`, id, 2), item(k.item, `${id}-3`, null, 3)],
    };
    const { status, a } = await post(`/function/${k.fn}`, doc);
    expect(status, JSON.stringify(a)).toBe(200);
    expect(a).toMatchObject({ result: true, id, status: 'created' });
    expect(a.held).toBeUndefined();
    expect(a.items!.map((x) => [x.id, x.result, x.status, x.held])).toEqual([1, 2, 3].map((n) => [`${id}-${n}`, true, 'created', undefined]));

    const items = await db.query(
      `SELECT id, org_code, ${k.link.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())} AS link FROM ${k.itemTable} WHERE org_code = $1 ORDER BY id`,
      [org],
    );
    expect(items.rows).toEqual([1, 2, 3].map((n) => ({ id: `${id}-${n}`, org_code: org, link: id })));
    // Parents first on the way out: the header's outbox rows come before every item's.
    const out = await db.query<{ resource: string; first: string; last: string }>(
      'SELECT resource, min(outbox_id) AS first, max(outbox_id) AS last FROM outbox WHERE org_code = $1 AND resource IN ($2, $3) GROUP BY resource',
      [org, k.header, k.item],
    );
    const by = Object.fromEntries(out.rows.map((r) => [r.resource, r]));
    expect(BigInt(by[k.header]!.last)).toBeLessThan(BigInt(by[k.item]!.first));
    const held = await db.query("SELECT count(*)::int AS n FROM record_receipt WHERE org_code = $1 AND state = 'held'", [org]);
    expect(held.rows[0].n).toBe(0);

    // The same document again changes nothing.
    const again = await post(`/function/${k.fn}`, doc);
    expect(again.a.status).toBe('unchanged');
    expect(again.a.items!.map((x) => x.status)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('the national URL of the header takes a document too', async () => {
    const org = uniqueOrg();
    const patientId = await patient(org);
    const id = uniqueId('ord');
    const { status, a } = await post('/hclient/emr/receive/emrOrder', {
      ...sample('emrOrder', { orgCode: org, id, patientId, seed: 5 }),
      items: [item('emrOrderItem', `${id}-a`, null, 1)],
    });
    expect(status, JSON.stringify(a)).toBe(200);
    expect(a.items!.map((x) => [x.id, x.status])).toEqual([[`${id}-a`, 'created']]);
  });

  it('one wrong item refuses the whole document, naming items[i].field; nothing is stored', async () => {
    const org = uniqueOrg();
    const patientId = await patient(org);
    const id = uniqueId('lab');
    const bad = item('emrExLabItem', `${id}-2`, null, 2);
    delete bad.itemName;
    const { status, a } = await post('/function/lab', {
      ...sample('emrExLab', { orgCode: org, id, patientId, seed: 4 }),
      items: [item('emrExLabItem', `${id}-1`, null, 1), bad, item('emrExLabItem', `${id}-3`, 'another-report', 3), 'not an item'],
    });
    expect(status).toBe(400);
    expect(a).toMatchObject({ result: false, errorCode: 'VALIDATION_FAILED', id });
    expect(a.errors!.map((e) => `${e.field}/${e.rule}`)).toEqual(['items[1].itemName/required', 'items[2].exLabId/documentParent', 'items[3]/type']);
    for (const t of ['emr_ex_lab', 'emr_ex_lab_item']) {
      const n = await db.query(`SELECT count(*)::int AS n FROM ${t} WHERE org_code = $1`, [org]);
      expect(n.rows[0].n, t).toBe(0);
    }
    const n = await db.query('SELECT count(*)::int AS n FROM outbox WHERE org_code = $1 AND resource LIKE $2', [org, 'emrExLab%']);
    expect(n.rows[0].n).toBe(0);
  });

  it('an item id twice in one report refuses it, naming the second (duplicateItem): the second would replace the first', async () => {
    const org = uniqueOrg();
    const patientId = await patient(org);
    const id = uniqueId('lab');
    const { status, a } = await post('/function/lab', {
      ...sample('emrExLab', { orgCode: org, id, patientId, seed: 4 }),
      items: [
        item('emrExLabItem', `${id}-1`, null, 1),
        item('emrExLabItem', `${id}-2`, null, 2),
        { ...item('emrExLabItem', `${id}-1`, null, 3), itemName: '另一个' },
      ],
    });
    expect(status, JSON.stringify(a)).toBe(400);
    expect(a.errors!.map((e) => `${e.field}/${e.rule}`)).toEqual(['items[2].id/duplicateItem']);
    expect(JSON.stringify(a.errors)).toContain('same id as items[0]');
    for (const t of ['emr_ex_lab', 'emr_ex_lab_item']) {
      const n = await db.query(`SELECT count(*)::int AS n FROM ${t} WHERE org_code = $1`, [org]);
      expect(n.rows[0].n, t).toBe(0);
    }
  });

  it('a wrong header refuses its items with it', async () => {
    const org = uniqueOrg();
    const id = uniqueId('lab');
    const head = sample('emrExLab', { orgCode: org, id, patientId: 'p', seed: 4 });
    delete head.patientId;
    const { status, a } = await post('/function/lab', { ...head, items: [item('emrExLabItem', `${id}-1`, null, 1)] });
    expect(status).toBe(400);
    expect(a.errors!.map((e) => `${e.field}/${e.rule}`)).toEqual(['patientId/required']);
    const n = await db.query('SELECT count(*)::int AS n FROM emr_ex_lab_item WHERE org_code = $1', [org]);
    expect(n.rows[0].n).toBe(0);
  });

  it('items that is not an array is named', async () => {
    const org = uniqueOrg();
    const { status, a } = await post('/function/exam', {
      ...sample('emrExClinical', { orgCode: org, id: uniqueId('ex'), patientId: 'p', seed: 4 }),
      items: { id: 'x' },
    });
    expect(status).toBe(400);
    expect(a.errors!.map((e) => `${e.field}/${e.rule}`)).toEqual(['items/type']);
  });
});
