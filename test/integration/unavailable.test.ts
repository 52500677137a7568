// With its database unreachable, a receive function answers 503 (retry later), never 500 or 2xx.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../infra/runtime/replica.js';
import { samplePatient } from '../../infra/simulators/his.js';

const port = await freePort(); // nothing listens there
process.env.DATABASE_URL = `postgresql://nobody:secret@127.0.0.1:${port}/cdcfront`;
process.env.HIS_ALLOW = '127.0.0.1/8';
const { default: patient } = await import('../../functions/patient/handler.js');

beforeAll(async () => patient.init?.());
afterAll(async () => patient.close?.());

it('answers 503 with the adapters’ envelope when the database is down', async () => {
  const res = await patient.app.request('/emrPatientInfo', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.0.0.1' },
    body: JSON.stringify(samplePatient({ orgCode: '123456789', id: 'p-503' })),
  });
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  expect(await res.json()).toMatchObject({ result: false, errorCode: 'UNAVAILABLE', fault: 'unavailable', id: null });
});
