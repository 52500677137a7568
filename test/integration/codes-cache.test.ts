// The code cache ingest reads through (shared/codes/cache.ts), on the real database: mapping per
// policy, no database round trip per lookup, a change seen within the refresh interval by polling
// (a national list's new version included), onChange, and buffered observations written by MERGE; and what it does when the database fails it
// (a role of its own whose privileges or connections are taken away): a refused write is kept and
// written later, a failed poll keeps the last lists, and close() waits for work under way.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, privateDatabase, testDb, uniqueOrg } from '../setup/db.js';
import { createCodeCache, listsLookedUp, listsOfAllRecords, type CodeCache } from '../../shared/codes/cache.js';
import { resourcesOf } from '../../schemas/index.js';
import { MappingInputSchema } from '../../shared/codes/model.js';
import { withTx } from '../../shared/db/index.js';
import {
  deleteMapping,
  importNational,
  loadNational,
  nationalCodes,
  nationalListState,
  restoreNationalList,
  saveMapping,
  setPolicy,
} from '../../shared/codes/store.js';

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

/**
 * Taps the pool's queries that read code_national: `seen` gets each one's rows. Returns the untapped
 * query, to run a statement unseen or to put it back.
 */
function tapNational(pool: pg.Pool, seen: (rows: Array<{ domain?: string }>) => void): (...a: unknown[]) => Promise<pg.QueryResult> {
  const orig = pool.query.bind(pool) as (...x: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: unknown }).query = async (...a: unknown[]) => {
    const r = await orig(...a);
    if (typeof a[0] === 'string' && /FROM code_national/.test(a[0])) seen(r.rows as Array<{ domain?: string }>);
    return r;
  };
  return orig;
}

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
    // The policy first: a mapping of a national-looking code is refused under auto (docs/code-mapping.md).
    await setPolicy(db, org, 'sex', 'local', actor);
    await map(org, 'sex', '1', '2', 'equal'); // this HIS's 1 is female
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

describe('national lists', () => {
  it('a new version of a national list is seen by the next poll: its codes pass, codes it dropped no longer do, listeners hear "*"', async () => {
    // On a database of its own: a national list is every org's, and a new version replaces it.
    const priv = await privateDatabase('codes_national');
    const c = await createCodeCache(priv.db, { refreshMs: 60_000, flushMs: 60_000 });
    try {
      const org = uniqueOrg();
      const heard: string[][] = [];
      c.onChange((orgs) => {
        heard.push(orgs);
      });
      expect(c.lookup(org, 'drug', 'X001')).toEqual({ status: 'unmapped', mapVersion: 0 });
      await importNational(priv.db, { domain: 'drug', version: 'T1', source: 'drugs-T1.csv', codes: [{ code: 'X001', name: '阿莫西林胶囊' }] });
      expect(c.lookup(org, 'drug', 'X001').status).toBe('unmapped'); // from memory until the poll
      expect(await c.refresh()).toBe(true);
      expect(heard).toEqual([['*']]);
      expect(c.lookup(org, 'drug', 'X001')).toEqual({ status: 'national', national: 'X001', nationalName: '阿莫西林胶囊', mapVersion: 0 });
      await importNational(priv.db, { domain: 'drug', version: 'T2', source: 'drugs-T2.csv', codes: [{ code: 'X002', name: '异烟肼片' }] });
      expect(await c.refresh()).toBe(true);
      expect(c.lookup(org, 'drug', 'X002')).toMatchObject({ status: 'national', national: 'X002' });
      expect(c.lookup(org, 'drug', 'X001')).toEqual({ status: 'unmapped', mapVersion: 0 });
      expect(await c.refresh()).toBe(false);
    } finally {
      await c.close();
      await priv.drop();
    }
  });
});

describe('a large national list', () => {
  it('is read in pages — no query returns more than a page — with the same codes as read whole, and whole when its count is wrong', async () => {
    const priv = await privateDatabase('codes_paged');
    try {
      const drugs = Array.from({ length: 2345 }, (_, i) => ({ code: `P${String(i).padStart(5, '0')}`, name: `分页药品${i}` }));
      await importNational(priv.db, { domain: 'drug', version: 'P1', source: 'drugs-P1.csv', codes: drugs });
      const whole = await loadNational(priv.db, null, 1_000_000);
      expect(whole.get('drug')?.size).toBe(2345);
      // Rows per query that reads code_national, from here on.
      const sizes: number[] = [];
      const orig = tapNational(priv.db, (rows) => sizes.push(rows.length));
      const paged = await loadNational(priv.db, null, 500);
      expect(paged).toEqual(whole);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(500);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe([...whole.values()].reduce((a, m) => a + m.size, 0));
      sizes.length = 0;
      expect(await loadNational(priv.db, ['drug', 'sex'], 500)).toEqual(
        new Map([
          ['sex', whole.get('sex')],
          ['drug', whole.get('drug')],
        ]),
      );
      expect(Math.max(...sizes)).toBeLessThanOrEqual(500);
      // A count that says the list is small: read in the first query, all of it.
      await orig("UPDATE code_domain SET code_count = 3 WHERE domain = 'drug'");
      expect((await loadNational(priv.db, ['drug'], 500)).get('drug')?.size).toBe(2345);
    } finally {
      await priv.drop();
    }
  });
});

describe('the lists a function holds', () => {
  it('holds only the lists its records look codes up in: a drug list no field takes is neither read at start nor again when it changes', async () => {
    const priv = await privateDatabase('codes_held');
    const drugs = Array.from({ length: 2000 }, (_, i) => ({ code: `H${String(i).padStart(5, '0')}`, name: `持有药品${i}` }));
    await importNational(priv.db, { domain: 'drug', version: 'H1', source: 'drugs-H1.csv', codes: drugs });
    const lists = listsLookedUp(resourcesOf('patient'));
    expect(lists).toContain('sex');
    expect(lists).not.toContain('drug');
    expect(listsOfAllRecords()).not.toContain('drug');
    // Every row read from code_national, by domain, from here on.
    const read: string[] = [];
    tapNational(priv.db, (rows) => read.push(...rows.map((x) => x.domain ?? '?')));
    const c = await createCodeCache(priv.db, { refreshMs: 60_000, flushMs: 60_000, lists });
    try {
      const org = uniqueOrg();
      expect(read).not.toContain('drug');
      expect(read).toContain('sex');
      expect(c.lookup(org, 'sex', '1').status).toBe('national');
      expect(c.lookup(org, 'drug', 'H00001').status).toBe('unmapped');
      read.length = 0;
      await importNational(priv.db, { domain: 'drug', version: 'H2', source: 'drugs-H2.csv', codes: drugs.slice(0, 1000) });
      await c.refresh();
      expect(read).toEqual([]);
      const sex = await nationalListState(priv.db, 'sex');
      read.length = 0;
      await importNational(priv.db, {
        domain: 'sex',
        version: 'H-sex',
        source: 'sex.csv',
        codes: [...sex.codes.map((x) => ({ code: x.code, name: x.name })), { code: '8', name: '测试性别八' }],
      });
      expect(await c.refresh()).toBe(true);
      expect(new Set(read)).toEqual(new Set(['sex']));
      expect(c.lookup(org, 'sex', '8').status).toBe('national');
    } finally {
      await c.close();
      await priv.drop();
    }
  });
});

describe('a change of one national list', () => {
  it('reloads that list only — a full drug list is not read again for 4 education codes — and its new codes, a list put back by a rollback and a list emptied are seen', async () => {
    const priv = await privateDatabase('codes_one_list');
    const drugs = Array.from({ length: 2000 }, (_, i) => ({ code: `D${String(i).padStart(5, '0')}`, name: `测试药品${i}` }));
    const drugBefore = await nationalListState(priv.db, 'drug'); // no drug list yet
    await importNational(priv.db, { domain: 'drug', version: 'D1', source: 'drugs-D1.csv', codes: drugs });
    const c = await createCodeCache(priv.db, { refreshMs: 60_000, flushMs: 60_000 });
    // Every row the cache reads from code_national, by domain, from here on.
    const read: string[] = [];
    const orig = tapNational(priv.db, (rows) => read.push(...rows.map((x) => x.domain ?? '?')));
    try {
      const org = uniqueOrg();
      const seeded = await nationalCodes(priv.db, 'education');
      const old = seeded[0]!.code;
      const educationBefore = await nationalListState(priv.db, 'education');
      expect(c.lookup(org, 'drug', 'D01999')).toMatchObject({ status: 'national', nationalName: '测试药品1999' });

      await importNational(priv.db, {
        domain: 'education',
        version: 'E-T1',
        source: 'education-T1.csv',
        codes: ['E1', 'E2', 'E3', 'E4'].map((code) => ({ code, name: `学历${code}` })),
      });
      read.length = 0;
      expect(await c.refresh()).toBe(true);
      expect(read).toEqual(['education', 'education', 'education', 'education']);
      expect(c.lookup(org, 'education', 'E3')).toMatchObject({ status: 'national', nationalName: '学历E3' });
      expect(c.lookup(org, 'education', old)).toMatchObject({ status: 'unmapped' });
      expect(c.lookup(org, 'drug', 'D01999')).toMatchObject({ status: 'national', nationalName: '测试药品1999' }); // kept

      // A rollback puts the education list back (a configuration bundle's, docs/config-bundles.md §4).
      await withTx(priv.db, (tx) => restoreNationalList(tx, 'education', educationBefore));
      read.length = 0;
      expect(await c.refresh()).toBe(true);
      expect(new Set(read)).toEqual(new Set(['education']));
      expect(read).toHaveLength(seeded.length);
      expect(c.lookup(org, 'education', old)).toMatchObject({ status: 'national', national: old });
      expect(c.lookup(org, 'education', 'E3')).toMatchObject({ status: 'unmapped' });

      // The drug list put back to none: its codes leave the cache; nothing else is read.
      await withTx(priv.db, (tx) => restoreNationalList(tx, 'drug', drugBefore));
      read.length = 0;
      expect(await c.refresh()).toBe(true);
      expect(read).toEqual([]);
      expect(c.lookup(org, 'drug', 'D01999')).toEqual({ status: 'unmapped', mapVersion: 0 });
      expect(c.lookup(org, 'education', old)).toMatchObject({ status: 'national' });
      expect(await c.refresh()).toBe(false);
    } finally {
      (priv.db as unknown as { query: unknown }).query = orig;
      await c.close();
      await priv.drop();
    }
  });

  it('a cache started while lists change misses none of them: what it read at start is at least as new as the versions it took', async () => {
    const priv = await privateDatabase('codes_start_race');
    try {
      // The versions are read first: a list written after them is read again by the first poll.
      const orig = priv.db.query.bind(priv.db);
      let written = false;
      (priv.db as unknown as { query: unknown }).query = async (...a: unknown[]) => {
        const r = await (orig as (...x: unknown[]) => Promise<unknown>)(...a);
        if (!written && typeof a[0] === 'string' && /FROM code_map_version/.test(a[0])) {
          written = true;
          await importNational(priv.db, { domain: 'drug', version: 'R1', source: 'race.csv', codes: [{ code: 'R001', name: '竞态药品' }] });
        }
        return r;
      };
      const c = await createCodeCache(priv.db, { refreshMs: 60_000, flushMs: 60_000 });
      (priv.db as unknown as { query: unknown }).query = orig;
      try {
        expect(written).toBe(true);
        await c.refresh();
        expect(c.lookup(uniqueOrg(), 'drug', 'R001')).toMatchObject({ status: 'national', nationalName: '竞态药品' });
      } finally {
        await c.close();
      }
    } finally {
      await priv.drop();
    }
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
    // A release is no sighting (the records were counted when they came), nor is a change of records held.
    c.observe(org, 'diagnosis', 'L01', '乙型肝炎', -2);
    c.held(org, 'diagnosis', 'L02', 1);
    await c.flush();
    expect((await q()).rows).toEqual([
      { local_code: 'L01', local_name: '乙型肝炎', seen_count: '2', records_held: 0, ordered: true },
      { local_code: 'L02', local_name: '高血压', seen_count: '1', records_held: 1, ordered: true },
    ]);
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

// The cache on a pool of its own, logged in as a role of its own with just the privileges the cache
// needs: the test takes a privilege or the role's connections away — the real server then refuses the
// cache's statements — and gives them back.
describe('when the database fails the cache', () => {
  const role = `codecache_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  let rolePool: pg.Pool;
  beforeAll(async () => {
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await db.query(`GRANT SELECT ON code_national, code_domain, code_map_version, code_mapping, code_policy TO ${role}`);
    await db.query(`GRANT SELECT, INSERT, UPDATE ON code_observed TO ${role}`);
    const u = new URL(databaseUrl());
    u.username = role;
    u.password = password;
    rolePool = new pg.Pool({ connectionString: u.toString(), max: 2 });
    // As openPool (shared/db): an idle connection whose backend is terminated must not end the process.
    rolePool.on('error', () => undefined);
  });
  afterEach(async () => {
    // Whatever a test took away, given back (before the outer afterEach closes the caches).
    await db.query(`GRANT SELECT ON code_national, code_domain, code_map_version, code_mapping, code_policy TO ${role}`);
    await db.query(`GRANT SELECT, INSERT, UPDATE ON code_observed TO ${role}`);
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
  });
  afterAll(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await rolePool?.end();
    await db.query(`DROP OWNED BY ${role}`);
    await db.query(`DROP ROLE ${role}`);
  });

  const roleCache = async (refreshMs = 60_000, flushMs = 60_000) => {
    const c = await createCodeCache(rolePool, { refreshMs, flushMs });
    caches.push(c);
    return c;
  };
  const observed = async (org: string) =>
    (await db.query('SELECT local_code, local_name, seen_count, records_held FROM code_observed WHERE org_code = $1 ORDER BY local_code', [org])).rows;

  /** The JSON log lines written to stdout from now until restore() (log lines carry no personal data). */
  function captureLog() {
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
    const lines = () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    return {
      lines,
      count: (msg: string) => lines().filter((l) => l.msg === msg).length,
      restore: () => {
        process.stdout.write = write;
      },
    };
  }
  const REFRESH_FAILED = 'code cache refresh failed; serving the last lists';
  const NOT_WRITTEN = 'code observations not written yet; kept for the next flush';

  /**
   * A mapping changes while every timed poll fails: two failures are logged after the change (polls
   * run one after another, so the second began after it), and the cache still answers with the
   * lists it had (the new mapping unseen, version 1).
   */
  async function failingPollsServeTheLastLists(c: CodeCache, org: string, log: ReturnType<typeof captureLog>): Promise<void> {
    await map(org, 'sex', 'W', '2');
    const before = log.count(REFRESH_FAILED);
    await expect.poll(() => log.count(REFRESH_FAILED), { timeout: 5000, interval: 10 }).toBeGreaterThanOrEqual(before + 2);
    expect(c.lookup(org, 'sex', 'M')).toMatchObject({ status: 'mapped', national: '1', mapVersion: 1 });
    expect(c.lookup(org, 'sex', 'W')).toEqual({ status: 'unmapped', mapVersion: 1 });
  }

  it('a write the database refuses is kept, merged with what came meanwhile, and written by a later flush: nothing is lost, counts add up', async () => {
    const org = uniqueOrg();
    const c = await roleCache();
    c.observe(org, 'diagnosis', 'L01', '乙肝', 1);
    await c.flush();
    expect(await observed(org)).toEqual([{ local_code: 'L01', local_name: '乙肝', seen_count: '1', records_held: 1 }]);

    await db.query(`REVOKE INSERT, UPDATE ON code_observed FROM ${role}`);
    const log = captureLog();
    try {
      c.observe(org, 'diagnosis', 'L01', null, 1);
      c.observe(org, 'diagnosis', 'L01', null, 1);
      c.observe(org, 'diagnosis', 'L02', '高血压');
      const failing = c.flush();
      // Seen while the refused write is under way: buffered apart from its batch, merged with it after.
      c.observe(org, 'diagnosis', 'L01', '乙型肝炎', -1);
      c.observe(org, 'diagnosis', 'L03', null);
      await failing;
      expect(await observed(org)).toHaveLength(1);
      await c.flush(); // refused again: still kept
      expect(await observed(org)).toEqual([{ local_code: 'L01', local_name: '乙肝', seen_count: '1', records_held: 1 }]);
    } finally {
      log.restore();
    }
    const warned = log.lines().filter((l) => l.msg === NOT_WRITTEN);
    expect(warned).toEqual([
      expect.objectContaining({ level: 'warn', codes: 2, err: expect.stringMatching(/permission denied/) }),
      expect.objectContaining({ level: 'warn', codes: 3, err: expect.stringMatching(/permission denied/) }),
    ]);

    await db.query(`GRANT SELECT, INSERT, UPDATE ON code_observed TO ${role}`);
    await c.flush();
    expect(await observed(org)).toEqual([
      { local_code: 'L01', local_name: '乙型肝炎', seen_count: '3', records_held: 2 }, // the release (−1) is no sighting
      { local_code: 'L02', local_name: '高血压', seen_count: '1', records_held: 0 },
      { local_code: 'L03', local_name: null, seen_count: '1', records_held: 0 },
    ]);
    await c.flush(); // nothing left over to write twice
    expect((await observed(org))[0]).toMatchObject({ seen_count: '3', records_held: 2 });
  });

  it('a timed poll that fails half-way (versions read, mappings refused) is logged, the last lists keep serving, and the next poll that works reloads', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'M', '1');
    const c = await roleCache(50);
    const heard: string[] = [];
    c.onChange((orgs) => {
      heard.push(...orgs);
    });
    await db.query(`REVOKE SELECT ON code_mapping FROM ${role}`);
    const log = captureLog();
    try {
      await failingPollsServeTheLastLists(c, org, log);
      expect(c.version(org)).toBe(1);
      expect(heard).not.toContain(org);
    } finally {
      log.restore();
    }
    expect(log.lines()).toContainEqual(expect.objectContaining({ level: 'warn', msg: REFRESH_FAILED, err: expect.stringMatching(/permission denied/) }));

    await db.query(`GRANT SELECT ON code_mapping TO ${role}`);
    await expect.poll(() => c.lookup(org, 'sex', 'W').status, { timeout: 5000, interval: 10 }).toBe('mapped');
    expect(c.version(org)).toBe(2);
    expect(heard).toContain(org);
  });

  it('a timed poll that cannot reach the database is logged, the last lists keep serving, and polling goes on until it can', async () => {
    const org = uniqueOrg();
    await map(org, 'sex', 'M', '1');
    const c = await roleCache(50);
    // The role may not connect, and its connections are ended: every poll now fails to connect or
    // finds its connection gone.
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    const log = captureLog();
    try {
      await failingPollsServeTheLastLists(c, org, log);
    } finally {
      log.restore();
    }
    await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
    await expect.poll(() => c.lookup(org, 'sex', 'W').status, { timeout: 5000, interval: 10 }).toBe('mapped');
    expect(c.version(org)).toBe(2);
  });

  it('close() waits for a flush under way: when it returns, the write is done', async () => {
    const org = uniqueOrg();
    const c = await roleCache();
    c.observe(org, 'sex', 'M', '男');
    await c.flush();
    // Another session holds the row: the cache's next MERGE waits on it.
    const holder = await db.connect();
    let closed = false;
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM code_observed WHERE org_code = $1 AND domain = 'sex' AND local_code = 'M' FOR UPDATE", [org]);
      c.observe(org, 'sex', 'M', '男');
      const flushing = c.flush();
      await expect
        .poll(async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'", [role])).rowCount, {
          timeout: 5000,
          interval: 10,
        })
        .toBe(1);
      const closing = c.close().then(() => {
        closed = true;
      });
      await db.query('SELECT 1'); // a round trip: close() had time to return if it did not wait
      expect(closed).toBe(false);
      await holder.query('ROLLBACK');
      await closing;
      expect(await observed(org)).toEqual([{ local_code: 'M', local_name: '男', seen_count: '2', records_held: 0 }]);
      await flushing;
    } finally {
      if (!closed) await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
  });

  it('close() waits for a timed refresh under way, its listeners included', async () => {
    const org = uniqueOrg();
    const c = await roleCache(50);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered = false;
    let finished = false;
    c.onChange(async (orgs) => {
      if (!orgs.includes(org)) return;
      entered = true;
      await gate;
      finished = true;
    });
    await map(org, 'sex', 'W', '2');
    await expect.poll(() => entered, { timeout: 5000, interval: 10 }).toBe(true);
    let closed = false;
    const closing = c.close().then(() => {
      closed = true;
    });
    await db.query('SELECT 1');
    expect(closed).toBe(false);
    open();
    await closing;
    expect(finished).toBe(true);
  });

  it('close() waiting for a refresh that fails still returns (no rejection), while the refresh’s caller gets the error', async () => {
    const c = await roleCache();
    await db.query(`REVOKE SELECT ON code_map_version FROM ${role}`);
    const refreshing = c.refresh();
    const closing = c.close();
    await expect(refreshing).rejects.toThrow(/permission denied/);
    await expect(closing).resolves.toBeUndefined();
  });

  // More than 200 codes go out as one MERGE per 200 (store.ts recordObserved), each its own statement.
  const impatient = testDb({ max: 2, options: '-c lock_timeout=100' });
  it('a write that fails after its first 200 codes were written counts none of them twice', async () => {
    const org = uniqueOrg();
    const c = await createCodeCache(impatient, { refreshMs: 60_000, flushMs: 60_000 });
    caches.push(c);
    const codes = Array.from({ length: 250 }, (_, i) => `C${String(i).padStart(3, '0')}`);
    for (const code of codes) c.observe(org, 'drug', code, null);
    await c.flush();
    // Another session holds a row of the second MERGE: the first commits, the second gives up (55P03).
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM code_observed WHERE org_code = $1 AND domain = 'drug' AND local_code = 'C249' FOR UPDATE", [org]);
      for (const code of codes) c.observe(org, 'drug', code, null);
      const log = captureLog();
      try {
        await c.flush();
      } finally {
        log.restore();
      }
      expect(log.lines()).toContainEqual(expect.objectContaining({ level: 'warn', msg: NOT_WRITTEN, codes: 250 }));
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    await c.flush();
    const counts = await db.query<{ seen_count: string; n: string }>(
      'SELECT seen_count, count(*) AS n FROM code_observed WHERE org_code = $1 GROUP BY seen_count ORDER BY seen_count',
      [org],
    );
    expect(counts.rows).toEqual([{ seen_count: '2', n: '250' }]);
  });
});
