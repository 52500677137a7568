/**
 * Snoozing a rule (docs/warning.md "Precision and snoozing"): public health silences a noisy trigger
 * until a time, saying why; while it holds, the trigger's raising evidence is kept as 'snoozed' and
 * raises no prompt. Every snooze and lift keeps who, when and why (the rows are never deleted).
 */
import type pg from 'pg';
import { AppError } from '../http/errors.js';

export interface Snooze {
  snoozeId: string;
  trigger: string;
  until: Date;
  reason: string;
  actor: string;
  createdAt: Date;
  liftedAt: Date | null;
  liftedBy: string | null;
}

export async function snooze(
  db: pg.Pool,
  o: { trigger: string; until: Date; reason: string; actor: string; now: Date; known: ReadonlySet<string> },
): Promise<Snooze> {
  if (!o.known.has(o.trigger)) throw new AppError('NOT_FOUND', `没有这个规则：${o.trigger} (unknown trigger)`);
  if (o.until.getTime() <= o.now.getTime())
    throw new AppError('VALIDATION_FAILED', '暂停截止时间应在将来 (until must be in the future)', [
      { field: 'until', rule: 'future', message: '应在将来 (must be in the future)' },
    ]);
  const r = await db.query<{ snooze_id: string }>(
    'INSERT INTO warning_snooze (trigger_id, until_at, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING snooze_id',
    [o.trigger, o.until, o.reason, o.actor, o.now],
  );
  return {
    snoozeId: String(r.rows[0]!.snooze_id),
    trigger: o.trigger,
    until: o.until,
    reason: o.reason,
    actor: o.actor,
    createdAt: o.now,
    liftedAt: null,
    liftedBy: null,
  };
}

/** Lifts the trigger's active snoozes; the number lifted. */
export async function lift(db: pg.Pool, trigger: string, actor: string, now: Date): Promise<number> {
  const r = await db.query('UPDATE warning_snooze SET lifted_at = $3, lifted_by = $2 WHERE trigger_id = $1 AND lifted_at IS NULL AND until_at > $3', [
    trigger,
    actor,
    now,
  ]);
  return r.rowCount ?? 0;
}

/** Every snooze, newest first (the audit), with whether it holds now. */
export async function listSnoozes(db: pg.Pool, now: Date): Promise<Array<Snooze & { active: boolean }>> {
  const rows = (
    await db.query<{
      snooze_id: string;
      trigger_id: string;
      until_at: Date;
      reason: string;
      actor: string;
      created_at: Date;
      lifted_at: Date | null;
      lifted_by: string | null;
    }>('SELECT snooze_id, trigger_id, until_at, reason, actor, created_at, lifted_at, lifted_by FROM warning_snooze ORDER BY snooze_id DESC LIMIT 500')
  ).rows;
  return rows.map((r) => ({
    snoozeId: String(r.snooze_id),
    trigger: r.trigger_id,
    until: r.until_at,
    reason: r.reason,
    actor: r.actor,
    createdAt: r.created_at,
    liftedAt: r.lifted_at,
    liftedBy: r.lifted_by,
    active: r.lifted_at === null && new Date(r.until_at).getTime() > now.getTime(),
  }));
}

/** Duplicate cards and suppressed prompts of an org (or all) since a time, newest first. */
export async function listDuplicates(db: pg.Pool, q: { org?: string; since: Date }) {
  const p1: unknown[] = [q.since];
  const cards = (
    await db.query(
      `SELECT org_code, card_id, other_org, other_id, winner_org, winner_id, rule, reason, at FROM warning_card_duplicate
        WHERE at >= $1${q.org ? ` AND org_code = $${p1.push(q.org)}` : ''} ORDER BY at DESC LIMIT 500`,
      p1,
    )
  ).rows;
  const p2: unknown[] = [q.since];
  const suppressed = (
    await db.query(
      `SELECT org_code, patient_id, disease, rule, card_org, card_id, reason, at FROM warning_suppressed
        WHERE at >= $1${q.org ? ` AND org_code = $${p2.push(q.org)}` : ''} ORDER BY at DESC LIMIT 500`,
      p2,
    )
  ).rows;
  return { cards, suppressed };
}
