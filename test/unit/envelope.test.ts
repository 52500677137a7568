// The uplink envelope v1 (docs/uplink.md): sealed by the front, opened by the platform, each
// tampering refused with its own code and reason; receipts signed by the platform and checked by
// the front. The platform side is the simulator's Hono app, called without a port.
import { describe, expect, it } from 'vitest';
import {
  EnvelopeError,
  envelopeSigningInput,
  openEnvelope,
  sealEnvelope,
  signReceipt,
  verifyReceipt,
  type Envelope,
  type UplinkRecord,
} from '../../shared/uplink/envelope.js';
import { DEFAULT_UID, generateSm2KeyPair, keyId, parseSm2PrivateKey, sm2Sign, type Sm2PrivateKey } from '../../shared/uplink/sm.js';
import { platformApp } from '../../infra/simulators/platform.js';
import { batchIdOf, CLASS_ORDER } from '../../shared/uplink/push.js';
import { resources } from '../../schemas/index.js';

const newKey = (): Sm2PrivateKey => parseSm2PrivateKey(generateSm2KeyPair().privateKeyPem);
const hospital = newKey();
const platform = newKey();
const senders = (id: string) => (id === keyId(hospital.pub) ? { name: 'h1', key: hospital.pub } : undefined);

const record = (id: string, version = 1): UplinkRecord => ({
  resource: 'emrPatientInfo',
  orgCode: '417203958',
  id,
  version,
  op: 'upsert',
  deadlineClass: 'realtime',
  test: false,
  payload: { id, orgCode: '417203958', patientName: '张三' },
});
const seal = (records = [record('P1'), record('P2')], batchId = 'national-1-2-abc') =>
  sealEnvelope({ batchId, destination: 'national', records, sender: { name: 'h1', key: hospital }, recipient: platform.pub });

function refusal(fn: () => unknown): EnvelopeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnvelopeError) return err;
    throw err;
  }
  throw new Error('expected an EnvelopeError');
}

const reparse = (e: Envelope): Envelope => JSON.parse(JSON.stringify(e)) as Envelope;
function flipBase64(b64: string, at: number): string {
  const b = Buffer.from(b64, 'base64');
  b[at]! ^= 0x01;
  return b.toString('base64');
}

describe('sealing and opening', () => {
  it('round-trips the batch; the envelope carries no plaintext', () => {
    const { envelope, body } = seal();
    expect(body).not.toContain('张三');
    expect(body).not.toContain('patientName');
    const opened = openEnvelope(JSON.parse(body), { key: platform, senders });
    expect(opened.batch.records.map((r) => r.id)).toEqual(['P1', 'P2']);
    expect(opened.sender.name).toBe('h1');
    expect(envelope.enc).toMatchObject({ alg: 'SM4-CBC', keyAlg: 'SM2-ENC' });
    expect(Buffer.from(envelope.enc.key, 'base64').length).toBe(65 + 32 + 16);
  });
  it('uses a fresh batch key and IV every time', () => {
    const a = seal().envelope;
    const b = seal().envelope;
    expect(a.enc.key).not.toBe(b.enc.key);
    expect(a.enc.iv).not.toBe(b.enc.iv);
    expect(a.enc.ct).not.toBe(b.enc.ct);
  });
});

describe('tampering is refused with a clear reason', () => {
  it('a flipped byte in the ciphertext: the signature no longer verifies', () => {
    const e = reparse(seal().envelope);
    e.enc.ct = flipBase64(e.enc.ct, 5);
    const err = refusal(() => openEnvelope(e, { key: platform, senders }));
    expect(err.code).toBe('bad-signature');
    expect(err.reason).toMatch(/SM2 signature does not verify with the public key of h1/);
  });
  it('a flipped byte in the wrapped key or the IV: the signature no longer verifies', () => {
    for (const field of ['key', 'iv'] as const) {
      const e = reparse(seal().envelope);
      e.enc[field] = flipBase64(e.enc[field], 3);
      expect(refusal(() => openEnvelope(e, { key: platform, senders })).code).toBe('bad-signature');
    }
  });
  it('a signature by another key, or a damaged signature', () => {
    const other = newKey();
    const forged = sealEnvelope({
      batchId: 'x-1',
      destination: 'national',
      records: [record('P1')],
      sender: { name: 'h1', key: other },
      recipient: platform.pub,
    }).envelope;
    forged.sender.keyId = keyId(hospital.pub); // claims to be h1
    expect(refusal(() => openEnvelope(forged, { key: platform, senders })).code).toBe('bad-signature');
    const e = reparse(seal().envelope);
    e.sig.value = flipBase64(e.sig.value, 10);
    expect(refusal(() => openEnvelope(e, { key: platform, senders })).code).toBe('bad-signature');
  });
  it('an unknown sender', () => {
    const stranger = sealEnvelope({
      batchId: 'x-1',
      destination: 'national',
      records: [record('P1')],
      sender: { name: 'h9', key: newKey() },
      recipient: platform.pub,
    }).envelope;
    const err = refusal(() => openEnvelope(stranger, { key: platform, senders }));
    expect(err.code).toBe('unknown-sender');
    expect(err.reason).toMatch(/no hospital front is registered with key/);
  });
  it('the wrong recipient key: addressed elsewhere, or wrapped for another key', () => {
    const { envelope } = seal();
    const elsewhere = newKey();
    const err = refusal(() => openEnvelope(envelope, { key: elsewhere, senders }));
    expect(err.code).toBe('wrong-recipient');
    expect(err.reason).toMatch(/addressed to key .* not to this platform's key/);
    // A sender who signs an envelope naming this platform but wraps the key for another one.
    const misWrapped = sealEnvelope({
      batchId: 'x-2',
      destination: 'national',
      records: [record('P1')],
      sender: { name: 'h1', key: hospital },
      recipient: elsewhere.pub,
    }).envelope;
    const relabelled = { ...misWrapped, recipient: { keyId: keyId(platform.pub) } };
    const resigned = sealLike(relabelled);
    const err2 = refusal(() => openEnvelope(resigned, { key: platform, senders }));
    expect(err2.code).toBe('unwrap-failed');
    expect(err2.reason).toMatch(/does not unwrap with this platform's SM2 key/);
  });
  it('an unsupported version and a malformed envelope', () => {
    expect(refusal(() => openEnvelope({ ...seal().envelope, v: 2 }, { key: platform, senders })).code).toBe('unsupported-version');
    const e = refusal(() => openEnvelope({ v: 1, batchId: 'x' }, { key: platform, senders }));
    expect(e.code).toBe('invalid-envelope');
    expect(e.reason).toMatch(/sender/);
  });
});

/** Re-signs an altered envelope with the hospital's key (a sender making a mistake, not an attacker). */
function sealLike(e: Envelope): Envelope {
  const { sig: _sig, ...unsigned } = e;
  return { ...unsigned, sig: { alg: 'SM2-SM3', uid: DEFAULT_UID, value: sm2Sign(hospital, envelopeSigningInput(unsigned)).toString('base64') } };
}

describe('receipts', () => {
  const sent = { batchId: 'national-1-2-abc', records: [record('P1'), record('P2')] };
  const unsigned = {
    v: 1 as const,
    batchId: sent.batchId,
    platform: { role: 'national' as const, keyId: keyId(platform.pub) },
    receivedAt: new Date().toISOString(),
    replayed: false,
    receipts: [
      { resource: 'emrPatientInfo', orgCode: '417203958', id: 'P1', version: 1, status: 'accepted' as const },
      { resource: 'emrPatientInfo', orgCode: '417203958', id: 'P2', version: 1, status: 'rejected' as const, reason: '证件号码校验不通过' },
    ],
  };
  it('a signed receipt verifies and covers the batch', () => {
    const r = verifyReceipt(JSON.parse(JSON.stringify(signReceipt(unsigned, platform))), platform.pub, sent);
    expect(r.receipts.map((x) => x.status)).toEqual(['accepted', 'rejected']);
  });
  it('a receipt with a bad signature, an altered status, or by another key is refused', () => {
    const r = signReceipt(unsigned, platform);
    expect(refusal(() => verifyReceipt({ ...r, sig: { ...r.sig, value: flipBase64(r.sig.value, 8) } }, platform.pub, sent)).code).toBe('bad-receipt-signature');
    const altered = { ...r, receipts: r.receipts.map((x) => ({ ...x, status: 'accepted', reason: undefined })) };
    expect(refusal(() => verifyReceipt(JSON.parse(JSON.stringify(altered)), platform.pub, sent)).code).toBe('bad-receipt-signature');
    expect(refusal(() => verifyReceipt(r, newKey().pub, sent)).code).toBe('bad-receipt-signature');
  });
  it('a receipt for another batch or missing a record is refused', () => {
    expect(refusal(() => verifyReceipt(signReceipt({ ...unsigned, batchId: 'other' }, platform), platform.pub, sent)).code).toBe('bad-receipt');
    expect(refusal(() => verifyReceipt(signReceipt({ ...unsigned, receipts: unsigned.receipts.slice(0, 1) }, platform), platform.pub, sent)).code).toBe(
      'bad-receipt',
    );
  });
});

describe('the platform simulator (no port)', () => {
  const hospitalPem = generateSm2KeyPair();
  const platformPem = generateSm2KeyPair();
  const h = parseSm2PrivateKey(hospitalPem.privateKeyPem);
  const p = parseSm2PrivateKey(platformPem.privateKeyPem);
  const post = (app: ReturnType<typeof platformApp>['app'], body: string, batchId: string) =>
    app.request('/uplink/v1/batches', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': batchId }, body });
  const make = () => platformApp({ role: 'national', keyPem: platformPem.privateKeyPem, hospitals: [{ name: 'h1', publicKeyPem: hospitalPem.publicKeyPem }] });
  const sealFor = (records: UplinkRecord[], batchId: string) =>
    sealEnvelope({ batchId, destination: 'national', records, sender: { name: 'h1', key: h }, recipient: p.pub }).body;

  it('answers a signed receipt, and the same batch again with the original outcome (replayed)', async () => {
    const sim = make();
    const recs = [record('P1'), record('P2')];
    const first = await post(sim.app, sealFor(recs, 'b-1'), 'b-1');
    expect(first.status).toBe(200);
    const r1 = verifyReceipt(await first.json(), p.pub, { batchId: 'b-1', records: recs });
    expect(r1.receipts.map((x) => x.status)).toEqual(['accepted', 'accepted']);
    // The same batch re-sealed (new key, new IV): an idempotent retry, not a new delivery.
    const again = await post(sim.app, sealFor(recs, 'b-1'), 'b-1');
    const r2 = verifyReceipt(await again.json(), p.pub, { batchId: 'b-1', records: recs });
    expect(r2).toMatchObject({ replayed: true, receivedAt: r1.receivedAt });
    expect(r2.receipts.map((x) => x.status)).toEqual(['accepted', 'accepted']);
    expect(sim.records()).toHaveLength(2);
    // The same records under a new batch id are duplicates.
    const dup = await post(sim.app, sealFor(recs, 'b-2'), 'b-2');
    expect(verifyReceipt(await dup.json(), p.pub, { batchId: 'b-2', records: recs }).receipts.map((x) => x.status)).toEqual(['duplicate', 'duplicate']);
  });
  it('refuses a replayed idempotency key with other records (409) and a header that differs from the envelope', async () => {
    const sim = make();
    await post(sim.app, sealFor([record('P1')], 'b-9'), 'b-9');
    const res = await post(sim.app, sealFor([record('P7')], 'b-9'), 'b-9');
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ error: { code: 'idempotency-conflict', reason: 'batch id b-9 was used before for other records' } });
    expect(sim.records().map((r) => r.id)).toEqual(['P1']);
    const hdr = await post(sim.app, sealFor([record('P8')], 'b-10'), 'b-11');
    expect(hdr.status).toBe(400);
    expect(((await hdr.json()) as { error: { reason: string } }).error.reason).toMatch(/Idempotency-Key header must equal/);
  });
  it('maps envelope refusals to statuses: 401 bad signature, 400 wrong recipient, 422 invalid batch content', async () => {
    const sim = make();
    const e = JSON.parse(sealFor([record('P1')], 'b-20')) as Envelope;
    e.enc.ct = flipBase64(e.enc.ct, 1);
    const bad = await post(sim.app, JSON.stringify(e), 'b-20');
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('bad-signature');
    const wrong = sealEnvelope({
      batchId: 'b-21',
      destination: 'national',
      records: [record('P1')],
      sender: { name: 'h1', key: h },
      recipient: newKey().pub,
    }).body;
    expect((await post(sim.app, wrong, 'b-21')).status).toBe(400);
    const invalid = sealFor([{ ...record('P1'), version: 0 }], 'b-22');
    const r = await post(sim.app, invalid, 'b-22');
    expect(r.status).toBe(422);
    expect(((await r.json()) as { error: { code: string; reason: string } }).error).toMatchObject({ code: 'invalid-batch' });
    expect(sim.stats().refused).toMatchObject({ 'bad-signature': 1, 'wrong-recipient': 1, 'invalid-batch': 1 });
  });
});

describe('batch ids and class order', () => {
  it('the same rows give the same idempotency key; other rows another', () => {
    const rows = [{ outbox_id: '10', resource: 'emrPatientInfo', org_code: '1', record_id: 'P1', version: 1 }];
    expect(batchIdOf('national', rows)).toBe(batchIdOf('national', rows));
    expect(batchIdOf('national', rows)).not.toBe(batchIdOf('national', [{ ...rows[0]!, version: 2 }]));
    expect(batchIdOf('national', rows)).toMatch(/^national-10-1-[0-9a-f]{16}$/);
  });
  it('no resource has a parent of a later deadline class (so class priority never sends a child first)', () => {
    const all = Object.values(resources);
    expect(all.length).toBeGreaterThanOrEqual(20);
    const byName = new Map(all.map((r) => [r.name, r]));
    for (const r of all) {
      for (const p of r.parents) {
        const parent = byName.get(p.resource)!;
        expect(parent, `${r.name} → ${p.resource}`).toBeDefined();
        expect(CLASS_ORDER.indexOf(parent.deadline), `${r.name} → ${p.resource}`).toBeLessThanOrEqual(CLASS_ORDER.indexOf(r.deadline));
      }
    }
  });
});
