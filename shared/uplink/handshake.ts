/**
 * The uplink handshake of the acceptance self-test (docs/acceptance.md, docs/uplink.md "Handshake"):
 * what a go-live needs proved, without sending a record.
 *
 * 1. A probe (`probePlatform`): the address, TLS both ways, the route, the platform's clock.
 * 2. A batch of no records, sealed and signed exactly as push seals a real one: the platform must
 *    know this hospital's signing key, unwrap the batch key with its own private key and decrypt the
 *    batch, then answer with a receipt of no records signed by the key this front has for it. So the
 *    keys are proved in both directions; nothing is stored on either side.
 */
import { randomBytes } from 'node:crypto';
import { postEnvelope, probePlatform, type Probe } from './client.js';
import type { Destination } from './config.js';
import { EnvelopeError, sealEnvelope, verifyReceipt } from './envelope.js';

export interface Handshake extends Probe {
  /** The signed exchange: ok when the platform's receipt of the empty batch verified. */
  signed: { ok: boolean; reason?: string };
}

export async function handshakePlatform(d: Destination, timeoutMs: number): Promise<Handshake> {
  const transport = { url: d.url, ...(d.tls ? { tls: d.tls } : {}) };
  const probe = await probePlatform(transport, timeoutMs);
  if (!probe.ok) return { ...probe, signed: { ok: false, reason: 'not tried: the platform did not answer the probe' } };
  const batchId = `handshake-${d.name}-${randomBytes(8).toString('hex')}`;
  const { body } = sealEnvelope({ batchId, destination: d.name, records: [], sender: d.sender, recipient: d.platformKey });
  const answer = await postEnvelope(transport, batchId, body, timeoutMs);
  if (answer.kind === 'network') return { ...probe, signed: { ok: false, reason: answer.reason } };
  if (answer.status !== 200) {
    const e = answer.body as { error?: { code?: string; reason?: string } } | null;
    const why = e?.error?.code ? `${e.error.code}: ${e.error.reason ?? ''}` : String(answer.body ?? '').slice(0, 200);
    return { ...probe, signed: { ok: false, reason: `HTTP ${answer.status} ${why}`.trim() } };
  }
  try {
    verifyReceipt(answer.body, d.platformKey, { batchId, records: [] });
    return { ...probe, signed: { ok: true } };
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw err;
    return { ...probe, signed: { ok: false, reason: `${err.code}: ${err.reason}` } };
  }
}
