// Nudges to the warning function (docs/warning.md "Reminders"): a replica serves one nudge at a time,
// and nudges that arrive meanwhile are answered at once, folded into it — a burst of nudges must not
// hold the function's max_inflight slots (the cron and the operators' calls would get 429). Here a
// run is made busy by holding the warning run's lock (on a private database: the lock is the
// database's), four nudges arrive together: three are folded at once, the fourth waits for the lock
// and runs when it is free.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateDatabase } from '../setup/db.js';

const priv = await privateDatabase('nudges');
process.env.CDC_SECRETS_DIR = mkdtempSync(join(tmpdir(), 'warning-nudges-'));
process.env.DATABASE_URL = priv.url;
const { default: warning } = await import('../../functions/warning/handler.js');
// The warning run's lock key (shared/warning/store.ts): held here, a run finds another one busy.
const LOCK = BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update('cdc-front warning run').digest('hex').slice(0, 16))).toString();

beforeAll(async () => {
  await warning.init?.();
});
afterAll(async () => {
  await warning.close?.();
  await priv.drop();
});

const nudge = async () => {
  const res = await warning.app.request('/', { method: 'POST', headers: { 'x-nudge': 'ingest' } });
  return { status: res.status, body: (await res.json()) as { skipped?: string; evaluated: number }, at: Date.now() };
};

describe('nudges to the warning function', () => {
  it('are served one at a time per replica; the others are answered at once', { timeout: 30_000 }, async () => {
    const holder = new pg.Client({ connectionString: priv.url });
    await holder.connect();
    try {
      expect((await holder.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK])).rows[0]!.ok).toBe(true);
      const t0 = Date.now();
      const served = nudge();
      await new Promise((r) => setTimeout(r, 50));
      const others = await Promise.all([nudge(), nudge(), nudge()]);
      for (const o of others) {
        expect(o.status).toBe(200);
        expect(o.body.skipped).toBe('folded into the nudge being served');
      }
      // Answered while the lock is still held: none of them waited for the busy run.
      expect(Math.max(...others.map((o) => o.at - t0))).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 300));
      await holder.query('SELECT pg_advisory_unlock($1)', [LOCK]);
      const s = await served;
      expect(s.status).toBe(200);
      // It waited for the lock, then ran (and once more, for the nudges folded into it).
      expect(s.body.skipped).toBeUndefined();
      expect(s.at - t0).toBeGreaterThanOrEqual(300);
    } finally {
      await holder.end();
    }
  });
});
