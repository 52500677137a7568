// The code cache ingest reads through (shared/codes/cache.ts), on the real database: mapping per
// policy, no database round trip per lookup, a change seen within the refresh interval by polling,
// onChange, and buffered observations written by MERGE.
import { afterEach, describe, expect, it } from 'vitest';
import { testDb, uniqueOrg } from '../setup/db.js';
import { createCodeCache, type CodeCache } from '../../shared/codes/cache.js';
import { MappingInputSchema } from '../../shared/codes/model.js';
import { deleteMapping, saveMapping, setPolicy } from '../../shared/codes/store.js';

const db = testDb({ max: 6 });
const actor = { by: 'test' };
const caches: CodeCache[] = [];
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()));
});
const cache = async (refreshMs = 60_000, flushMs = 60_000) => {
  const c = await createCodeCache(db, { refreshMs, flushMs });
  caches.push(c);
  return c;
};
const map = (org: string, domain: string, localCode: string, nationalCode?: string, equivalence?: string) =>
  saveMapping(db, MappingInputSchema.parse({ org, domain, localCode, nationalCode, equivalence }), actor);

describe('lookup per policy', () => {
  it('auto (the default): a national code is kept, anything else mapped or unmapped', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'M', '1', 'equal');
    const c = await cache();
    expect(c.policy(org, 'sex')).toBe('auto');
    expect(c.lookup(org, 'sex', '2')).toEqual({ status: 'national', national: '2', nationalName: '女性', mapVersion: 1 });
    expect(c.lookup(org, 'sex', 'M')).toEqual({ status: 'mapped', national: '1', nationalName: '男性', equivalence: 'equal', mapVersion: 1 });
    expect(c.lookup(org, 'sex', 'F')).toEqual({ status: 'unmapped', mapVersion: 1 });
  });

  it('national: only a valid national code passes, anything else is unknown (mappings unused)', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'M', '1');
    await setPolicy(db, org, 'sex', 'national', actor);
    const c = await cache();
    expect(c.lookup(org, 'sex', '1')).toMatchObject({ status: 'national', national: '1' });
    expect(c.lookup(org, 'sex', 'M')).toEqual({ status: 'unknown', mapVersion: 2 });
  });

  it('local: every value is mapped, even one that happens to be a national code', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', '1', '2', 'equal'); // this HIS's 1 is female
    await setPolicy(db, org, 'sex', 'local', actor);
    const c = await cache();
    expect(c.lookup(org, 'sex', '1')).toMatchObject({ status: 'mapped', national: '2', nationalName: '女性' });
    expect(c.lookup(org, 'sex', '2')).toMatchObject({ status: 'unmapped' });
  });

  it('an unmatched mapping stays unmapped, with the reason', async () => {
    const org = uniqueOrg();
    await map(org, 'ethnicity', '99', undefined, 'unmatched');
    const c = await cache();
    expect(c.lookup(org, 'ethnicity', '99')).toEqual({ status: 'unmapped', reason: 'unmatched', equivalence: 'unmatched', mapVersion: 1 });
  });

  it('an org never seen reads with the defaults, and values are trimmed', async () => {
    const c = await cache();
    expect(c.lookup(uniqueOrg(), 'sex', ' 1 ')).toMatchObject({ status: 'national', national: '1', mapVersion: 0 });
    expect(c.lookup(uniqueOrg(), 'drugX', '1')).toMatchObject({ status: 'unmapped' });
  });

  it('answers from memory: 100 000 lookups with no query', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'M', '1');
    const c = await cache();
    let queries = 0;
    const orig = db.query.bind(db);
    (db as unknown as { query: unknown }).query = (...a: unknown[]) => {
      queries++;
      return (orig as (...x: unknown[]) => unknown)(...a);
    };
    try {
      const t0 = performance.now();
      for (let i = 0; i < 100_000; i++) c.lookup(org, 'sex', i % 2 ? 'M' : '2');
      const ms = performance.now() - t0;
      expect(queries).toBe(0);
      expect(ms).toBeLessThan(1000);
    } finally {
      (db as unknown as { query: unknown }).query = orig;
    }
  });
});

describe('refresh by polling the version counter', () => {
  it('sees a new mapping within its refresh interval and tells its listeners which org changed', async () => {
    const org = uniqueOrg();
    const c = await cache(200);
    const heard: string[][] = [];
    c.onChange((orgs) => {
      heard.push(orgs);
    });
    expect(c.lookup(org, 'sex', 'W').status).toBe('unmapped');
    const t0 = Date.now();
    await map(org, 'sex', 'W', '2');
    await expect.poll(() => c.lookup(org, 'sex', 'W').status, { timeout: 2000, interval: 20 }).toBe('mapped');
    expect(Date.now() - t0).toBeLessThan(200 + 500);
    expect(c.version(org)).toBe(1);
    expect(heard.flat()).toContain(org);
  });

  it('sees a deletion and a policy change', async () => {
    const org = uniqueOrg();
    const m = await map(org, 'sex', 'W', '2');
    const c = await cache();
    expect(c.lookup(org, 'sex', 'W').status).toBe('mapped');
    await deleteMapping(db, m.mapping.id, actor);
    await setPolicy(db, org, 'sex', 'national', actor);
    expect(await c.refresh()).toBe(true);
    expect(c.lookup(org, 'sex', 'W')).toEqual({ status: 'unknown', mapVersion: 3 });
    expect(c.policy(org, 'sex')).toBe('national');
    expect(await c.refresh()).toBe(false);
  });

  it('logs a failing listener and still tells the others', async () => {
    const org = uniqueOrg();
    const c = await cache();
    const heard: string[][] = [];
    c.onChange(() => {
      throw new Error('listener broke');
    });
    c.onChange((orgs) => {
      heard.push(orgs);
    });
    await map(org, 'sex', 'W', '2');
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    try {
      expect(await c.refresh()).toBe(true);
    } finally {
      process.stdout.write = write;
    }
    expect(heard.flat()).toContain(org);
    expect(c.lookup(org, 'sex', 'W').status).toBe('mapped');
    const lines = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'error', msg: 'code cache change listener failed', err: 'listener broke' }));
  });
});

describe('observe', () => {
  it('buffers, merges and writes observations with counts, first and last seen, a name sample and held records', async () => {
    const org = uniqueOrg();
    const c = await cache(60_000, 100);
    c.observe(org, 'diagnosis', 'L01', '乙肝', 1);
    c.observe(org, 'diagnosis', 'L01', null, 1);
    c.observe(org, 'diagnosis', 'L02', '高血压');
    const q = () =>
      db.query(
        'SELECT local_code, local_name, seen_count, records_held, first_seen <= last_seen AS ordered FROM code_observed WHERE org_code = $1 ORDER BY local_code',
        [org],
      );
    await expect.poll(async () => (await q()).rowCount, { timeout: 3000 }).toBe(2);
    expect((await q()).rows).toEqual([
      { local_code: 'L01', local_name: '乙肝', seen_count: '2', records_held: 2, ordered: true },
      { local_code: 'L02', local_name: '高血压', seen_count: '1', records_held: 0, ordered: true },
    ]);
    c.observe(org, 'diagnosis', 'L01', '乙型肝炎', -2);
    await c.flush();
    expect((await q()).rows[0]).toMatchObject({ local_name: '乙型肝炎', seen_count: '3', records_held: 0 });
  });

  it('writes at once when maxBuffer distinct codes wait, not only every flushMs', async () => {
    const org = uniqueOrg();
    const c = await createCodeCache(db, { refreshMs: 60_000, flushMs: 60_000, maxBuffer: 2 });
    caches.push(c);
    const count = async () => (await db.query('SELECT local_code FROM code_observed WHERE org_code = $1', [org])).rowCount;
    c.observe(org, 'sex', 'M', '男');
    c.observe(org, 'sex', 'M', '男'); // the same code again: still one waiting
    await new Promise((r) => setTimeout(r, 300));
    expect(await count()).toBe(0);
    c.observe(org, 'sex', 'F', '女');
    await expect.poll(count, { timeout: 3000, interval: 20 }).toBe(2);
  });

  it('close() writes what is buffered', async () => {
    const org = uniqueOrg();
    const c = await createCodeCache(db, { refreshMs: 60_000, flushMs: 60_000 });
    c.observe(org, 'sex', 'M', '男');
    await c.close();
    expect((await db.query('SELECT seen_count FROM code_observed WHERE org_code = $1', [org])).rows).toEqual([{ seen_count: '1' }]);
  });
});
