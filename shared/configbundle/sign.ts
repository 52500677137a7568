/**
 * The platform's SM2 signature of a configuration bundle (docs/config-bundles.md "Signing"): SM2 over
 * SM3 with the standard user id, as the uplink's receipts (docs/uplink.md §2), over the UTF-8 bytes of
 * the JSON array ["cdc-config-bundle/1", <the bundle document as sent>]. The first element keeps a
 * signature made for anything else (a receipt, an envelope) from ever verifying as a bundle.
 */
import { BUNDLE_FORMAT, type SignedBundle } from './schema.js';
import { DEFAULT_UID, keyId, parseSm2PublicKey, sm2Sign, sm2Verify, type Sm2PrivateKey, type Sm2PublicKey } from '../uplink/sm.js';

export const SIGNATURE_ALG = 'SM2-SM3';

/**
 * The bytes signed: the document's kind (`tag`, its format name) and the document as sent. The tag
 * keeps a signature made for one kind (a bundle, an authorization code) from verifying as another.
 */
export function bundleSigningInput(bundleText: string, tag: string = BUNDLE_FORMAT): Buffer {
  return Buffer.from(JSON.stringify([tag, bundleText]), 'utf8');
}

/** Signs a bundle document (the platform's side; the simulator and bin/cdc-config use it). */
export function signBundle(bundleText: string, key: Sm2PrivateKey, tag: string = BUNDLE_FORMAT): SignedBundle {
  return {
    bundle: bundleText,
    sig: { alg: SIGNATURE_ALG, uid: DEFAULT_UID, keyId: keyId(key.pub), value: sm2Sign(key, bundleSigningInput(bundleText, tag)).toString('base64') },
  };
}

/** Why a signature is refused; `code` is stable for programs, `reason` says what to do. */
export class SignatureError extends Error {
  constructor(
    readonly code: 'unsupported-algorithm' | 'unknown-key' | 'bad-signature' | 'no-platform-key',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** The platform keys the front trusts: every PEM block of the key file (several during a key change). */
export function parseTrustedKeys(text: string): Sm2PublicKey[] {
  const blocks = text.match(/-----BEGIN (?:PUBLIC KEY|CERTIFICATE)-----[\s\S]+?-----END (?:PUBLIC KEY|CERTIFICATE)-----/g) ?? [];
  if (!blocks.length) throw new Error('no PEM public key in it');
  return blocks.map((b) => parseSm2PublicKey(b));
}

/** Checks the signature of a signed bundle with the trusted keys; returns the key id that signed. Throws SignatureError. */
export function verifyBundleSignature(signed: SignedBundle, trusted: Sm2PublicKey[], tag: string = BUNDLE_FORMAT): string {
  if (!trusted.length)
    throw new SignatureError(
      'no-platform-key',
      "no platform key is configured (secret file config-platform-pubkey): this front cannot check a bundle's signature",
    );
  if (signed.sig.alg !== SIGNATURE_ALG) throw new SignatureError('unsupported-algorithm', `signature algorithm ${signed.sig.alg} is not ${SIGNATURE_ALG}`);
  const key = trusted.find((k) => keyId(k) === signed.sig.keyId);
  if (!key)
    throw new SignatureError(
      'unknown-key',
      `the bundle is signed with key ${signed.sig.keyId.slice(0, 16)}…, which this front does not trust (trusted: ${trusted.map((k) => keyId(k).slice(0, 16) + '…').join(', ')}; secret file config-platform-pubkey)`,
    );
  let value: Buffer;
  try {
    value = Buffer.from(signed.sig.value, 'base64');
  } catch {
    throw new SignatureError('bad-signature', 'the signature is not base64');
  }
  if (!sm2Verify(key, bundleSigningInput(signed.bundle, tag), value, signed.sig.uid))
    throw new SignatureError(
      'bad-signature',
      `the SM2 signature does not verify with the platform key ${signed.sig.keyId.slice(0, 16)}…: the bundle was altered or signed over other bytes`,
    );
  return signed.sig.keyId;
}
