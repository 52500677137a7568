/**
 * Well-known DEVELOPMENT keys: SM2 key pairs derived from fixed labels, so that the push function
 * and the platform simulator agree without sharing files when both run on one machine (`make up`,
 * the end-to-end tests). They are public — printed here — and therefore used only over plain
 * HTTP to a loopback address with no key secrets configured (shared/uplink/config.ts); an https
 * destination always needs its real secrets. docs/uplink.md §Keys.
 */
import { N, sm2PrivateKeyFromScalar, sm3, type Sm2PrivateKey } from './sm.js';

export type DevKeyName = 'hospital' | 'national' | 'provincial';

const cache = new Map<DevKeyName, Sm2PrivateKey>();

export function devKey(name: DevKeyName): Sm2PrivateKey {
  let k = cache.get(name);
  if (!k) {
    const seed = BigInt('0x' + sm3(`cdc-front development key, NOT SECRET: ${name}`).toString('hex'));
    k = sm2PrivateKeyFromScalar((seed % (N - 2n)) + 1n);
    cache.set(name, k);
  }
  return k;
}

/** The sender name the development hospital key is registered under at the simulators. */
export const DEV_SENDER = 'dev-hospital-front';
