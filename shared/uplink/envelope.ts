/**
 * The uplink wire contract, version 1 (docs/uplink.md): what the front POSTs to a platform and what
 * the platform answers, as zod schemas (the types are inferred from them), and the functions that
 * seal and open an envelope and sign and verify a receipt. Both sides use this module: the push
 * (shared/uplink/push.ts) and the platform simulator (infra/simulators/platform.ts).
 *
 *   batch JSON ──SM4-CBC (fresh 128-bit key, random IV)──▶ enc.ct
 *   batch key ──SM2 encryption (GB/T 32918.4, C1‖C3‖C2) to the platform's key──▶ enc.key
 *   signing input (batch id, keys, time, count, enc.*) ──SM2 signature over SM3 with Z(uid)──▶ sig
 *
 * Encrypt-then-sign: the platform checks the hospital's signature before it decrypts anything, so
 * a forged or altered envelope never reaches the SM2 unwrap or the CBC padding check.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DeadlineClass } from '../../schemas/resource.js';
import { DEFAULT_UID, keyId, sm2Decrypt, sm2Encrypt, sm2Sign, sm2Verify, sm4CbcDecrypt, sm4CbcEncrypt, type Sm2PrivateKey, type Sm2PublicKey } from './sm.js';

export const UPLINK_VERSION = 1 as const;
export const BATCHES_PATH = '/uplink/v1/batches';

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const KeyId = z.string().regex(/^[0-9a-f]{64}$/, 'SM3 of the uncompressed public key, 64 lowercase hex digits');
/** Also the Idempotency-Key header: letters, digits and . _ : - only. */
export const BatchId = z
  .string()
  .min(1)
  .max(120)
  .regex(/^[A-Za-z0-9._:-]+$/);

// ---- inside the encryption: the batch --------------------------------------------------------

export const UplinkRecord = z.object({
  /** The resource's wire name (emrPatientInfo, emrInfReport, ...). */
  resource: z.string().min(1).max(40),
  /** 机构编码 of the hospital the record belongs to. */
  orgCode: z.string().min(1).max(50),
  /** The record's id within (resource, orgCode). */
  id: z.string().min(1).max(80),
  /** 1, 2, 3, ... per (resource, orgCode, id); the platform keeps each version once. */
  version: z.number().int().positive(),
  /** upsert: the payload is the record's new state; retire: the record is withdrawn (作废). */
  op: z.enum(['upsert', 'retire']),
  deadlineClass: DeadlineClass,
  /** Test-mode data (acceptance runs): a live platform must never store it. */
  test: z.boolean(),
  /** The record as the HIS sent it, after key normalisation (fields of docs/data-set.md). */
  payload: z.record(z.string(), z.unknown()),
});
export type UplinkRecord = z.infer<typeof UplinkRecord>;

export const Batch = z.object({
  v: z.literal(UPLINK_VERSION),
  batchId: BatchId,
  /** The destination's name at the front (national, provincial, ...). */
  destination: z.string().min(1).max(40),
  /** Empty only for the handshake (docs/uplink.md "Handshake"): answered with a signed receipt of no records. */
  records: z.array(UplinkRecord),
});
export type Batch = z.infer<typeof Batch>;

// ---- the envelope (the POST body) ----------------------------------------------------------

export const Signature = z.object({
  alg: z.literal('SM2-SM3'),
  /** The user id hashed into Z (GB/T 32918.2 §5.5); always the standard default in v1. */
  uid: z.literal(DEFAULT_UID),
  /** DER SEQUENCE { r INTEGER, s INTEGER } (GB/T 35276), base64. */
  value: Base64,
});
export type Signature = z.infer<typeof Signature>;

export const Envelope = z.object({
  v: z.literal(UPLINK_VERSION),
  batchId: BatchId,
  sender: z.object({
    /** The front's name (the hospital's 机构编码 or the name the platform registered it under). */
    name: z.string().min(1).max(80),
    keyId: KeyId,
  }),
  recipient: z.object({ keyId: KeyId }),
  /** When the envelope was sealed (ISO 8601, UTC). */
  createdAt: z.iso.datetime(),
  /** Number of records inside. */
  /** Records in the batch; 0 only for the handshake (docs/uplink.md "Handshake"). */
  count: z.number().int().nonnegative(),
  enc: z.object({
    alg: z.literal('SM4-CBC'),
    keyAlg: z.literal('SM2-ENC'),
    /** 16 random bytes, base64. */
    iv: Base64,
    /** The 16-byte SM4 batch key, SM2-encrypted to the recipient: C1 (65) ‖ C3 (32) ‖ C2 (16), base64. */
    key: Base64,
    /** SM4-CBC with PKCS#7 padding of the UTF-8 batch JSON, base64. */
    ct: Base64,
  }),
  sig: Signature,
});
export type Envelope = z.infer<typeof Envelope>;

// ---- the answer: per-record receipts, signed by the platform --------------------------------------

export const ReceiptStatus = z.enum(['accepted', 'duplicate', 'rejected']);
export const RecordReceipt = z.object({
  resource: z.string(),
  orgCode: z.string(),
  id: z.string(),
  version: z.number().int().positive(),
  /** accepted: stored now; duplicate: this version was stored before; rejected: never stored. */
  status: ReceiptStatus,
  /** Why a record was rejected (required then), in words an operator can act on. */
  reason: z.string().max(500).optional(),
});
export type RecordReceipt = z.infer<typeof RecordReceipt>;

export const Receipt = z.object({
  v: z.literal(UPLINK_VERSION),
  batchId: BatchId,
  platform: z.object({ role: z.enum(['national', 'provincial']), keyId: KeyId }),
  receivedAt: z.iso.datetime(),
  /** True when this answers a batch id seen before (an idempotent retry): the original outcome. */
  replayed: z.boolean(),
  /** One per record, in the batch's order. */
  receipts: z.array(RecordReceipt),
  sig: Signature,
});
export type Receipt = z.infer<typeof Receipt>;

/** What a platform answers instead of a receipt (4xx/5xx). */
export const ErrorBody = z.object({ error: z.object({ code: z.string(), reason: z.string() }) });

export type EnvelopeErrorCode =
  | 'unsupported-version'
  | 'invalid-envelope'
  | 'wrong-recipient'
  | 'unknown-sender'
  | 'bad-signature'
  | 'unwrap-failed'
  | 'decrypt-failed'
  | 'invalid-batch'
  | 'batch-mismatch'
  | 'foreign-org'
  | 'idempotency-conflict'
  | 'bad-receipt'
  | 'bad-receipt-signature';

/** A refused envelope or receipt, with a code a program can branch on and a reason for people. */
export class EnvelopeError extends Error {
  constructor(
    readonly code: EnvelopeErrorCode,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

// ---- signing inputs: a JSON array of strings and numbers, so every side builds the same bytes ----

export function envelopeSigningInput(e: Omit<Envelope, 'sig'>): Buffer {
  return Buffer.from(
    JSON.stringify([
      'cdc-uplink-envelope/1',
      e.batchId,
      e.sender.name,
      e.sender.keyId,
      e.recipient.keyId,
      e.createdAt,
      e.count,
      e.enc.alg,
      e.enc.keyAlg,
      e.enc.iv,
      e.enc.key,
      e.enc.ct,
    ]),
    'utf8',
  );
}

export function receiptSigningInput(r: Omit<Receipt, 'sig'>): Buffer {
  return Buffer.from(
    JSON.stringify([
      'cdc-uplink-receipt/1',
      r.batchId,
      r.platform.role,
      r.platform.keyId,
      r.receivedAt,
      r.replayed,
      r.receipts.map((x) => [x.resource, x.orgCode, x.id, x.version, x.status, x.reason ?? null]),
    ]),
    'utf8',
  );
}

const signature = (key: Sm2PrivateKey, input: Buffer): Signature => ({ alg: 'SM2-SM3', uid: DEFAULT_UID, value: sm2Sign(key, input).toString('base64') });

// ---- the front's side ------------------------------------------------------------------------

export interface SealInput {
  batchId: string;
  destination: string;
  records: UplinkRecord[];
  sender: { name: string; key: Sm2PrivateKey };
  recipient: Sm2PublicKey;
  now?: Date;
}

/** Encrypts, wraps and signs a batch; returns the envelope and its JSON body. */
export function sealEnvelope(input: SealInput): { envelope: Envelope; body: string } {
  const batch: Batch = { v: UPLINK_VERSION, batchId: input.batchId, destination: input.destination, records: input.records };
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const unsigned: Omit<Envelope, 'sig'> = {
    v: UPLINK_VERSION,
    batchId: input.batchId,
    sender: { name: input.sender.name, keyId: keyId(input.sender.key.pub) },
    recipient: { keyId: keyId(input.recipient) },
    createdAt: (input.now ?? new Date()).toISOString(),
    count: input.records.length,
    enc: {
      alg: 'SM4-CBC',
      keyAlg: 'SM2-ENC',
      iv: iv.toString('base64'),
      key: sm2Encrypt(input.recipient, key).toString('base64'),
      ct: sm4CbcEncrypt(key, iv, Buffer.from(JSON.stringify(batch), 'utf8')).toString('base64'),
    },
  };
  key.fill(0);
  const envelope: Envelope = { ...unsigned, sig: signature(input.sender.key, envelopeSigningInput(unsigned)) };
  return { envelope, body: JSON.stringify(envelope) };
}

/**
 * Checks a receipt against the batch it answers: the platform's signature, the batch id, and one
 * receipt per record in order. Throws EnvelopeError('bad-receipt' | 'bad-receipt-signature').
 */
export function verifyReceipt(
  body: unknown,
  platform: Sm2PublicKey,
  sent: { batchId: string; records: Pick<UplinkRecord, 'resource' | 'orgCode' | 'id' | 'version'>[] },
): Receipt {
  const parsed = Receipt.safeParse(body);
  if (!parsed.success) throw new EnvelopeError('bad-receipt', `the receipt does not match the v1 schema: ${issueText(parsed.error)}`);
  const r = parsed.data;
  if (r.platform.keyId !== keyId(platform))
    throw new EnvelopeError('bad-receipt-signature', 'the receipt is signed by another key than the platform configured for this destination');
  const { sig, ...unsigned } = r;
  if (!sm2Verify(platform, receiptSigningInput(unsigned), Buffer.from(sig.value, 'base64'), sig.uid)) {
    throw new EnvelopeError('bad-receipt-signature', "the receipt's SM2 signature does not verify with the platform's public key");
  }
  if (r.batchId !== sent.batchId) throw new EnvelopeError('bad-receipt', `the receipt answers batch ${r.batchId}, not ${sent.batchId}`);
  const covers =
    r.receipts.length === sent.records.length &&
    r.receipts.every((x, i) => {
      const s = sent.records[i]!;
      return x.resource === s.resource && x.orgCode === s.orgCode && x.id === s.id && x.version === s.version;
    });
  if (!covers) throw new EnvelopeError('bad-receipt', 'the receipt does not cover the batch record for record');
  const unexplained = r.receipts.find((x) => x.status === 'rejected' && !x.reason);
  if (unexplained) throw new EnvelopeError('bad-receipt', `record ${unexplained.resource}/${unexplained.id} is rejected without a reason`);
  return r;
}

// ---- the platform's side -----------------------------------------------------------------------

export interface KnownSender {
  name: string;
  key: Sm2PublicKey;
  /** The organisation codes this front may send for; undefined = any. */
  orgCodes?: readonly string[];
}

export interface Opened {
  envelope: Envelope;
  batch: Batch;
  sender: KnownSender;
}

/** Verifies, unwraps, decrypts and validates an envelope, in that order; throws EnvelopeError. */
export function openEnvelope(body: unknown, platform: { key: Sm2PrivateKey; senders: (keyId: string) => KnownSender | undefined }): Opened {
  const v = (body as { v?: unknown } | null)?.v;
  if (v !== UPLINK_VERSION)
    throw new EnvelopeError('unsupported-version', `envelope version ${JSON.stringify(v ?? null)} is not supported; this platform speaks v${UPLINK_VERSION}`);
  const parsed = Envelope.safeParse(body);
  if (!parsed.success) throw new EnvelopeError('invalid-envelope', `the envelope does not match the v1 schema: ${issueText(parsed.error)}`);
  const env = parsed.data;
  if (env.recipient.keyId !== keyId(platform.key.pub)) {
    throw new EnvelopeError('wrong-recipient', `the envelope is addressed to key ${env.recipient.keyId.slice(0, 16)}…, not to this platform's key`);
  }
  const sender = platform.senders(env.sender.keyId);
  if (!sender) throw new EnvelopeError('unknown-sender', `no hospital front is registered with key ${env.sender.keyId.slice(0, 16)}…`);
  const { sig, ...unsigned } = env;
  if (!sm2Verify(sender.key, envelopeSigningInput(unsigned), Buffer.from(sig.value, 'base64'), sig.uid)) {
    throw new EnvelopeError('bad-signature', `the SM2 signature does not verify with the public key of ${sender.name}`);
  }
  let key: Buffer;
  try {
    key = sm2Decrypt(platform.key, Buffer.from(env.enc.key, 'base64'));
  } catch (err) {
    throw new EnvelopeError('unwrap-failed', `the batch key does not unwrap with this platform's SM2 key (${(err as Error).message})`);
  }
  if (key.length !== 16) throw new EnvelopeError('unwrap-failed', `the batch key is ${key.length} bytes, SM4 needs 16`);
  let json: unknown;
  try {
    const plain = sm4CbcDecrypt(key, Buffer.from(env.enc.iv, 'base64'), Buffer.from(env.enc.ct, 'base64'));
    json = JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new EnvelopeError('decrypt-failed', `the payload does not decrypt to JSON under the batch key (${(err as Error).message})`);
  } finally {
    key.fill(0);
  }
  const batch = Batch.safeParse(json);
  if (!batch.success) throw new EnvelopeError('invalid-batch', `the decrypted batch does not match the v1 schema: ${issueText(batch.error)}`);
  if (batch.data.batchId !== env.batchId || batch.data.records.length !== env.count) {
    throw new EnvelopeError('batch-mismatch', 'the batch id or record count inside the encryption differs from the envelope');
  }
  if (sender.orgCodes) {
    const foreign = batch.data.records.find((r) => !sender.orgCodes!.includes(r.orgCode));
    if (foreign) throw new EnvelopeError('foreign-org', `${sender.name} may not send records of organisation ${foreign.orgCode}`);
  }
  return { envelope: env, batch: batch.data, sender };
}

export function signReceipt(unsigned: Omit<Receipt, 'sig'>, key: Sm2PrivateKey): Receipt {
  return { ...unsigned, sig: signature(key, receiptSigningInput(unsigned)) };
}

function issueText(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
