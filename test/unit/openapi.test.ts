// The interface document HIS vendors read is valid OpenAPI 3.1, covers every resource, and says
// what the pipeline really accepts: each resource's example passes both its JSON Schema and the
// pipeline's validation.
import { describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openApiDocument } from '../../shared/openapi/index.js';
import { resources } from '../../schemas/index.js';
import { samplePatient } from '../../infra/simulators/his.js';
import { validateRecord } from '../../shared/ingest/validate.js';
import { normalizeKeys } from '../../shared/ingest/normalize.js';

const example = (name: string) => (name === 'emrPatientInfo' ? samplePatient({ orgCode: '123456789', id: 'P1' }) : undefined);
const doc = openApiDocument(Object.values(resources), { version: '0.0.0-test', example }) as Record<string, any>;

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const v = new Validator();
    const res = await v.validate(doc);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
  });

  it('has a path, a schema and the required keys of every resource', () => {
    for (const r of Object.values(resources)) {
      expect(doc.paths[`/hclient/emr/receive/${r.name}`]?.post, r.name).toBeDefined();
      const s = doc.components.schemas[r.name];
      expect(Object.keys(s.properties).sort()).toEqual(Object.keys(r.fields).sort());
      expect(s.required).toEqual(r.required);
    }
  });

  it('the patient example satisfies its JSON Schema and the pipeline alike; a too-long name fails both', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const check = ajv.compile(doc.components.schemas.emrPatientInfo);
    const ex = doc.paths['/hclient/emr/receive/emrPatientInfo'].post.requestBody.content['application/json'].examples.record.value;
    expect(check(ex), JSON.stringify(check.errors)).toBe(true);
    const r = resources.emrPatientInfo!;
    expect(validateRecord(r, normalizeKeys(r, ex).known, new Date()).ok).toBe(true);
    const bad = { ...ex, patientName: 'x'.repeat(101) };
    expect(check(bad)).toBe(false);
    expect(validateRecord(r, normalizeKeys(r, bad).known, new Date()).ok).toBe(false);
  });

  it('describes every time form the pipeline reads, a Jackson java.time array among them, and no other array', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const check = ajv.compile(doc.components.schemas.emrPatientInfo);
    const ex = doc.paths['/hclient/emr/receive/emrPatientInfo'].post.requestBody.content['application/json'].examples.record.value;
    const r = resources.emrPatientInfo!;
    for (const operationTime of ['2026-03-01 08:30:00', 1772325000000, 20260301083000, [2026, 3, 1, 8, 30]]) {
      expect(check({ ...ex, operationTime }), JSON.stringify(operationTime)).toBe(true);
      expect(validateRecord(r, normalizeKeys(r, { ...ex, operationTime }).known, new Date()).ok, JSON.stringify(operationTime)).toBe(true);
    }
    for (const operationTime of [
      [2026, 3],
      [2026, 3, 1, 8, 30, 0, 0, 0],
    ]) {
      expect(check({ ...ex, operationTime }), JSON.stringify(operationTime)).toBe(false);
      expect(validateRecord(r, normalizeKeys(r, { ...ex, operationTime }).known, new Date()).ok, JSON.stringify(operationTime)).toBe(false);
    }
  });
});

describe('examples', () => {
  it('every resource has an example that passes the pipeline’s validation (as served)', async () => {
    const { default: patient } = await import('../../functions/patient/handler.js');
    const served = (await (await patient.app.request('/openapi.json')).json()) as Record<string, any>;
    for (const r of Object.values(resources)) {
      const ex = served.paths[`/hclient/emr/receive/${r.name}`].post.requestBody.content['application/json'].examples?.record?.value;
      expect(ex, r.name).toBeDefined();
      const v = validateRecord(r, normalizeKeys(r, ex).known, new Date());
      expect(v.ok, `${r.name}: ${JSON.stringify(v.ok ? [] : v.issues)}`).toBe(true);
    }
  });

  it('lab, exam and order headers have a document example (items without orgCode and link) that passes its JSON Schema', async () => {
    const { default: patient } = await import('../../functions/patient/handler.js');
    const served = (await (await patient.app.request('/openapi.json')).json()) as Record<string, any>;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    for (const [header, link] of [
      ['emrExLab', 'exLabId'],
      ['emrExClinical', 'exClinicalId'],
      ['emrOrder', 'orderId'],
    ] as const) {
      const ex = served.paths[`/hclient/emr/receive/${header}`].post.requestBody.content['application/json'].examples.document?.value;
      expect(ex?.items?.length, header).toBe(1);
      expect(Object.keys(ex.items[0])).not.toContain(link);
      expect(Object.keys(ex.items[0])).not.toContain('orgCode');
      // The document schema with its references resolved inside one standalone JSON Schema.
      const standalone = JSON.parse(
        JSON.stringify({ $defs: served.components.schemas, $ref: `#/components/schemas/${header}Document` }).replaceAll('#/components/schemas/', '#/$defs/'),
      );
      const check = ajv.compile(standalone);
      expect(check(ex), `${header}: ${JSON.stringify(check.errors)}`).toBe(true);
      expect(check({ ...ex, items: [{ ...ex.items[0], id: undefined }] }), 'an item without id fails').toBe(false);
    }
  });
});

describe('served by every receive function', () => {
  it('/openapi.json and the Chinese reference page /openapi.html, without credentials', async () => {
    const { default: patient } = await import('../../functions/patient/handler.js');
    const json = await patient.app.request('/openapi.json');
    expect(json.status).toBe(200);
    expect((await json.json()).openapi).toBe('3.1.0');
    const page = await patient.app.request('/openapi.html');
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('数据接口');
    expect(text).toContain('emrPatientInfo');
    expect(text).not.toMatch(/<script/i);
  });
});
