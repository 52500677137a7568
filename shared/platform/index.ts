/**
 * What the front needs from the Node.js it runs on (docs/runtime.md "Node.js and its OpenSSL"):
 * Node.js 24 or later, and an OpenSSL with the Chinese commercial algorithms the front uses — SM4 in
 * CBC (the uplink's envelope), GCM (personal data at rest) and CTR (backups), and SM3. Node.js's own
 * builds carry OpenSSL 3.5, which has them all; a node linked against an older system OpenSSL (3.0,
 * as Debian bookworm's node 20) lacks SM4-GCM, and would answer every record with a 500. The runtime
 * and every function check this before they serve anything, and refuse to start naming what is missing.
 */
import { getCiphers, getHashes } from 'node:crypto';

export const MIN_NODE_MAJOR = 24;
export const REQUIRED_CIPHERS = ['sm4-cbc', 'sm4-gcm', 'sm4-ctr'] as const;
export const REQUIRED_HASHES = ['sm3'] as const;

export interface Platform {
  node: string;
  openssl: string;
  ciphers: string[];
  hashes: string[];
}

export function currentPlatform(): Platform {
  return { node: process.versions.node, openssl: process.versions.openssl ?? 'none', ciphers: getCiphers(), hashes: getHashes() };
}

/** Each way `p` falls short of what the front needs; empty when it has everything. */
export function platformProblems(p: Platform): string[] {
  const out: string[] = [];
  const major = Number(p.node.split('.')[0]);
  if (!(major >= MIN_NODE_MAJOR)) out.push(`Node.js ${p.node} is older than ${MIN_NODE_MAJOR}`);
  const missing = [...REQUIRED_CIPHERS.filter((c) => !p.ciphers.includes(c)), ...REQUIRED_HASHES.filter((h) => !p.hashes.includes(h))];
  if (missing.length) out.push(`its OpenSSL ${p.openssl} lacks ${missing.join(', ')}`);
  return out;
}

/** Throws, naming every shortfall and the way out, when this process's Node.js cannot run the front. */
export function assertPlatform(p: Platform = currentPlatform()): void {
  const problems = platformProblems(p);
  if (problems.length === 0) return;
  throw new Error(
    `cannot run on this Node.js (${process.execPath}): ${problems.join('; ')}. ` +
      `Run it with Node.js ${MIN_NODE_MAJOR} LTS from nodejs.org or the npm registry (bash infra/dev/node.sh installs it into .tools/node; make does this itself).`,
  );
}
