/**
 * Configuration bundles for tests (docs/config-bundles.md): a private database per file (a bundle
 * changes settings every function reads, so it must never touch the shared test database), bundle
 * documents built from the shipped trigger list and aberration definitions, and their signing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FaasFunction } from '../../shared/fn/index.js';
import type pg from 'pg';
import shippedDefs from '../../shared/aberration/definitions.json' with { type: 'json' };
import shippedTriggers from '../../shared/warning/triggers.json' with { type: 'json' };
import { signBundle } from '../../shared/configbundle/sign.js';
import { BUNDLE_FORMAT } from '../../shared/configbundle/schema.js';
import { generateSm2KeyPair, parseSm2PrivateKey, type Sm2PrivateKey } from '../../shared/uplink/sm.js';
import { privateDatabase } from '../setup/db.js';

export function platformKey(): { key: Sm2PrivateKey; publicKeyPem: string } {
  const pair = generateSm2KeyPair();
  return { key: parseSm2PrivateKey(pair.privateKeyPem), publicKeyPem: pair.publicKeyPem };
}

/** The shipped trigger list with one keyword trigger of our own added (its id shows which list is in force). */
export function triggersWith(keywordId: string, version: string): unknown {
  const t = structuredClone(shippedTriggers) as { version: string; keywords: unknown[] };
  t.version = version;
  t.keywords.push({ id: keywordId, disease: '肺结核', terms: [`${keywordId}术语`] });
  return t;
}

/** The shipped algorithm parameters with EARS's limit changed. */
export function algorithms(earsLimit: number, version: string): unknown {
  const { syndromes: _s, ...rest } = structuredClone(shippedDefs) as Record<string, unknown> & { ears: { limit: number } };
  rest.ears.limit = earsLimit;
  rest.version = version;
  return rest;
}

export function bundleDoc(version: number, sections: Record<string, unknown>): string {
  return JSON.stringify({ format: BUNDLE_FORMAT, version, issuedAt: new Date().toISOString(), issuer: '国家平台(测试)', sections }, null, 1);
}

export const signed = (doc: string, key: Sm2PrivateKey): string => JSON.stringify(signBundle(doc, key));

/**
 * The config function as port 8882 runs it, on a private, migrated database: the platform's bearer
 * token and its SM2 public key as secret files. close() closes the function and drops the database.
 */
export async function configFunctionOn(
  prefix: string,
  token: string,
  platformPublicKeyPem: string,
): Promise<{ fn: FaasFunction; db: pg.Pool; close: () => Promise<void> }> {
  const p = await privateDatabase(prefix);
  const dir = mkdtempSync(join(tmpdir(), `cdc-${prefix}-`));
  writeFileSync(join(dir, 'cdc-database-url'), p.url);
  writeFileSync(join(dir, 'config-token'), `${token}\n`);
  writeFileSync(join(dir, 'config-platform-pubkey'), platformPublicKeyPem);
  process.env.CDC_SECRETS_DIR = dir;
  const fn = ((await import('../../functions/config/handler.js')) as { default: FaasFunction }).default;
  await fn.init!();
  return {
    fn,
    db: p.db,
    close: async () => {
      await fn.close?.();
      await p.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
