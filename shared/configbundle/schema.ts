/**
 * A configuration bundle from the national platform (docs/config-bundles.md): the document, its
 * sections, and the signed form it travels in. Each section reuses the shape the front already keeps
 * for that setting — a national code list as `bin/cdc-codes import-national` loads it, the trigger
 * list of shared/warning/triggers.json, the parameters and syndromes of shared/aberration/definitions.json
 * — so a bundle holds nothing the front does not already know how to check.
 */
import { z } from 'zod';
import { Definitions } from '../aberration/config.js';
import { everyObject } from '../config/every-object.js';
import { domainInfo } from '../codes/registry.js';
import { isLoopback } from '../uplink/client.js';
import { DEFAULT_UID, parseSm2PublicKey } from '../uplink/sm.js';
import { TriggerSet } from '../warning/triggers.js';

export const BUNDLE_FORMAT = 'cdc-config-bundle/1';

/** One national code list (a value domain), replacing the domain's current list. */
export const CodeTable = z
  .object({
    domain: z.string().refine((d) => domainInfo(d) !== undefined, { message: 'not a value domain of docs/code-mapping.md' }),
    version: z.string().trim().min(1).max(50),
    /** Shown as the list's source (code_domain.list_source); default "配置包 v<bundle version>". */
    source: z.string().min(1).max(200).optional(),
    status: z.enum(['loaded', 'partial']).default('loaded'),
    codes: z
      .array(z.object({ code: z.string().trim().min(1).max(50), name: z.string().trim().min(1).max(250), nameEn: z.string().max(250).nullish() }).strict())
      .min(1),
  })
  .strict();
export type CodeTable = z.infer<typeof CodeTable>;

/** Aberration detection's parameters: definitions.json without the syndromes. */
export const Algorithms = Definitions.omit({ syndromes: true }).strict();
/** Syndrome definitions: definitions.json's syndromes, with a version of their own. */
export const Syndromes = Definitions.pick({ version: true, syndromes: true }).strict();

const pemKey = z.string().refine(
  (s) => {
    try {
      parseSm2PublicKey(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not an SM2 public key (PEM SubjectPublicKeyInfo on curve 1.2.156.10197.1.301)' },
);

/**
 * Addresses no platform has: link-local (where a cloud's metadata service answers), unspecified,
 * multicast. Private ranges stay allowed — a provincial platform on a government network has one
 * (docs/config-bundles.md §1).
 */
function unroutable(url: URL): boolean {
  const h = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (a === 169 && b === 254) || a === 0 || (a >= 224 && a <= 239);
  }
  return h === '::' || /^fe[89ab][0-9a-f]:/.test(h) || h.startsWith('ff') || /^::ffff:(169\.254|a9fe:)/.test(h);
}

/** A platform the front forwards to: its address and SM2 public key (docs/uplink.md §8). */
export const Platform = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'a destination name: lower-case letters, digits, _'),
    kind: z.enum(['national', 'provincial']),
    url: z
      .url({ protocol: /^https?$/ })
      .refine((u) => u.startsWith('https://') || isLoopback(new URL(u)), {
        message: 'https:// (plain http only to a loopback address)',
      })
      .refine((u) => !unroutable(new URL(u)), {
        message:
          'not a link-local, unspecified or multicast address (169.254.0.0/16, fe80::/10, 0.0.0.0, 224.0.0.0/4): no platform is there — a cloud metadata service may be',
      }),
    publicKey: pemKey,
    resources: z.array(z.string().min(1).max(60)).nullable().default(null),
    enabled: z.boolean().default(true),
  })
  .strict();
export type Platform = z.infer<typeof Platform>;

const cronField = String.raw`(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*`;
/** A function's schedule: a five-field cron expression in the hospital's zone. */
export const Schedule = z
  .object({
    function: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    schedule: z.string().regex(new RegExp(`^${cronField}( ${cronField}){4}$`), 'a five-field cron expression'),
    note: z.string().max(300).optional(),
  })
  .strict();

/** The latest release of the front software, as the platform announces it (GET /version-check). */
export const Release = z
  .object({
    version: z.string().regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, 'a release number x.y.z'),
    // Shown as a link on the console's 设置 page: a web address, never javascript: or data:.
    url: z.url({ protocol: /^https?$/ }).optional(),
    notes: z.string().max(2000).optional(),
    publishedAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type Release = z.infer<typeof Release>;

const unique =
  <T>(key: (x: T) => string, what: string) =>
  (list: T[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    list.forEach((x, i) => {
      const k = key(x);
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: `${what} ${k} appears twice` });
      seen.add(k);
    });
  };

export const Sections = z
  .object({
    codeTables: z
      .array(CodeTable)
      .min(1)
      .superRefine(unique((t) => t.domain, 'domain')),
    triggers: TriggerSet,
    algorithms: Algorithms,
    syndromes: Syndromes,
    platforms: z
      .array(Platform)
      .min(1)
      .superRefine(unique((p) => p.name, 'platform')),
    schedules: z
      .array(Schedule)
      .min(1)
      .superRefine(unique((s) => s.function, 'function')),
    release: Release,
  })
  .partial()
  .strict();
export type Sections = z.infer<typeof Sections>;

const DeclaredBundle = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    /** Monotonic: a front applies only a version above every version it applied before. */
    version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    issuedAt: z.iso.datetime({ offset: true }),
    issuer: z.string().trim().min(1).max(200),
    sections: Sections.refine((s) => Object.keys(s).length > 0, { message: 'a bundle carries at least one section' }),
  })
  .strict();

/**
 * A bundle as the configuration port takes it: every object strict, at any depth (docs/config-bundles.md
 * §1) — `"windowDay": 7` in the trigger list is refused naming `sections.triggers.windowDay`, never
 * dropped to leave the default in force.
 */
export const Bundle = everyObject(DeclaredBundle, 'strict');
export type Bundle = z.infer<typeof Bundle>;

/**
 * What is stored is read back tolerantly (docs/config-bundles.md §1): a bundle kept in config_bundle
 * and the sections in config_active were written by the release that applied them, whose schema may
 * have had a key this release dropped, or (before this release checked every depth) may hold a key
 * the port used to drop. Refusing it on the way out would stop a function at start, or a rollback, for
 * a setting the platform can no longer correct: its unknown keys are dropped, as they always were
 * when that content was applied. Everything else about it is checked as on the way in.
 */
export const StoredBundle = everyObject(DeclaredBundle, 'strip');
/** The sections the functions read back from config_active, tolerant as StoredBundle. */
export const StoredSection = {
  algorithms: everyObject(Algorithms, 'strip'),
  syndromes: everyObject(Syndromes, 'strip'),
  platforms: everyObject(z.array(Platform), 'strip'),
  schedules: everyObject(z.array(Schedule), 'strip'),
  release: everyObject(Release, 'strip'),
};

/**
 * What POST /bundles takes: the document as a string (the exact bytes signed) and the platform's
 * signature over it (shared/configbundle/sign.ts).
 */
export const SignedBundle = z
  .object({
    bundle: z.string().min(2),
    sig: z
      .object({
        alg: z.string(),
        uid: z.string().min(1).max(64).default(DEFAULT_UID),
        keyId: z.string().regex(/^[0-9a-f]{64}$/, 'SM3 of the public point, 64 lower-case hex digits'),
        value: z.string().min(1).max(400),
      })
      .strict(),
  })
  .strict();
export type SignedBundle = z.infer<typeof SignedBundle>;

/** Every area a bundle can change, in the order a bundle's areas are written. */
export const ACTIVE_AREAS = ['release', 'schedules', 'platforms', 'syndromes', 'algorithms', 'triggers'] as const;
export type ActiveArea = (typeof ACTIVE_AREAS)[number];
export const CODE_TABLE = 'codeTable:';

/** The areas a bundle changes, each with its content, in write order (code tables last: the largest). */
export function areasOf(b: Bundle): Array<{ area: string; content: unknown }> {
  const out: Array<{ area: string; content: unknown }> = [];
  for (const a of ACTIVE_AREAS) if (b.sections[a] !== undefined) out.push({ area: a, content: b.sections[a] });
  for (const t of b.sections.codeTables ?? []) out.push({ area: `${CODE_TABLE}${t.domain}`, content: t });
  return out;
}
