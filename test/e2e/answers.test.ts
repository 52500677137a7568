// The answers a HIS gets through port 8881 of a running front (docs/his-guide.md "Answers"): one
// envelope {result, desc, id, errorCode, errorName} for the functions' answers and the runtime's own,
// a batch with nothing accepted is 400, a trace of an unknown record 404, and function URLs
// without a resource take the function's primary resource.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeHandle } from '../../infra/runtime/index.js';
import { sample } from '../../infra/simulators/samples.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

const db = testDb();
let front: StackRuntime;
let rt: RuntimeHandle;
let data: string;

beforeAll(async () => {
  front = await startStackRuntime('answers');
  rt = front.rt;
  data = rt.portUrls.data!;
}, 120_000);

afterAll(async () => {
  await front?.close();
});

type Envelope = { result: boolean; desc: string; id: string | null; errorCode: string | null; errorName: string | null; [k: string]: unknown };

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; a: Envelope; headers: Headers }> {
  const res = await fetch(`${data}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, a: (await res.json()) as Envelope, headers: res.headers };
}

/** The envelope every adapter reads, with a Chinese description. */
function expectEnvelope(a: Envelope, result: boolean): void {
  expect(Object.keys(a)).toEqual(expect.arrayContaining(['result', 'desc', 'id', 'errorCode', 'errorName']));
  expect(a.result).toBe(result);
  expect(a.desc).toMatch(/[\u4e00-\u9fff]/);
  if (!result) expect(a.errorName).toMatch(/[\u4e00-\u9fff]/);
}

describe('batches', () => {
  it('a batch in which no record is accepted is 400, one result per record', async () => {
    const org = uniqueOrg();
    const bad = [
      { orgCode: org, patientName: '无主键' },
      { orgCode: org, id: uniqueId('p'), birthDate: 'not a date' },
    ];
    const { status, a } = await call('POST', '/hclient/emr/receive/emrPatientInfo', bad);
    expect(status).toBe(400);
    expectEnvelope(a, false);
    expect(a.errorCode).toBe('VALIDATION_FAILED');
    expect((a.results as Envelope[]).map((r) => r.result)).toEqual([false, false]);
  });

  it('a mixed batch stays 200, naming the refused record', async () => {
    const org = uniqueOrg();
    const good = sample('emrPatientInfo', { orgCode: org, id: uniqueId('p'), seed: 3 });
    const { status, a } = await call('POST', '/hclient/emr/receive/emrPatientInfo', [good, { orgCode: org, patientName: '无主键' }]);
    expect(status).toBe(200);
    expectEnvelope(a, false);
    expect((a.results as Envelope[]).map((r) => r.result)).toEqual([true, false]);
  });
});

describe('traces', () => {
  it('an unknown record is 404 with result:false', async () => {
    const { status, a } = await call('GET', `/hclient/emr/receive/emrPatientInfo/${uniqueId('none')}?orgCode=${uniqueOrg()}`);
    expect(status).toBe(404);
    expectEnvelope(a, false);
    expect(a.errorCode).toBe('NOT_FOUND');
  });
});

describe('function URLs', () => {
  it('POST /function/patient with no resource takes emrPatientInfo', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const { status, a } = await call('POST', '/function/patient', sample('emrPatientInfo', { orgCode: org, id, seed: 5 }));
    expect(status, a.desc).toBe(200);
    expectEnvelope(a, true);
    expect(a.id).toBe(id);
    const trace = await call('GET', `/function/patient/emrPatientInfo/${id}?orgCode=${org}`);
    expect(trace.status).toBe(200);
    expect(trace.a.result).toBe(true);
  });

  it.each(['diagnosis', 'card', 'death'])('POST /function/%s with no resource takes its one resource (a refusal names the fields)', async (fn) => {
    const { status, a } = await call('POST', `/function/${fn}`, { orgCode: uniqueOrg() });
    expect(status).toBe(400);
    expectEnvelope(a, false);
    expect(a.errorCode).toBe('VALIDATION_FAILED');
    expect((a.errors as Array<{ field: string }>).map((e) => e.field)).toContain('id');
  });
});

describe("the runtime's own answers on the data port", () => {
  it('an unknown resource is 404 in the envelope', async () => {
    const { status, a } = await call('POST', '/hclient/emr/receive/emrNoSuchThing', {});
    expect(status).toBe(404);
    expectEnvelope(a, false);
    expect(a.errorCode).toBe('NOT_FOUND');
  });

  it('an unknown function is 404 in the envelope', async () => {
    const { status, a } = await call('POST', '/function/nosuchfn/x', {});
    expect(status).toBe(404);
    expectEnvelope(a, false);
  });

  it('a malformed path is 400 in the envelope', async () => {
    const { status, a } = await call('POST', '/hclient/emr/receive/emr%zz', {});
    expect(status).toBe(400);
    expectEnvelope(a, false);
    expect(a.errorCode).toBe('BAD_REQUEST');
  });

  it('an escape that is no UTF-8 text is 400 wherever it is in the path — a record id, a resource by the function’s own path — never a name of its literal text', async () => {
    for (const [method, path] of [
      ['POST', '/hclient/emr/receive/%C0%AF'],
      ['GET', '/hclient/emr/receive/emrPatientInfo/%C0%AF?orgCode=123456789'],
      ['GET', '/hclient/emr/receive/emrPatientInfo/ab%FF?orgCode=123456789'],
      ['POST', '/function/patient/%C0%AF'],
    ] as const) {
      const { status, a } = await call(method, path, method === 'POST' ? {} : undefined);
      expect(status, `${method} ${path}`).toBe(400);
      expectEnvelope(a, false);
      expect(a.errorCode).toBe('BAD_REQUEST');
    }
    // A record id with valid escapes is read as its text.
    expect((await call('GET', '/hclient/emr/receive/emrPatientInfo/%E4%B8%AD?orgCode=123456789')).status).toBe(404);
  });
});

describe('the interface documents', () => {
  it("their examples, posted in the documents' order through the data port, are all stored, none held", { timeout: 60_000 }, async () => {
    const doc = (await (await fetch(`${data}/openapi.json`)).json()) as {
      paths: Record<string, { post?: { requestBody: { content: Record<string, { examples?: { record?: { value: unknown } } }> } } }>;
    };
    const posts = Object.entries(doc.paths).filter(([path, p]) => /^\/hclient\/emr\/receive\/[^/]+$/.test(path) && p.post);
    const missing: string[] = [];
    const notStored: string[] = [];
    for (const [path, p] of posts) {
      const example = p.post!.requestBody.content['application/json']?.examples?.record?.value;
      if (example === undefined) {
        missing.push(path);
        continue;
      }
      const { status, a } = await call('POST', path, example);
      if (status !== 200 || !a.result || a.held) notStored.push(`${path}: ${status} ${a.desc}`);
    }
    expect(posts.length).toBeGreaterThan(10);
    expect(missing, 'every resource has an example').toEqual([]);
    expect(notStored).toEqual([]);
  });

  it('a date-only time is stored and forwarded as the date it was sent (docs/data-set.md "Times")', async () => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const { status } = await call('POST', '/hclient/emr/receive/emrPatientInfo', {
      ...sample('emrPatientInfo', { orgCode: org, id, seed: 9 }),
      idCardTypeCode: '99',
      idCard: 'X',
      birthDate: '1949-12-31',
    });
    expect(status).toBe(200);
    const out = await db.query<{ payload: { birthDate: string } }>('SELECT payload FROM outbox WHERE org_code = $1 AND record_id = $2', [org, id]);
    expect(out.rows.length).toBeGreaterThan(0);
    for (const r of out.rows) expect(r.payload.birthDate).toBe('1949-12-31');
    const hist = await db.query<{ raw: { birthDate: string } }>('SELECT raw FROM record_history WHERE org_code = $1 AND record_id = $2', [org, id]);
    expect(hist.rows[0]!.raw.birthDate).toBe('1949-12-31');
  });
});
