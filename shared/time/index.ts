/**
 * Time as senders really send it. A HIS sends local wall-clock times ("yyyy-MM-dd HH:mm:ss",
 * the notice's format) meaning the hospital's zone (Asia/Shanghai unless configured); values that
 * carry an offset or "Z" (ISO 8601) say their own zone. Java adapters also emit epoch milliseconds
 * (Jackson's default for java.util.Date) and "yyyy-MM-dd'T'HH:mm:ss.SSS" (LocalDateTime).
 * Everything is stored as timestamptz.
 *
 * A value keeps the precision it was sent with (docs/data-set.md "Times"): a date without a time
 * ("2025-03-10") means that day, not its midnight, and one without seconds that minute. Such values
 * are a PreciseDate (a Date at the start of the day or minute, carrying `precision`); every other
 * value is a plain Date, to the second (milliseconds, when sent, are kept in storage but not
 * compared). Comparisons between times use the coarser precision of the two (compareTimes).
 */

export type Precision = 'day' | 'minute' | 'second';

/** A time sent as a date ("2025-03-10") or to the minute: the start of that day or minute, with its precision. */
export class PreciseDate extends Date {
  constructor(
    ms: number,
    readonly precision: 'day' | 'minute',
  ) {
    super(ms);
  }
}

export function precisionOf(t: Date): Precision {
  return t instanceof PreciseDate ? t.precision : 'second';
}

const RANK: Record<Precision, number> = { day: 0, minute: 1, second: 2 };

/**
 * Compares two times at the coarser precision of the two, in the zone's calendar: a date-only
 * "2025-03-10" equals every time of that day, "08:00" every second of that minute, and a time with
 * milliseconds equals the same second sent without them. Negative, zero or positive.
 */
export function compareTimes(a: Date, b: Date, timeZone = 'Asia/Shanghai'): number {
  const p = RANK[precisionOf(a)] < RANK[precisionOf(b)] ? precisionOf(a) : precisionOf(b);
  if (p === 'day') {
    const da = formatLocal(a, timeZone).slice(0, 10);
    const db = formatLocal(b, timeZone).slice(0, 10);
    return da < db ? -1 : da > db ? 1 : 0;
  }
  const unit = p === 'minute' ? 60_000 : 1000;
  return Math.floor(a.getTime() / unit) - Math.floor(b.getTime() / unit);
}

/** The form a time is stored and forwarded in: "yyyy-MM-dd" for a date, else "yyyy-MM-dd HH:mm:ss". */
export function formatSent(t: Date, timeZone = 'Asia/Shanghai'): string {
  const s = formatLocal(t, timeZone);
  return precisionOf(t) === 'day' ? s.slice(0, 10) : s;
}

const LOCAL_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?$/;
const COMPACT_RE = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$/;
const SLASH_RE = /^(\d{4})\/(\d{1,2})\/(\d{1,2})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;
const ZONED_RE = /(?:Z|[+-]\d{2}:?\d{2})$/i;

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

const dayCache = new Map<string, number | null>();

function formatterOf(timeZone: string): Intl.DateTimeFormat {
  let f = offsetFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    offsetFormatters.set(timeZone, f);
  }
  return f;
}

function exactOffset(timeZone: string, ms: number): number {
  const at = Math.floor(ms / 1000) * 1000;
  const p = Object.fromEntries(
    formatterOf(timeZone)
      .formatToParts(new Date(at))
      .map((x) => [x.type, x.value]),
  );
  const asUtc = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!);
  return Math.round((asUtc - at) / 60_000);
}

/**
 * The zone's offset from UTC, in minutes, at the given instant. Intl's formatToParts is slow (it
 * was the pipeline's hottest function), so offsets are cached per zone and UTC day: a day whose
 * start and end have the same offset has it throughout (China since 1991: every day); a day with
 * a transition is computed exactly.
 */
export function zoneOffsetMinutes(timeZone: string, at: Date): number {
  const ms = at.getTime();
  const day = Math.floor(ms / 86_400_000);
  const key = `${timeZone}|${day}`;
  let same = dayCache.get(key);
  if (same === undefined) {
    const start = exactOffset(timeZone, day * 86_400_000);
    const end = exactOffset(timeZone, (day + 1) * 86_400_000 - 1000);
    same = start === end ? start : null;
    if (dayCache.size > 100_000) dayCache.clear();
    dayCache.set(key, same);
  }
  return same ?? exactOffset(timeZone, ms);
}

/** A wall-clock time in a zone → the instant (handles historic DST, e.g. China 1986–1991). */
export function fromLocalParts(timeZone: string, y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): Date | null {
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return null;
  const naive = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const check = new Date(naive);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return null; // 2023-02-30
  let guess = naive - zoneOffsetMinutes(timeZone, new Date(naive)) * 60_000;
  guess = naive - zoneOffsetMinutes(timeZone, new Date(guess)) * 60_000;
  return new Date(guess);
}

/** Clinical times outside these years are typing errors, not history (and overflow lateness). */
const EARLIEST = Date.UTC(1850, 0, 1);
const LATEST = Date.UTC(2200, 0, 1);

/** A day without an hour, or a time without seconds, keeps that precision. */
function precise(t: Date | null, hour: string | undefined, second: string | undefined): Date | null {
  if (!t) return null;
  if (hour === undefined) return new PreciseDate(t.getTime(), 'day');
  if (second === undefined) return new PreciseDate(t.getTime(), 'minute');
  return t;
}

/** Parses a sender's time value; null when it is not a time we understand, or not a plausible one. */
export function parseTime(value: unknown, timeZone = 'Asia/Shanghai'): Date | null {
  const t = parseAny(value, timeZone);
  return t && t.getTime() >= EARLIEST && t.getTime() < LATEST ? t : null;
}

function parseAny(value: unknown, timeZone: string): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === 'number') {
    // A compact date or time sent as a number (yyyyMMdd, yyyyMMddHHmmss: a HIS column of NUMBER(8)
    // or NUMBER(14)) reads as the same digits in a string, never as epoch seconds of 1970–1973
    // (docs/data-set.md "Times").
    if (Number.isInteger(value) && ((value >= 1e7 && value < 1e8) || (value >= 1e13 && value < 1e14))) return parseAny(String(value), timeZone);
    // Epoch milliseconds, negative before 1970 (the HIS guide's form, Jackson's default for a Java
    // date); ten digits are epoch seconds (2001-09-09 to 2286), as other senders write them — as
    // milliseconds they would be a time in the first months of 1970. Implausible years: parseTime.
    const ms = value >= 1e9 && value < 1e10 ? value * 1000 : value;
    // Not a time: a fraction of a millisecond (1.5), or within a second of the epoch — 0, -1, 1:
    // a missing date sent as a number (docs/data-set.md "Times"), never a real instant (1970-01-01
    // in Beijing is -28800000).
    if (ms === value && (!Number.isInteger(ms) || Math.abs(ms) < 1000)) return null;
    return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms) : null;
  }
  if (Array.isArray(value)) return fromJavaTimeArray(value, timeZone);
  if (typeof value !== 'string') return null;
  const v = value.trim();
  if (/^-?\d{12,13}$/.test(v)) return parseAny(Number(v), timeZone);
  let m = LOCAL_RE.exec(v) ?? SLASH_RE.exec(v);
  if (m) {
    const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
    return precise(fromLocalParts(timeZone, +m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), ms), m[4], m[6]);
  }
  m = COMPACT_RE.exec(v);
  if (m) return precise(fromLocalParts(timeZone, +m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)), m[4], m[6]);
  if (ZONED_RE.test(v) && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(v)) {
    const t = Date.parse(v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    return Number.isNaN(t) ? null : new Date(t);
  }
  return null;
}

/**
 * A java.time value as Jackson writes it while WRITE_DATES_AS_TIMESTAMPS is on (its default outside
 * Spring Boot): a LocalDate as [y, M, d], that day; a LocalDateTime as [y, M, d, H, m], with the
 * seconds and then the nanoseconds appended only when not zero, an exact time (docs/data-set.md "Times").
 */
function fromJavaTimeArray(a: unknown[], timeZone: string): Date | null {
  if (a.length !== 3 && (a.length < 5 || a.length > 7)) return null;
  if (!a.every((n) => Number.isInteger(n) && (n as number) >= 0)) return null;
  const [y, mo, d, h = 0, mi = 0, s = 0, ns = 0] = a as number[];
  if (ns > 999_999_999) return null;
  const t = fromLocalParts(timeZone, y!, mo!, d!, h, mi, s, Math.floor(ns / 1e6));
  return a.length === 3 ? precise(t, undefined, undefined) : t;
}

/** Formats an instant as the notice's local form "yyyy-MM-dd HH:mm:ss" in the zone. */
export function formatLocal(at: Date, timeZone = 'Asia/Shanghai'): string {
  const off = zoneOffsetMinutes(timeZone, at);
  const t = new Date(at.getTime() + off * 60_000).toISOString();
  return `${t.slice(0, 10)} ${t.slice(11, 19)}`;
}
