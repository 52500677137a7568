/**
 * The development platform key for configuration bundles (docs/config-bundles.md "Development"):
 * `make up` makes an SM2 key pair once per data folder, the public half as the secret file
 * config-platform-pubkey (the key the config function trusts), the private half beside the platform
 * simulator's data, where `bin/cdc-config push` signs with it. Never in git; never with
 * CDC_ENV=production, where the real platform's public key is installed by hand.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSm2KeyPair } from '../../shared/uplink/sm.js';

export const PLATFORM_PUBKEY_SECRET = 'config-platform-pubkey';

/** Where the development signing key lives for a data folder. */
export const devSigningKeyFile = (dataDir: string): string => join(dataDir, 'simulators', 'config-platform-key.pem');

/**
 * Makes the pair when the front trusts no platform key yet. Returns the private key's file when this
 * data folder has one (made now or before), undefined when a key was installed by other means.
 */
export function ensureDevConfigKey(secretsDir: string, dataDir: string): { keyFile?: string; made: boolean } {
  const pub = join(secretsDir, PLATFORM_PUBKEY_SECRET);
  const priv = devSigningKeyFile(dataDir);
  if (existsSync(pub)) return { ...(existsSync(priv) ? { keyFile: priv } : {}), made: false };
  const pair = generateSm2KeyPair();
  mkdirSync(join(dataDir, 'simulators'), { recursive: true, mode: 0o700 });
  writeFileSync(priv, pair.privateKeyPem, { mode: 0o600 });
  chmodSync(priv, 0o600);
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  writeFileSync(pub, pair.publicKeyPem, { mode: 0o600 });
  chmodSync(pub, 0o600);
  return { keyFile: priv, made: true };
}
