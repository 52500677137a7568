// A rollback brings back nothing a key the front no longer trusts signed (docs/config-bundles.md §3): a
// platform key is taken out of config-platform-pubkey because it was lost or stolen, and what it signed
// (a platform's address and key among it) must not return on the configuration token alone.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyBundle, current, parseBundle, rollbackTo } from '../../shared/configbundle/store.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { keyId, type Sm2PrivateKey } from '../../shared/uplink/sm.js';
import { privateDatabase } from '../setup/db.js';
import { bundleDoc, platformKey, triggersWith } from './config-bundles-helpers.js';

let p: Awaited<ReturnType<typeof privateDatabase>>;
beforeAll(async () => {
  p = await privateDatabase('rollback_keys');
});
afterAll(async () => {
  await p?.drop();
});

const stolen = platformKey();
const renewed = platformKey();
const platform = platformKey();
async function apply(doc: string, key: Sm2PrivateKey): Promise<void> {
  const s = signBundle(doc, key);
  await applyBundle(p.db, { text: doc, signature: s.sig.value, keyId: s.sig.keyId, bundle: parseBundle(doc) }, { by: 'test' });
}
const inForce = async () =>
  (await p.db.query<{ area: string; content: string }>('SELECT area, content::text AS content FROM config_active ORDER BY area')).rows;

it('refuses a rollback to what a key no longer trusted signed, naming it, and changes nothing; with the key trusted it rolls back', async () => {
  await apply(
    bundleDoc(1, {
      platforms: [{ name: 'national', kind: 'national', url: 'https://attacker.example.com/', publicKey: platform.publicKeyPem }],
      triggers: triggersWith('rk-one', 'rk-1'),
    }),
    stolen.key,
  );
  await apply(
    bundleDoc(2, {
      platforms: [{ name: 'national', kind: 'national', url: 'https://platform.example.cn/', publicKey: platform.publicKeyPem }],
      triggers: triggersWith('rk-two', 'rk-2'),
    }),
    renewed.key,
  );
  const before = await inForce();
  const err = await rollbackTo(p.db, 1, { by: 'test' }, 'x', [keyId(renewed.key.pub)]).catch((e: unknown) => e);
  expect(err).toMatchObject({ status: 422, code: 'unknown-key' });
  expect(JSON.stringify(err)).toContain(keyId(stolen.key.pub).slice(0, 16));
  expect(await inForce()).toEqual(before);
  expect((await current(p.db))!.step).toMatchObject({ action: 'apply', version: 2 });
  // The key trusted again (the platform's own decision): the rollback goes through.
  await rollbackTo(p.db, 1, { by: 'test' }, 'x', [keyId(renewed.key.pub), keyId(stolen.key.pub)]);
  expect((await current(p.db))!.step).toMatchObject({ action: 'rollback', version: 1 });
});
