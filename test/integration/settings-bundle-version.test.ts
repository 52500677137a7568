// 设置 shows the configuration bundle version in force (docs/console.md 设置, docs/config-bundles.md §4):
// the last step's version as GET /bundles/current reports it, whichever areas that version changed —
// a bundle of triggers only, and rollbacks back and forth, on a private, migrated database.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyBundle, current, parseBundle, rollbackTo } from '../../shared/configbundle/store.js';
import { signBundle } from '../../shared/configbundle/sign.js';
import { keyId } from '../../shared/uplink/sm.js';
import { settingsFacts } from '../../shared/console/figures.js';
import { privateDatabase } from '../setup/db.js';
import { bundleDoc, platformKey, triggersWith } from './config-bundles-helpers.js';

let p: Awaited<ReturnType<typeof privateDatabase>>;
beforeAll(async () => {
  p = await privateDatabase('settings_version');
});
afterAll(async () => {
  await p?.drop();
});

const signer = platformKey();
const platform = platformKey();
async function apply(doc: string): Promise<void> {
  const s = signBundle(doc, signer.key);
  await applyBundle(p.db, { text: doc, signature: s.sig.value, keyId: s.sig.keyId, bundle: parseBundle(doc) }, { by: 'test' });
}

it('names the version of the step in force, not the newest of three areas', async () => {
  expect((await settingsFacts(p.db)).bundleVersion).toBeNull();
  await apply(bundleDoc(1, { platforms: [{ name: 'national', kind: 'national', url: 'https://platform.example.cn/', publicKey: platform.publicKeyPem }] }));
  await apply(bundleDoc(2, { triggers: triggersWith('sv-two', 'sv-2') }));
  expect((await current(p.db))!.step.version).toBe(2);
  expect((await settingsFacts(p.db)).bundleVersion).toBe(2);
  await rollbackTo(p.db, 1, { by: 'test' }, null, [keyId(signer.key.pub)]);
  expect((await settingsFacts(p.db)).bundleVersion).toBe(1);
  await rollbackTo(p.db, 2, { by: 'test' }, null, [keyId(signer.key.pub)]);
  expect((await settingsFacts(p.db)).bundleVersion).toBe((await current(p.db))!.step.version);
  expect((await settingsFacts(p.db)).bundleVersion).toBe(2);
});
