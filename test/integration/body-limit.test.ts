// A receive function's own body limit (MAX_BODY_BYTES), served on a real socket by the node server as
// the template serves it (no gateway in front to refuse first, as under OpenFaaS's of-watchdog): a
// declared length over the limit is 413 before the body is read, a chunked body is cut off at the
// limit, and bodies under it are read straight from the socket and stored (shared/ingest/receiver.ts).
import { serve } from '@hono/node-server';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { databaseUrl, testDb, uniqueId, uniqueOrg } from '../setup/db.js';

const LIMIT = 4096;
process.env.DATABASE_URL = databaseUrl();
process.env.HIS_ALLOW = '127.0.0.1/8';
process.env.MAX_BODY_BYTES = String(LIMIT);
const { default: patient } = await import('../../functions/patient/handler.js');
const db = testDb();
let server: ReturnType<typeof serve>;
let port = 0;

beforeAll(async () => {
  await patient.init?.();
  server = serve({ port: 0, hostname: '127.0.0.1', fetch: patient.app.fetch });
  await new Promise<void>((r) => server.once('listening', () => r()));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await patient.close?.();
});

/** POSTs `pieces` to /emrPatientInfo: with a Content-Length, or chunked (one chunk per piece). */
function post(pieces: string[], chunked: boolean): Promise<{ status: number; body: { result: boolean; errorCode: string | null } }> {
  const total = Buffer.byteLength(pieces.join(''));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        port,
        path: '/emrPatientInfo',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': total }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    // The answer may come before the whole body is written (413): the rest of the write may then fail.
    req.on('error', reject);
    for (const p of pieces) req.write(p);
    req.end();
  });
}

const stored = async (org: string, id: string) =>
  Number((await db.query('SELECT count(*) AS n FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0].n);

/** A patient record, padded with a long remark-like field the data set ignores to reach `size` bytes. */
function record(size?: number): { org: string; id: string; text: string } {
  const org = uniqueOrg();
  const id = uniqueId('p');
  const rec = sample('emrPatientInfo', { orgCode: org, id, seed: 3 });
  let text = JSON.stringify(rec);
  if (size !== undefined) text = JSON.stringify({ ...rec, padding: 'x'.repeat(Math.max(0, size - text.length - 14)) });
  return { org, id, text };
}

describe('the body limit of a receive function on its own socket', () => {
  it('stores a record under the limit, sent with a Content-Length or chunked', async () => {
    const a = record();
    expect(await post([a.text], false)).toMatchObject({ status: 200, body: { result: true } });
    expect(await stored(a.org, a.id)).toBe(1);
    const b = record();
    const half = Math.floor(b.text.length / 2);
    expect(await post([b.text.slice(0, half), b.text.slice(half)], true)).toMatchObject({ status: 200, body: { result: true } });
    expect(await stored(b.org, b.id)).toBe(1);
  });

  it('refuses a declared length over the limit with 413, storing nothing', async () => {
    const a = record(LIMIT + 100);
    expect(Buffer.byteLength(a.text)).toBeGreaterThan(LIMIT);
    expect(await post([a.text], false)).toMatchObject({ status: 413, body: { result: false, errorCode: 'PAYLOAD_TOO_LARGE' } });
    expect(await stored(a.org, a.id)).toBe(0);
  });

  it('cuts a chunked body off at the limit with 413, storing nothing', async () => {
    const a = record(LIMIT + 100);
    const pieces = a.text.match(/[\s\S]{1,1000}/g)!;
    expect(await post(pieces, true)).toMatchObject({ status: 413, body: { result: false, errorCode: 'PAYLOAD_TOO_LARGE' } });
    expect(await stored(a.org, a.id)).toBe(0);
  });

  it('still answers on the same server after refusing', async () => {
    const a = record();
    expect(await post([a.text], false)).toMatchObject({ status: 200 });
  });
});
