/**
 * People on the web console (docs/console.md): users with a role, passwords hashed with scrypt,
 * sessions with idle and absolute expiry, lockout after failed attempts, a CSRF token per session,
 * the Host allow-list, and the audit of every sign-in and change. Never a password, a token or a
 * hash in a log line or an answer.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { concern } from '../config/index.js';
import type { Db } from '../db/index.js';
import { AppError } from '../http/errors.js';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, keylen: number, o: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export const Role = z.enum(['clinician', 'public_health', 'operator', 'admin']);
export type Role = z.infer<typeof Role>;
export const ROLE_NAMES: Record<Role, string> = { clinician: '临床医生', public_health: '公共卫生医师', operator: '运维人员', admin: '管理员' };

export const Username = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_.@-]{2,64}$/, '2–64 letters, digits or _ . @ -');
export const Password = z.string().min(10, 'at least 10 characters').max(200);

export const consoleConcern = concern({
  name: 'console',
  vars: {
    /** Host names (and host:port) the console answers to; anything else is 421 (DNS rebinding). */
    WEB_ALLOWED_HOSTS: z.string().default('localhost,127.0.0.1,[::1]'),
    CONSOLE_IDLE_MIN: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(30),
    CONSOLE_SESSION_H: z.coerce.number().int().min(1).max(72).default(12),
    CONSOLE_LOCKOUT_AFTER: z.coerce.number().int().min(1).max(100).default(5),
    CONSOLE_LOCKOUT_MIN: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(15),
    /** Failed sign-ins from one address, whatever the names, before it is refused for the lockout's time. */
    CONSOLE_SIGNIN_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).max(10_000).default(30),
  },
  build: (v) => ({
    allowedHosts: new Set(
      v.WEB_ALLOWED_HOSTS.split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    ),
    idleMs: v.CONSOLE_IDLE_MIN * 60_000,
    sessionMs: v.CONSOLE_SESSION_H * 3_600_000,
    lockoutAfter: v.CONSOLE_LOCKOUT_AFTER,
    lockoutMs: v.CONSOLE_LOCKOUT_MIN * 60_000,
    addressFailures: v.CONSOLE_SIGNIN_FAILURES_PER_ADDRESS,
  }),
});
export type ConsoleSettings = ReturnType<typeof consoleConcern.build>;

/** Whether the request's Host (with or without its port) is on the list. */
export function hostAllowed(host: string | undefined, s: ConsoleSettings): boolean {
  if (!host) return false;
  const h = host.trim().toLowerCase();
  if (s.allowedHosts.has(h)) return true;
  const bare = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '');
  return s.allowedHosts.has(bare);
}

// ---- passwords --------------------------------------------------------------------------------

const N = 16384;
const R = 8;
const P = 1;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32, { N, r: R, p: P, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([^$]+)\$([^$]+)$/.exec(stored);
  if (!m) {
    // No password (a user made by single sign-on): the same work, so that timing tells nothing.
    await scrypt(password, Buffer.alloc(16), 32, { N, r: R, p: P, maxmem: 64 * 1024 * 1024 });
    return false;
  }
  const expected = Buffer.from(m[5]!, 'base64');
  const got = await scrypt(password, Buffer.from(m[4]!, 'base64'), expected.length, {
    N: Number(m[1]),
    r: Number(m[2]),
    p: Number(m[3]),
    maxmem: 64 * 1024 * 1024,
  });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

// ---- users ------------------------------------------------------------------------------------

export interface ConsoleUser {
  userId: string;
  username: string;
  displayName: string | null;
  role: Role;
  orgs: '*' | string[];
  lockedUntil: Date | null;
  disabled: boolean;
  /** The HIS doctor this user is, when they arrive by single sign-on (docs/console.md "Single sign-on"). */
  his: { org: string; doctor: string } | null;
}

type UserRow = {
  user_id: string;
  username: string;
  display_name: string | null;
  role: Role;
  orgs: string;
  locked_until: Date | null;
  disabled: boolean;
  his_org: string | null;
  his_doctor: string | null;
};
const USER_COLUMNS = 'user_id, username, display_name, role, orgs, locked_until, disabled, his_org, his_doctor';
const userOf = (r: UserRow): ConsoleUser => ({
  userId: r.user_id,
  username: r.username,
  displayName: r.display_name,
  role: r.role,
  orgs: r.orgs === '*' ? '*' : r.orgs.split(',').filter(Boolean),
  lockedUntil: r.locked_until,
  disabled: r.disabled,
  his: r.his_org && r.his_doctor ? { org: r.his_org, doctor: r.his_doctor } : null,
});

export async function audit(
  db: Pick<Db, 'query'>,
  action: string,
  username: string | null,
  detail: string | null,
  address: string | null = null,
): Promise<void> {
  await db.query('INSERT INTO console_audit (username, action, detail, address) VALUES ($1, $2, $3, $4)', [
    username,
    action,
    detail?.slice(0, 1000) ?? null,
    address,
  ]);
}

export async function createUser(
  db: Db,
  u: { username: string; role: Role; password: string; displayName?: string | null; orgs?: '*' | string[] },
  by: string,
): Promise<ConsoleUser> {
  const username = Username.parse(u.username);
  Password.parse(u.password);
  const exists = await db.query('SELECT 1 FROM console_user WHERE username = $1', [username]);
  if (exists.rowCount) throw new AppError('CONFLICT', `用户 ${username} 已存在 (user exists)`);
  const orgs = u.orgs === undefined || u.orgs === '*' ? '*' : u.orgs.join(',');
  const r = await db.query<UserRow>(
    `INSERT INTO console_user (username, display_name, role, orgs, password_hash) VALUES ($1, $2, $3, $4, $5)
     RETURNING ${USER_COLUMNS}`,
    [username, u.displayName ?? null, Role.parse(u.role), orgs, await hashPassword(u.password)],
  );
  await audit(db, 'user-created', by, `${username} as ${u.role}`);
  return userOf(r.rows[0]!);
}

export async function listUsers(db: Db): Promise<ConsoleUser[]> {
  const r = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM console_user ORDER BY username`);
  return r.rows.map(userOf);
}

async function updateUser(db: Db, username: string, set: string, params: unknown[], action: string, by: string, detail: string): Promise<void> {
  const r = await db.query(`UPDATE console_user SET ${set} WHERE username = $1`, [username, ...params]);
  if (!r.rowCount) throw new AppError('NOT_FOUND', `用户 ${username} 不存在 (no such user)`);
  await audit(db, action, by, `${username}: ${detail}`);
}

export const setRole = (db: Db, username: string, role: Role, by: string) =>
  updateUser(db, username, 'role = $2', [Role.parse(role)], 'role-changed', by, role);
export const unlock = (db: Db, username: string, by: string) =>
  updateUser(db, username, 'failed_count = 0, locked_until = NULL', [], 'unlocked', by, 'unlocked');
export async function setDisabled(db: Db, username: string, disabled: boolean, by: string): Promise<void> {
  await updateUser(db, username, 'disabled = $2', [disabled], disabled ? 'disabled' : 'enabled', by, String(disabled));
  // Disabled, every session of the user ends: enabled again, the user signs in again (docs/console.md).
  if (disabled) await endSessions(db, username);
}

/** Ends every open session of the user (a password reset, the user disabled). */
async function endSessions(db: Db, username: string): Promise<void> {
  await db.query('UPDATE console_session SET ended_at = now() WHERE ended_at IS NULL AND user_id = (SELECT user_id FROM console_user WHERE username = $1)', [
    username,
  ]);
}

export async function resetPassword(db: Db, username: string, password: string, by: string): Promise<void> {
  Password.parse(password);
  await updateUser(
    db,
    username,
    'password_hash = $2, password_changed_at = now(), failed_count = 0, locked_until = NULL',
    [await hashPassword(password)],
    'password-reset',
    by,
    'password set',
  );
  // Every session of the user ends with the old password.
  await endSessions(db, username);
}

// ---- sign-in and sessions -----------------------------------------------------------------------

export const tokenHash = (t: string) => createHash('sha256').update(t).digest('hex');

export type SignIn = { ok: true; token: string; csrf: string; user: ConsoleUser } | { ok: false; locked: boolean; until?: Date; fromAddress?: true };

/**
 * A map of what was counted most recently, at most `cap` keys: `put` makes its key the newest and
 * forgets the oldest past the cap, so that a flood of new keys costs bounded memory.
 */
function recentMap<V>(cap: number) {
  const map = new Map<string, V>();
  return {
    get: (key: string) => map.get(key),
    put(key: string, value: V): void {
      map.delete(key);
      map.set(key, value);
      if (map.size > cap) map.delete(map.keys().next().value as string);
    },
  };
}

/**
 * Failed sign-ins per address, whatever the names tried: one address trying many names (each under
 * its lockout) is refused for the lockout's time after `addressFailures` of them, before any
 * password is hashed (docs/console.md "Sign-in, sessions, lockout"). In this process, the oldest
 * addresses forgotten past 10 000.
 */
const addressFailures = recentMap<{ failed: number; since: number }>(10_000);

function addressRefused(address: string | null, s: ConsoleSettings, now: number): Date | null {
  const a = address ? addressFailures.get(address) : undefined;
  if (!a || now - a.since >= s.lockoutMs) return null;
  return a.failed >= s.addressFailures ? new Date(a.since + s.lockoutMs) : null;
}

function countAddressFailure(address: string | null, s: ConsoleSettings, now: number): void {
  if (!address) return;
  const a = addressFailures.get(address);
  const fresh = !a || now - a.since >= s.lockoutMs;
  addressFailures.put(address, fresh ? { failed: 1, since: now } : { failed: a.failed + 1, since: a.since });
}

/**
 * Wrong attempts at a name no one can sign in with (unknown, or a disabled user's), counted and locked
 * as a user's are, so that a lockout does not tell which names exist (docs/console.md "Sign-in,
 * sessions, lockout"). In this process, the oldest names forgotten past 10 000.
 */
const unknownNames = recentMap<{ failed: number; lockedUntil: number }>(10_000);

async function noSuchUser(db: Db, username: string, disabled: string | null, s: ConsoleSettings, address: string | null): Promise<SignIn> {
  const name = username.trim();
  const now = Date.now();
  const seen = unknownNames.get(name);
  // The audit names a disabled user; of a name no one has it keeps only its shape, never what was
  // typed (an ID number, a password typed in the wrong field).
  const shown = disabled ?? maskName(name);
  const why = disabled ? 'disabled user' : 'unknown user';
  if (seen && seen.lockedUntil > now) {
    await audit(db, 'signin-refused', shown, `${why}, locked`, address);
    return { ok: false, locked: true, until: new Date(seen.lockedUntil) };
  }
  // The same work as a real check, so that timing does not tell which usernames exist.
  await verifyPassword('', 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
  // Counted on what is known now, after the check: attempts sent together count one by one and meet
  // the lockout as a user's do (attempt below), not each on the count before any of them.
  const after = Date.now();
  const cur = unknownNames.get(name);
  if (cur && cur.lockedUntil > after) {
    await audit(db, 'signin-refused', shown, `${why}, locked`, address);
    return { ok: false, locked: true, until: new Date(cur.lockedUntil) };
  }
  const failed = (cur?.failed ?? 0) + 1;
  const lock = failed >= s.lockoutAfter;
  unknownNames.put(name, lock ? { failed: 0, lockedUntil: after + s.lockoutMs } : { failed, lockedUntil: 0 });
  await audit(db, lock ? 'lockout' : 'signin-failed', shown, `${why}, ${lock ? `after ${failed} failed attempts` : `failed attempt ${failed}`}`, address);
  return lock ? { ok: false, locked: true, until: new Date(after + s.lockoutMs) } : { ok: false, locked: false };
}

/** A typed name as the audit shows it: its first character, its length. */
function maskName(name: string): string {
  const chars = [...name];
  return chars.length ? `${chars[0]}${'*'.repeat(Math.min(chars.length - 1, 8))}[${chars.length}]` : '(empty)';
}

/**
 * One attempt. A wrong password counts toward the lockout; a locked or disabled user is refused
 * without checking it; an address with too many failures is refused before anything.
 */
export async function signIn(db: Db, username: string, password: string, s: ConsoleSettings, address: string | null): Promise<SignIn> {
  const refusedUntil = addressRefused(address, s, Date.now());
  if (refusedUntil) {
    await audit(db, 'signin-refused', null, 'too many failed sign-ins from this address', address);
    return { ok: false, locked: true, until: refusedUntil, fromAddress: true };
  }
  const out = await attempt(db, username, password, s, address);
  if (!out.ok) countAddressFailure(address, s, Date.now());
  return out;
}

async function attempt(db: Db, username: string, password: string, s: ConsoleSettings, address: string | null): Promise<SignIn> {
  const r = await db.query<UserRow & { password_hash: string; failed_count: number; locked_now: boolean }>(
    `SELECT ${USER_COLUMNS}, password_hash, failed_count,
            coalesce(locked_until > now(), false) AS locked_now
       FROM console_user WHERE username = $1`,
    [username.trim()],
  );
  const row = r.rows[0];
  if (!row || row.disabled) return noSuchUser(db, username, row?.username ?? null, s, address);
  if (row.locked_now) {
    await audit(db, 'signin-refused', row.username, 'locked', address);
    return { ok: false, locked: true, until: row.locked_until! };
  }
  if (!(await verifyPassword(password, row.password_hash))) return wrongPassword(db, row.user_id, row.username, s, address);
  // Right, unless attempts sent beside it locked the account meanwhile: then it is refused as locked.
  const cleared = await db.query(
    `UPDATE console_user SET failed_count = 0, locked_until = NULL WHERE user_id = $1 AND NOT coalesce(locked_until > now(), false) RETURNING user_id`,
    [row.user_id],
  );
  if (cleared.rowCount === 0) return lockedMeanwhile(db, row.user_id, row.username, address);
  const opened = await openSession(db, row.user_id, 'password', s, address);
  await audit(db, 'signin', row.username, null, address);
  return { ok: true, ...opened, user: userOf(row) };
}

/**
 * A wrong password counted in one statement on the row as it is then, so that attempts sent together
 * count one by one (each read-then-write would count the same first failure): the one that meets
 * `lockoutAfter` locks the account, and every one after it while locked is refused as locked.
 */
async function wrongPassword(db: Db, userId: string, username: string, s: ConsoleSettings, address: string | null): Promise<SignIn> {
  const r = await db.query<{ failed_count: number; locked_until: Date | null; locked: boolean; locked_here: boolean }>(
    `UPDATE console_user
        SET failed_count = CASE WHEN coalesce(locked_until > now(), false) THEN failed_count
                                WHEN failed_count + 1 >= $2 THEN 0 ELSE failed_count + 1 END,
            locked_until = CASE WHEN coalesce(locked_until > now(), false) THEN locked_until
                                WHEN failed_count + 1 >= $2 THEN now() + $3 * interval '1 millisecond' ELSE locked_until END
      WHERE user_id = $1
      RETURNING failed_count, locked_until, coalesce(locked_until > now(), false) AS locked,
                coalesce(locked_until = now() + $3 * interval '1 millisecond', false) AS locked_here`,
    [userId, s.lockoutAfter, s.lockoutMs],
  );
  const row = r.rows[0];
  if (!row) return { ok: false, locked: false };
  if (row.locked_here) await audit(db, 'lockout', username, `after ${s.lockoutAfter} failed attempts`, address);
  else if (row.locked) await audit(db, 'signin-refused', username, 'locked', address);
  else await audit(db, 'signin-failed', username, `failed attempt ${row.failed_count}`, address);
  return row.locked ? { ok: false, locked: true, until: row.locked_until! } : { ok: false, locked: false };
}

async function lockedMeanwhile(db: Db, userId: string, username: string, address: string | null): Promise<SignIn> {
  const r = await db.query<{ locked_until: Date }>('SELECT locked_until FROM console_user WHERE user_id = $1', [userId]);
  await audit(db, 'signin-refused', username, 'locked', address);
  return { ok: false, locked: true, until: r.rows[0]?.locked_until ?? new Date() };
}

async function openSession(db: Db, userId: string, via: Session['via'], s: ConsoleSettings, address: string | null): Promise<{ token: string; csrf: string }> {
  const token = randomBytes(32).toString('base64url');
  const csrf = randomBytes(24).toString('base64url');
  await db.query(
    `INSERT INTO console_session (token_hash, user_id, csrf, expires_at, address, via)
     VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond', $5, $6)`,
    [tokenHash(token), userId, csrf, s.sessionMs, address, via],
  );
  return { token, csrf };
}

/** The password hash of a user made by single sign-on: no password verifies against it. */
const NO_PASSWORD = '!sso';

/** The username of a HIS doctor's console user: `<doctor>@<org>` when that is a valid name, else a digest. */
function hisUsername(org: string, doctor: string, digest = false): string {
  const plain = `${doctor}@${org}`;
  if (!digest && Username.safeParse(plain).success) return plain;
  return `his-${createHash('sha256').update(`${org}\u0000${doctor}`).digest('hex').slice(0, 16)}`;
}

/**
 * A console session for the doctor a verified HIS single-sign-on token names (docs/console.md
 * "Single sign-on"): the console user linked to that org and doctor, made the first time as a
 * clinician bound to the org, without a password. The session acts as a clinician whatever the
 * user's role. A disabled user gets none (audited); null then.
 */
export async function ssoSignIn(
  db: Db,
  doctor: { org: string; doctor: string; name: string | null },
  s: ConsoleSettings,
  address: string | null,
): Promise<{ token: string; csrf: string; user: ConsoleUser } | null> {
  const find = async () =>
    (await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM console_user WHERE his_org = $1 AND his_doctor = $2`, [doctor.org, doctor.doctor])).rows[0];
  let row = await find();
  for (let attempt = 0; !row && attempt < 3; attempt++) {
    // A local user may already have the plain name: the digest then.
    const taken = (await db.query('SELECT 1 FROM console_user WHERE username = $1', [hisUsername(doctor.org, doctor.doctor)])).rowCount;
    const username = hisUsername(doctor.org, doctor.doctor, Boolean(taken));
    try {
      row = (
        await db.query<UserRow>(
          `INSERT INTO console_user (username, display_name, role, orgs, password_hash, his_org, his_doctor)
           VALUES ($1, $2, 'clinician', $3, $4, $3, $5) RETURNING ${USER_COLUMNS}`,
          [username, doctor.name?.slice(0, 100) ?? null, doctor.org, NO_PASSWORD, doctor.doctor],
        )
      ).rows[0];
      await audit(db, 'user-created', 'sso', `${username} as clinician (single sign-on)`, address);
    } catch (err) {
      // Two first sign-ins of the same doctor at once: the other one made the user.
      if ((err as { code?: string }).code !== '23505') throw err;
      row = await find();
    }
  }
  if (!row) throw new AppError('CONFLICT', '无法为该医生建立控制台账号 (no console user for the doctor)');
  if (row.disabled) {
    await audit(db, 'signin-refused', row.username, 'disabled user (single sign-on)', address);
    return null;
  }
  const opened = await openSession(db, row.user_id, 'sso', s, address);
  await audit(db, 'signin', row.username, 'single sign-on', address);
  return { ...opened, user: { ...userOf(row), role: 'clinician' } };
}

/** The latest audit rows, newest first (the users page). */
export async function recentAudit(
  db: Db,
  limit = 50,
): Promise<Array<{ at: Date; username: string | null; action: string; detail: string | null; address: string | null }>> {
  return (
    await db.query<{ at: Date; username: string | null; action: string; detail: string | null; address: string | null }>(
      'SELECT at, username, action, detail, address FROM console_audit ORDER BY audit_id DESC LIMIT $1',
      [limit],
    )
  ).rows;
}

export interface Session {
  /** The user, with the role the session acts in: a clinician's for a session opened by a HIS token. */
  user: ConsoleUser;
  csrf: string;
  /** How the session was opened: a password on /login, or a HIS single-sign-on token. */
  via: 'password' | 'sso';
}

/**
 * The session a cookie names, if it is still open (not ended, not idle too long, not past its end);
 * touches it, unless `touch` is false (a page that reloads itself, as 运行状态 does every 30 s, must
 * not keep an unattended PC's session open past CONSOLE_IDLE_MIN).
 */
export async function sessionOf(db: Db, token: string | undefined, s: ConsoleSettings, o: { touch?: boolean } = {}): Promise<Session | null> {
  if (!token || token.length > 100) return null;
  const r = await db.query<UserRow & { csrf: string; via: string; touch: boolean }>(
    `SELECT u.user_id, u.username, u.display_name, u.role, u.orgs, u.locked_until, u.disabled, u.his_org, u.his_doctor, s.csrf, s.via,
            s.last_seen_at < now() - $3 * interval '1 millisecond' AS touch
       FROM console_session s JOIN console_user u ON u.user_id = s.user_id
      WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
        AND s.last_seen_at > now() - $2 * interval '1 millisecond' AND u.disabled = false`,
    // Touched when its last touch is over a minute old, or half the idle period when that is less (CONSOLE_IDLE_MIN may be 1).
    [tokenHash(token), s.idleMs, Math.min(60_000, s.idleMs / 2)],
  );
  const row = r.rows[0];
  if (!row) return null;
  if (row.touch && o.touch !== false) await db.query('UPDATE console_session SET last_seen_at = now() WHERE token_hash = $1', [tokenHash(token)]);
  // A HIS token proves a doctor of the HIS, no more: its session is a clinician's whatever the role.
  const via = row.via === 'sso' ? 'sso' : 'password';
  const user = userOf(row);
  return { user: via === 'sso' ? { ...user, role: 'clinician' } : user, csrf: row.csrf, via };
}

export async function signOut(db: Db, token: string, username: string, address: string | null): Promise<void> {
  await db.query('UPDATE console_session SET ended_at = now() WHERE token_hash = $1 AND ended_at IS NULL', [tokenHash(token)]);
  // The session's searches (shared/console/search.ts) go with it.
  await db.query('DELETE FROM console_search WHERE session_hash = $1', [tokenHash(token)]);
  await audit(db, 'signout', username, null, address);
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(sent: string | undefined, expected: string): boolean {
  if (!sent) return false;
  const a = createHash('sha256').update(sent).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
