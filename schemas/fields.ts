/**
 * The field DSL: each field of the national data set is declared once, with what the storage
 * layer needs (column, SQL type), what validation needs (length, required, value domain) and
 * whether it holds personal data (masked in answers, never logged). The zod schema of a resource
 * is built from these declarations; its TypeScript type is z.infer'd from that schema.
 */
import { z } from 'zod';
import { parseTime } from '../shared/time/index.js';
import type { DomainName } from './codes/lists.js';

export type { DomainName };

export type FieldKind = 'string' | 'text' | 'time' | 'int' | 'decimal';
/** What kind of personal data a field holds (GB/T 35273 personal information), for masking. */
export type Personal = 'name' | 'idno' | 'phone' | 'address' | 'birthdate' | 'text';

/**
 * The one list of what each kind of personal data gets, besides masking in answers and screens
 * (shared/ingest/mask.ts) and never being logged: how it is kept at rest (docs/security.md "Data at
 * rest", docs/keys.md "Which fields"). `sealed`: SM4-encrypted under a key id in every stored copy
 * (the typed column, rec_raw, record_history.raw, outbox.payload; shared/pii); `sealed+hash`: also an
 * HMAC-SM3 of the value in the column `<column>_hmac`, for equality lookups (duplicate cards, the
 * console's search by name or ID number); `clear`: stored as sent (birth dates: the rules compare
 * them with events, and the requirement lists ID numbers, names, phones and addresses).
 */
export const AT_REST: Readonly<Record<Personal, 'clear' | 'sealed' | 'sealed+hash'>> = {
  name: 'sealed+hash',
  idno: 'sealed+hash',
  phone: 'sealed+hash',
  address: 'sealed',
  birthdate: 'clear',
  text: 'clear',
};

/** Whether a field's values are stored encrypted (AT_REST). */
export const isSealed = (d: { personal?: Personal }): boolean => d.personal !== undefined && AT_REST[d.personal] !== 'clear';
/** Whether a field also has an HMAC column for lookups (AT_REST). */
export const isHashed = (d: { personal?: Personal }): boolean => d.personal !== undefined && AT_REST[d.personal] === 'sealed+hash';
/** The HMAC column of a hashed field. */
export const hmacColumn = (column: string): string => `${column}_hmac`;

export interface FieldDef {
  kind: FieldKind;
  column: string;
  label: string;
  max?: number;
  required?: boolean;
  personal?: Personal;
  /**
   * The national value domain a code field must be in (schemas/codes/lists.ts). Checked by the
   * pipeline for every field that declares one (schemas/domains.ts); the paired `xxxName` field,
   * when sent, is compared with the list's name and a disagreement is a warning.
   */
  domain?: DomainName;
  /**
   * The documented (narrower) length of an identifier-like field whose `max` was widened to admit
   * what real senders send (32-character hex visit numbers, long department codes): above it the
   * record is accepted with a `longerThanUsual` warning (docs/data-set.md "Lengths").
   */
  warnAbove?: number;
}

export type FieldMap = Record<string, FieldDef>;

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

interface Opts {
  required?: boolean;
  personal?: Personal;
  column?: string;
  domain?: DomainName;
}

/** Builders: `str(100, '就诊者姓名', {required: true, personal: 'name'})`, `str(2, '性别代码', {domain: 'sex'})`. */
export const f = {
  str: (max: number, label: string, o: Opts = {}): Omit<FieldDef, 'column'> & { column?: string } => ({
    kind: 'string',
    max,
    label,
    ...o,
  }),
  text: (label: string, o: Opts = {}) => ({ kind: 'text' as const, label, ...o }),
  time: (label: string, o: Opts = {}) => ({ kind: 'time' as const, label, ...o }),
  int: (label: string, o: Opts = {}) => ({ kind: 'int' as const, label, ...o }),
  decimal: (label: string, o: Opts = {}) => ({ kind: 'decimal' as const, label, ...o }),
};

/** The hard limit of identifier-like strings (docs/data-set.md "Lengths"). */
export const IDENTIFIER_MAX = 64;

/**
 * Identifiers senders make up — visit numbers, codes of their own, numbers of reports and
 * prescriptions, doctors' ids — come longer than the national model's lengths (32-character hex is
 * common): such a field without a national value domain and without personal data takes
 * IDENTIFIER_MAX as its limit and warns above its documented length instead of refusing.
 */
function widened(key: string, d: Omit<FieldDef, 'column'>): Omit<FieldDef, 'column'> {
  const identifier = key === 'serialNumber' || (/(?:Id|No|Code)$/.test(key) && key !== 'orgCode');
  if (d.kind !== 'string' || !identifier || d.domain || d.personal || d.max === undefined || d.max >= IDENTIFIER_MAX) return d;
  return { ...d, max: IDENTIFIER_MAX, warnAbove: d.max };
}

/** Fills in column names (snake_case of the JSON key unless given), and widens identifiers (above). */
export function fields<T extends Record<string, Omit<FieldDef, 'column'> & { column?: string }>>(defs: T): { [K in keyof T]: FieldDef } {
  const out = {} as { [K in keyof T]: FieldDef };
  for (const [k, d] of Object.entries(defs)) (out as FieldMap)[k] = { ...widened(k, d), column: d.column ?? snake(k) } as FieldDef;
  return out;
}

/** Legacy HIS databases pad CHAR columns and send "" for "no value": both mean null here. */
function blankToNull(v: unknown): unknown {
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? null : t;
  }
  return v;
}

let zone: string | undefined;
/**
 * The hospital's zone (TZ_LOCAL, default Asia/Shanghai), read from the environment once: each read of
 * process.env is a native call, and every time field of every record asked for it.
 */
export const TIME_ZONE = () => (zone ??= process.env.TZ_LOCAL || 'Asia/Shanghai');

/** The message of a text field longer than its data set length (here and at intake's long-code check). */
export const tooLong = (max: number) => `长度不能超过 ${max} (at most ${max} characters)`;
/** The same for a coded field, whose hospital code may be longer than the national one until mapped (docs/code-mapping.md). */
export const tooLongCode = (max: number) =>
  `本院代码长度不能超过 ${IDENTIFIER_MAX}，国家代码长度不能超过 ${max} (a hospital code is at most ${IDENTIFIER_MAX} characters, the national code ${max})`;

function zodFor(d: FieldDef): z.ZodType {
  switch (d.kind) {
    case 'string':
    case 'text': {
      let s = z.string({ error: '应为文本 (must be text)' });
      if (d.max) s = s.max(d.max, { error: tooLong(d.max) });
      return z.preprocess((v) => {
        const b = blankToNull(v);
        return typeof b === 'number' || typeof b === 'bigint' ? String(b) : b;
      }, s.nullish());
    }
    case 'time':
      return z.preprocess((v) => {
        const b = blankToNull(v);
        if (b === null || b === undefined) return b;
        return parseTime(b, TIME_ZONE()) ?? b;
      }, z.date({ error: '时间格式应为 yyyy-MM-dd HH:mm:ss 或 ISO 8601 (not a valid time)' }).nullish());
    case 'int':
      return z.preprocess(
        (v) => {
          const b = blankToNull(v);
          return typeof b === 'string' && /^-?\d+$/.test(b) ? Number(b) : b;
        },
        z
          .number({ error: '应为整数 (must be an integer)' })
          .int({ error: '应为整数 (must be an integer)' })
          // The column is a 32-bit integer (both dialects).
          .min(-2147483648, { error: '超出整数范围 (out of the 32-bit integer range)' })
          .max(2147483647, { error: '超出整数范围 (out of the 32-bit integer range)' })
          .nullish(),
      );
    case 'decimal':
      return z.preprocess(
        (v) => {
          const b = blankToNull(v);
          return typeof b === 'string' && /^-?\d+(\.\d+)?$/.test(b) ? Number(b) : b;
        },
        z
          .number({ error: '应为数值 (must be a number)' })
          .finite()
          // The column is numeric(18,4): 14 digits before the point.
          .gt(-1e14, { error: '超出数值范围 (out of range: at most 14 digits before the point)' })
          .lt(1e14, { error: '超出数值范围 (out of range: at most 14 digits before the point)' })
          .nullish(),
      );
  }
}

type ZodOf<D extends FieldDef> = D['kind'] extends 'time'
  ? z.ZodType<Date | null | undefined>
  : D['kind'] extends 'int' | 'decimal'
    ? z.ZodType<number | null | undefined>
    : z.ZodType<string | null | undefined>;

export type ShapeOf<F extends FieldMap> = { [K in keyof F]: ZodOf<F[K]> };

/** The zod object of a field map. Required fields are checked separately to name them all at once. */
export function objectOf<F extends FieldMap>(defs: F): z.ZodObject<ShapeOf<F>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [k, d] of Object.entries(defs)) shape[k] = zodFor(d);
  return z.object(shape) as unknown as z.ZodObject<ShapeOf<F>>;
}
