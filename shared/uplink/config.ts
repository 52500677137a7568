/**
 * Where and how to forward: the enabled rows of `uplink_destination` (name, kind, resource
 * choice) joined with per-destination settings from the environment and secret files. Names
 * (docs/uplink.md §Configuration), for a destination called `national` (`provincial` alike):
 *
 *   NATIONAL_URL                     env     base URL of the platform (https://…; http only to loopback)
 *   uplink-national-pubkey           secret  the platform's SM2 public key (PEM, SubjectPublicKeyInfo)
 *   uplink-national-ca               secret  trust anchors for the platform's TLS certificate (optional)
 *   uplink-hospital-key              secret  the hospital's SM2 private key (PEM, PKCS#8): signs envelopes
 *   uplink-client-cert / -client-key secret  the hospital's TLS client certificate and key (PEM)
 *   uplink-ca                        secret  trust anchors for every platform (optional; default system roots)
 *   UPLINK_SENDER                    env     the name the platforms registered this front under
 *
 * Over plain HTTP to a loopback address with no key secrets, the well-known development keys
 * (dev-keys.ts) stand in, so `make up` and the end-to-end tests need no setup.
 */
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { concern, frontConcern, readSecret, type SecretReader } from '../config/index.js';
import { log } from '../log/index.js';
import { isLoopback, type TlsClient } from './client.js';
import { DEV_SENDER, devKey } from './dev-keys.js';
import { parseSm2PrivateKey, parseSm2PublicKey, type Sm2PrivateKey, type Sm2PublicKey } from './sm.js';
import { platformsInForce } from '../configbundle/active.js';

/**
 * The development-key warnings, once per destination and process: the configuration is read at every
 * push run (every minute and at every nudge), and a line per run drowned the warnings that matter.
 */
const warned = new Set<string>();
function warnOnce(msg: string, destination: string): void {
  const key = `${msg}\u0000${destination}`;
  if (warned.has(key)) return;
  warned.add(key);
  log('warn', msg, { destination });
}

export interface Destination {
  name: string;
  kind: string;
  url: string;
  /** The platform's SM2 public key: the batch key is wrapped for it; it signs the receipts. */
  platformKey: Sm2PublicKey;
  /** The hospital's signing key and the name it is registered under. */
  sender: { name: string; key: Sm2PrivateKey };
  tls?: TlsClient;
  /** Resource wire names this destination takes; null = all. */
  resources: string[] | null;
  /** Takes test-mode records (an acceptance simulator); a live platform never does. */
  acceptsTest: boolean;
}

export interface Unconfigured {
  name: string;
  reason: string;
}

export type Env = Record<string, string | undefined>;
type DestinationRow = { name: string; kind: string; resources: string | null; accepts_test?: boolean };

const httpUrl = z.url({ protocol: /^https?$/ }).optional();

/**
 * The push function's uplink settings (a concern of shared/config). Destinations are rows of
 * uplink_destination; their URLs come from <NAME>_URL: NATIONAL_URL and PROVINCIAL_URL are checked
 * here (stack.yml gives both); another destination's URL is taken as given, and its function
 * environment must name it (docs/uplink.md).
 */
export const uplinkConcern = concern({
  name: 'uplink',
  // The hospital's keys and certificate, each destination's platform key and CA (docs/uplink.md).
  optionalSecrets: ['uplink-*'],
  vars: {
    CDC_ENV: frontConcern.vars.CDC_ENV,
    NATIONAL_URL: httpUrl,
    PROVINCIAL_URL: httpUrl,
    UPLINK_SENDER: z.string().min(1).max(100).optional(),
    /** Hours after which a child still held for its parent is released alone (shared/ingest/orphans.ts); 0 = never. */
    ORPHAN_RELEASE_AFTER_H: z.coerce.number().nonnegative().default(48),
    /** Days after delivery after which an outbox row's payload is scrubbed (docs/security.md); 0 = never. */
    OUTBOX_RETENTION_DAYS: z.coerce.number().nonnegative().default(30),
  },
  build: (v, _secret, env) => ({
    /** What destinationFromEnv reads: the two URLs as parsed, and any other destination's <NAME>_URL as given. */
    env: {
      ...Object.fromEntries(Object.entries(env).filter(([k]) => /^[A-Z][A-Z0-9_]*_URL$/.test(k))),
      CDC_ENV: v.CDC_ENV,
      ...(v.NATIONAL_URL ? { NATIONAL_URL: v.NATIONAL_URL } : {}),
      ...(v.PROVINCIAL_URL ? { PROVINCIAL_URL: v.PROVINCIAL_URL } : {}),
      ...(v.UPLINK_SENDER ? { UPLINK_SENDER: v.UPLINK_SENDER } : {}),
    } as Env,
    orphanReleaseAfterH: v.ORPHAN_RELEASE_AFTER_H,
    outboxRetentionDays: v.OUTBOX_RETENTION_DAYS,
  }),
});

export function parseResources(text: string | null): string[] | null {
  if (text === null) return null;
  const list = text.split(/[\s,]+/).filter(Boolean);
  return list.length ? list : null;
}

/**
 * One destination's settings; throws with the name of what is missing or wrong. The platform's address
 * and SM2 key come from a configuration bundle's platforms section when one is in force (`fromBundle`),
 * else from `<NAME>_URL` and the secret file uplink-<name>-pubkey; the hospital's own keys and
 * certificates always from its secret files.
 */
export function destinationFromEnv(
  row: DestinationRow,
  env: Env,
  secret: SecretReader = readSecret,
  fromBundle?: { url: string; publicKey: string },
): Destination {
  const up = row.name.toUpperCase();
  const where = fromBundle ? `the configuration bundle's platform ${row.name}` : `${up}_URL`;
  const url = fromBundle?.url ?? env[`${up}_URL`];
  if (!url) throw new Error(`${up}_URL is not set`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${where} is not a URL`);
  }
  const pubPem = fromBundle?.publicKey ?? secret(`uplink-${row.name}-pubkey`);
  const keyPem = secret('uplink-hospital-key');
  const resources = parseResources(row.resources);
  const acceptsTest = row.accepts_test === true;
  if (parsed.protocol === 'http:') {
    if (!isLoopback(parsed)) throw new Error(`${where} uses plain http to ${parsed.host}: only a loopback address may skip TLS`);
    if (fromBundle && !keyPem && env.CDC_ENV !== 'production') {
      // A development platform named by a bundle (plain http to loopback): its key, our development one.
      warnOnce('uplink uses the development hospital key (plain http to loopback, no uplink-hospital-key)', row.name);
      return {
        name: row.name,
        kind: row.kind,
        url,
        platformKey: parseSm2PublicKey(fromBundle.publicKey),
        sender: { name: env.UPLINK_SENDER || DEV_SENDER, key: devKey('hospital') },
        resources: parseResources(row.resources),
        acceptsTest: row.accepts_test === true,
      };
    }
    if (!pubPem && !keyPem) {
      if (env.CDC_ENV === 'production')
        throw new Error(`${up}_URL: the well-known development keys are refused when CDC_ENV=production (give the key secrets)`);
      const role = row.kind === 'provincial' ? 'provincial' : 'national';
      warnOnce('uplink uses the well-known development keys (plain http to loopback, no key secrets)', row.name);
      return {
        name: row.name,
        kind: row.kind,
        url,
        platformKey: devKey(role).pub,
        sender: { name: env.UPLINK_SENDER || DEV_SENDER, key: devKey('hospital') },
        resources,
        acceptsTest,
      };
    }
  } else if (parsed.protocol !== 'https:') {
    throw new Error(`${where} must be https://`);
  }
  const { platformKey, key } = signingKeys(row, pubPem, keyPem);
  const tls = parsed.protocol === 'https:' ? hospitalTlsClient(row, secret) : undefined;
  return {
    name: row.name,
    kind: row.kind,
    url,
    platformKey,
    sender: { name: env.UPLINK_SENDER || 'cdc-front', key },
    resources,
    acceptsTest,
    ...(tls ? { tls } : {}),
  };
}

/** The platform's SM2 public key and the hospital's SM2 private key, both required and parsed. */
function signingKeys(row: DestinationRow, pubPem: string | undefined, keyPem: string | undefined): { platformKey: Sm2PublicKey; key: Sm2PrivateKey } {
  if (!pubPem) throw new Error(`secret uplink-${row.name}-pubkey (the platform's SM2 public key) is missing`);
  if (!keyPem) throw new Error('secret uplink-hospital-key (the hospital SM2 private key) is missing');
  let platformKey: Sm2PublicKey;
  let key: Sm2PrivateKey;
  try {
    platformKey = parseSm2PublicKey(pubPem);
  } catch (err) {
    throw new Error(`secret uplink-${row.name}-pubkey: ${(err as Error).message}`);
  }
  try {
    key = parseSm2PrivateKey(keyPem);
  } catch (err) {
    throw new Error(`secret uplink-hospital-key: ${(err as Error).message}`);
  }
  return { platformKey, key };
}

/** The hospital's TLS client certificate for an https destination, with the destination's CA (else uplink-ca) when given. */
function hospitalTlsClient(row: DestinationRow, secret: SecretReader): TlsClient {
  const cert = secret('uplink-client-cert');
  const tlsKey = secret('uplink-client-key');
  if (!cert || !tlsKey) throw new Error('secrets uplink-client-cert and uplink-client-key (the hospital TLS client certificate) are missing');
  const ca = secret(`uplink-${row.name}-ca`) ?? secret('uplink-ca');
  return { cert, key: tlsKey, ...(ca ? { ca } : {}) };
}

/** Enabled destinations, configured or not (with the reason). */
/** Whether the front has a destination of this name (enabled or not): an operator's name is checked against it. */
export async function destinationExists(db: Pick<Db, 'query'>, name: string): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM uplink_destination WHERE name = $1', [name])).rowCount ?? 0) > 0;
}

export async function destinations(db: Db, env: Env, secret: SecretReader = readSecret): Promise<{ ready: Destination[]; unconfigured: Unconfigured[] }> {
  const res = await db.query<DestinationRow>('SELECT name, kind, resources, accepts_test FROM uplink_destination WHERE enabled = true ORDER BY name');
  const bundle = await platformsInForce(db);
  const ready: Destination[] = [];
  const unconfigured: Unconfigured[] = [];
  for (const row of res.rows) {
    try {
      const p = bundle?.get(row.name);
      ready.push(destinationFromEnv(row, env, secret, p ? { url: p.url, publicKey: p.publicKey } : undefined));
    } catch (err) {
      unconfigured.push({ name: row.name, reason: (err as Error).message });
    }
  }
  return { ready, unconfigured };
}
