// Retiring a key that kept backup archives still need (docs/keys.md "Keys the backups still need"),
// through bin/cdc-keys as a process, on a database of this file's own with backup_archive rows:
// - `status` names, per key, the kept archives taken while values may have been under it (and the
//   oldest's date), and calls an old key retirable only when no stored value and no kept archive needs it;
// - `retire` refuses such a key, naming the archives; `--force` retires it and says which archives
//   can no longer open their personal data;
// - `reencrypt` records in the key file when it found no value left under the old key; archives begun
//   after that no longer need it, and once the older ones age out the key can go;
// - a key file written without those times (by hand, or before) takes the key as needed by every kept archive.
// The ledger rows are inserted directly, as the backup function records them (migration 0019): taking
// real archives of days and weeks apart would need the store and take far too long; which key an
// archive needs is decided from the ledger's times and the key file's alone, never from the archive's bytes.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resources } from '../../schemas/index.js';
import { SYSTEM_TABLES } from '../../shared/backup/run.js';
import { sealedFields } from '../../shared/pii/index.js';
import { KINDS_WITH_SEALED_VALUES, readKeyFile } from '../../shared/pii/rotate.js';
import { privateDatabase } from '../setup/db.js';

let priv: Awaited<ReturnType<typeof privateDatabase>>;
let db: pg.Pool;
const dirs: string[] = [];

beforeAll(async () => {
  priv = await privateDatabase('keyret');
  db = priv.db;
}, 120_000);

afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await priv?.drop();
});

const keysCli = (dir: string, ...args: string[]) => {
  const r = spawnSync('bin/cdc-keys', [...args, '--secrets', dir], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: priv.url },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const DAY = 86_400_000;
const NOW = Date.now();
const at = (daysAgo: number) => new Date(NOW - daysAgo * DAY);
/** As the commands print a time. */
const shown = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** A ledger row as the backup function leaves it; its id. */
async function archive(kind: string, status: string, started: Date, finished: Date | null = new Date(started.getTime() + 10 * 60_000)): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO backup_archive (kind, status, trigger, bucket, object_key, dialect, tool, encryption, started_at, finished_at)
     VALUES ($1, $2, 'cron', 'cdc-front', $3, 'postgresql', 'pg_dump', 'sm4-ctr', $4, $5) RETURNING archive_id AS id`,
    [kind, status, `cdc-front/${kind}/test-${started.getTime()}.dump.sm4`, started, finished],
  );
  return String(r.rows[0]!.id);
}

/** The key file with its times set as if the keys had been made, and the old one emptied, days ago. */
function setTimes(dir: string, times: Record<string, { created?: Date; emptied?: Date | null }>): void {
  const f = JSON.parse(readFileSync(join(dir, 'pii-field-keys'), 'utf8')) as { keys: Record<string, unknown>[] };
  for (const k of f.keys) {
    const t = times[k.id as string];
    if (!t) continue;
    if (t.created) k.created = t.created.toISOString();
    if (t.emptied === null) delete k.emptied;
    else if (t.emptied) k.emptied = t.emptied.toISOString();
  }
  writeFileSync(join(dir, 'pii-field-keys'), JSON.stringify(f, null, 2), { mode: 0o600 });
}

/** The state column of a key's line in `status`. */
const line = (out: string, id: string) => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';

/**
 * No archive in the ledger, and a secrets folder of its own whose key was made by `init` and then
 * rotated by the CLI: the folder and the old key's id.
 */
async function rotatedKeys(): Promise<{ dir: string; old: string }> {
  await db.query('DELETE FROM backup_archive');
  const dir = mkdtempSync(join(tmpdir(), 'cdc-keyret-'));
  dirs.push(dir);
  expect(keysCli(dir, 'init').code).toBe(0);
  const old = readKeyFile(dir).current;
  expect(keysCli(dir, 'rotate').code).toBe(0);
  return { dir, old };
}

describe('bin/cdc-keys and the kept backup archives', () => {
  it('status and retire count the archives taken while a key was in use; --force retires it, naming them', { timeout: 60_000 }, async () => {
    const { dir, old } = await rotatedKeys();
    const cur = readKeyFile(dir).current;
    // The old key made 30 days ago, the rotation 10 days ago; the re-encryption not run yet.
    setTimes(dir, { [old]: { created: at(30) }, [cur]: { created: at(10) } });

    await archive('logical', 'good', at(40)); // before the old key: needs neither
    const a2 = await archive('logical', 'good', at(12)); // under the old key
    const a3 = await archive('physical', 'good', at(9.5)); // after the rotation, before the re-encryption ended
    const a4 = await archive('logical', 'good', at(8)); // after it (once recorded)
    await archive('logical', 'removed', at(11)); // aged out
    await archive('logical', 'failed', at(11)); // never a good archive
    await archive('system', 'good', at(11)); // configuration and code tables: no sealed value

    // Nothing records yet when the old key's values were gone: every kept archive since it was made needs it.
    const before = keysCli(dir, 'status');
    expect(before.code, before.err).toBe(0);
    expect(line(before.out, old)).toMatch(
      new RegExp(
        `unused by live data; 3 archive\\(s\\) up to ${shown(at(8))} still need it — keep it until they age out \\(cdc-keys reencrypt records that no stored value uses it\\)\\s+0\\s+3\\s+${shown(at(12))}`,
      ),
    );
    expect(line(before.out, cur)).toMatch(new RegExp(`current\\s+0\\s+2\\s+${shown(at(9.5))}`));

    // The re-encryption records that no stored value is under the old key (the database holds none).
    const re = keysCli(dir, 'reencrypt');
    expect(re.code, re.err).toBe(0);
    expect(re.out).toContain(`no stored value is under ${old} any more`);
    const emptied = Date.parse(readKeyFile(dir).keys.find((k) => k.id === old)!.emptied!);
    expect(Math.abs(emptied - Date.now())).toBeLessThan(60_000);
    expect(readKeyFile(dir).keys.find((k) => k.id === cur)!.emptied).toBeUndefined();
    // As if that run had ended 9 days ago, a day after the rotation.
    setTimes(dir, { [old]: { emptied: at(9) } });

    const status = keysCli(dir, 'status');
    expect(status.code, status.err).toBe(0);
    expect(line(status.out, old)).toMatch(
      new RegExp(`unused by live data; 2 archive\\(s\\) up to ${shown(at(9.5))} still need it — keep it until they age out\\s+0\\s+2\\s+${shown(at(12))}`),
    );
    expect(status.out).not.toContain('can be retired');

    const refused = keysCli(dir, 'retire', '--id', old);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(
      `key id ${old} is still needed by 2 kept backup archive(s) (logical 1, physical 1) taken from ${shown(at(12))} to ${shown(at(9.5))} (archive id(s) ${a2}, ${a3}): keep it until they age out`,
    );
    expect(refused.err).toContain('--force');
    expect(readKeyFile(dir).keys.map((k) => k.id)).toEqual([old, cur]);

    // Once the two have aged out (retention marks them removed), the key is retirable without --force.
    const aged = mkdtempSync(join(tmpdir(), 'cdc-keyret-'));
    dirs.push(aged);
    cpSync(dir, aged, { recursive: true });
    await db.query(`UPDATE backup_archive SET status = 'removed', removed_at = now() WHERE archive_id IN ($1, $2)`, [a2, a3]);
    expect(line(keysCli(aged, 'status').out, old)).toMatch(/unused: can be retired\s+0\s+0\s+-/);
    const retired = keysCli(aged, 'retire', '--id', old);
    expect(retired).toMatchObject({ code: 0, out: `key ${old} removed from ${aged}/pii-field-keys\n` });
    await db.query(`UPDATE backup_archive SET status = 'good', removed_at = NULL WHERE archive_id IN ($1, $2)`, [a2, a3]);

    // --force: retired all the same, saying which archives can no longer open their personal data.
    const forced = keysCli(dir, 'retire', '--id', old, '--force');
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toContain(`key ${old} removed`);
    expect(forced.out).toContain(
      `--force: 2 kept backup archive(s) (logical 1, physical 1) taken from ${shown(at(12))} to ${shown(at(9.5))} (archive id(s) ${a2}, ${a3}) were sealed with it: they can no longer open their personal data`,
    );
    expect(readKeyFile(dir).keys.map((k) => k.id)).toEqual([cur]);
    expect(a4).toBeTruthy();
  });

  it('a key file without the times (written by hand, or before they were kept) takes every kept archive to need an old key', { timeout: 60_000 }, async () => {
    const { dir, old } = await rotatedKeys();
    const f = JSON.parse(readFileSync(join(dir, 'pii-field-keys'), 'utf8')) as { keys: Record<string, unknown>[] };
    for (const k of f.keys) delete k.created;
    writeFileSync(join(dir, 'pii-field-keys'), JSON.stringify(f), { mode: 0o600 });

    await archive('logical', 'good', at(60));
    await archive('logical', 'running', at(0.01), null); // still reading the database
    const status = keysCli(dir, 'status');
    expect(status.code, status.err).toBe(0);
    expect(line(status.out, old)).toMatch(new RegExp(`unused by live data; 2 archive\\(s\\) up to ${shown(at(0.01))} still need it`));
    expect(keysCli(dir, 'retire', '--id', old)).toMatchObject({
      code: 1,
      err: expect.stringContaining(`key id ${old} is still needed by 2 kept backup archive(s)`),
    });
  });

  it('the archive kinds not counted hold no sealed value', () => {
    expect(KINDS_WITH_SEALED_VALUES).toEqual(['logical', 'physical']);
    const sealedTables = Object.values(resources)
      .filter((r) => sealedFields(r).length > 0)
      .map((r) => r.table);
    expect(sealedTables.length).toBeGreaterThan(0);
    expect(SYSTEM_TABLES.filter((t) => (sealedTables as string[]).includes(t))).toEqual([]);
  });
});
