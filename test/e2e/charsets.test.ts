// Bodies in the charsets HIS middleware sends, through port 8881 of a running front (docs/his-guide.md
// §2): GBK and GB18030 declared in Content-Type are decoded as declared and stored as the same text
// UTF-8 gives; an unknown charset is 415; UTF-8 read as GBK somewhere upstream ("寮犱笁" for 张三) is
// flagged garbledText even in a two-character name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../../infra/simulators/samples.js';
import { testDb, uniqueId, uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';
import { keyIdOf, piiFromDir } from '../../shared/pii/index.js';

const db = testDb();
let front: StackRuntime;

beforeAll(async () => {
  front = await startStackRuntime('charsets');
}, 120_000);

afterAll(async () => {
  await front?.close();
});

/** The bytes of a string in GB18030 (GBK for these characters), built from the platform's decoder. */
function gbk(s: string): Buffer {
  const d = new TextDecoder('gb18030');
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      out.push(cp);
      continue;
    }
    let found: number[] | undefined;
    for (let hi = 0x81; hi <= 0xfe && !found; hi++)
      for (let lo = 0x40; lo <= 0xfe && !found; lo++) if (d.decode(Uint8Array.of(hi, lo)) === ch) found = [hi, lo];
    if (!found) throw new Error(`no GBK bytes for ${ch}`);
    out.push(...found);
  }
  return Buffer.from(out);
}

async function post(body: Buffer | string, type: string) {
  const res = await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return {
    status: res.status,
    a: (await res.json()) as { result: boolean; errorCode: string | null; desc: string; warnings?: Array<{ field: string; rule: string }> },
  };
}

describe('charsets', () => {
  it.each(['GBK', 'gb18030', 'GB2312'])('a body declared charset=%s is decoded as declared', async (cs) => {
    const org = uniqueOrg();
    const id = uniqueId('p');
    const rec = { ...sample('emrPatientInfo', { orgCode: org, id, seed: 1 }), patientName: '欧阳娜娜', currentAddrDetail: '广州市越秀区中山二路1号' };
    const { status, a } = await post(gbk(JSON.stringify(rec)), `application/json; charset=${cs}`);
    expect(status, JSON.stringify(a)).toBe(200);
    expect(a.warnings ?? []).toEqual([]);
    const row = (await db.query('SELECT patient_name, current_addr_detail FROM emr_patient_info WHERE org_code = $1 AND id = $2', [org, id])).rows[0];
    // The name and address are stored sealed under this front's key (docs/keys.md): the same text once opened.
    expect(keyIdOf(row.current_addr_detail)).not.toBeNull();
    expect(keyIdOf(row.patient_name)).not.toBeNull();
    const keys = piiFromDir(front.secretsDir);
    expect({ patient_name: keys.open(row.patient_name), current_addr_detail: keys.open(row.current_addr_detail) }).toEqual({
      patient_name: '欧阳娜娜',
      current_addr_detail: '广州市越秀区中山二路1号',
    });
  });

  it('an unknown charset is 415 naming it; a UTF-8 BOM is fine', async () => {
    const rec = sample('emrPatientInfo', { orgCode: uniqueOrg(), id: uniqueId('p'), seed: 1 });
    const bad = await post(JSON.stringify(rec), 'application/json; charset=big5');
    expect(bad.status).toBe(415);
    expect(bad.a.desc).toContain('big5');
    const bom = await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(rec))]), 'application/json;charset=utf-8');
    expect(bom.status).toBe(200);
  });

  it('a short name garbled upstream (UTF-8 read as GBK) is flagged; undeclared GBK bytes too', async () => {
    const garbled = new TextDecoder('gbk').decode(Buffer.from('张三', 'utf8'));
    expect(garbled).toBe('寮犱笁');
    const rec = { ...sample('emrPatientInfo', { orgCode: uniqueOrg(), id: uniqueId('p'), seed: 1 }), patientName: garbled };
    const { status, a } = await post(JSON.stringify(rec), 'application/json');
    expect(status).toBe(200);
    expect(a.warnings!.map((w) => `${w.field}/${w.rule}`)).toContain('patientName/garbledText');
    // GBK bytes sent without saying so: decoded as UTF-8 they are not text; the field is flagged, not lost silently.
    const rec2 = { ...sample('emrPatientInfo', { orgCode: uniqueOrg(), id: uniqueId('p'), seed: 1 }), patientName: '欧阳娜娜' };
    const undeclared = await post(gbk(JSON.stringify(rec2)), 'application/json');
    expect(undeclared.status).toBe(200);
    expect(undeclared.a.warnings!.map((w) => `${w.field}/${w.rule}`)).toContain('patientName/garbledText');
  });
});
