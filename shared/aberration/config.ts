/**
 * Aberration detection's parameters and syndrome definitions (docs/aberration.md): shipped as data
 * (definitions.json), replaceable whole by a file named in ABERRATION_FILE, validated with zod.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { unknownKeys } from '../config/every-object.js';
import { concern } from '../config/index.js';
import { log } from '../log/index.js';
import shipped from './definitions.json' with { type: 'json' };

// Unknown keys are dropped here (plain z.object), as for the trigger list: the shipped file,
// ABERRATION_FILE and what a bundle stored are read tolerantly (ABERRATION_FILE's dropped keys named in
// a warning at start); the `algorithms` and `syndromes` sections of a configuration bundle are checked
// with every object strict (docs/config-bundles.md §1).
const Syndrome = z.object({
  id: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/),
  name: z.string().min(1).max(40),
  icd10: z.array(z.string().regex(/^[A-Z]\d{2}(\.\d+)?(-[A-Z]\d{2})?$/, 'an ICD-10 code or range (J00-J06)')),
  terms: z.array(z.string().min(1).max(20)),
});

export const Definitions = z.object({
  version: z.string().min(1),
  syndromes: z.array(Syndrome),
  fixedThreshold: z.object({ classA: z.boolean(), threshold: z.number().int().min(1), diseases: z.array(z.string()) }),
  mpm: z.object({
    percentile: z.number().min(1).max(99),
    byDisease: z.record(z.string(), z.number().min(1).max(99)),
    compare: z.enum(['>=', '>']),
    years: z.number().int().min(1).max(10),
    neighbours: z.number().int().min(0).max(5),
    period: z.number().int().min(1).max(31),
    yearDays: z.union([z.literal(364), z.literal(365)]),
    minBaseline: z.number().int().min(1),
  }),
  ears: z.object({ baseline: z.number().int().min(2).max(28), limit: z.number().positive(), c3Limit: z.number().positive(), minSigma: z.number().min(0) }),
  cluster: z.object({ minCases: z.number().int().min(2), days: z.number().int().min(1).max(60) }),
});
export type Definitions = z.infer<typeof Definitions>;

export function loadDefinitions(file?: string): Definitions {
  const raw: unknown = file ? JSON.parse(readFileSync(file, 'utf8')) : shipped;
  const r = Definitions.safeParse(raw);
  if (!r.success)
    throw new Error(`${file ?? 'shared/aberration/definitions.json'}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const dropped = file ? unknownKeys(Definitions, raw) : [];
  if (dropped.length) log('warn', 'aberration definitions have keys this release does not know: ignored', { file, keys: dropped });
  return r.data;
}

export const aberrationConcern = concern({
  name: 'aberration',
  vars: {
    ABERRATION_FILE: z.string().optional(),
    /** Days back whose counts are (re)computed when missing, so EARS and clusters have a baseline. */
    ABERRATION_BACKFILL_DAYS: z.coerce.number().int().min(2).max(1200).default(35),
  },
  build: (v) => ({ definitions: loadDefinitions(v.ABERRATION_FILE || undefined), backfillDays: v.ABERRATION_BACKFILL_DAYS }),
});
export type AberrationSettings = ReturnType<(typeof aberrationConcern)['build']>;
