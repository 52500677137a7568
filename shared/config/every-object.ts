/**
 * Strict and tolerant readings of one zod schema, at every depth (docs/config-bundles.md §1): a
 * configuration bundle arriving on the configuration port is read strictly (an unknown key refused,
 * named); what the front stored, and a hospital's own files (WARNING_TRIGGERS_FILE, ABERRATION_FILE),
 * tolerantly — with the keys dropped named by `unknownKeys`, so a misspelt key is told, not silent.
 */
import { z } from 'zod';

/**
 * `schema` with every object in it, at any depth, `strict` (an unknown key is an issue,
 * `unrecognized_keys`, at the object's path) or `strip` (an unknown key is dropped). The section
 * schemas are the ones the front keeps for its own files (the trigger list, the aberration
 * definitions), which drop unknown keys; docs/config-bundles.md §1 "an unknown key anywhere, refused
 * with the field named" and "What is stored is read back tolerantly" need both, at every depth — a
 * nested object added later is covered without anyone remembering it. A kind of schema this walk does
 * not know how to enter is an error at start, never an object left unchecked.
 */
export function everyObject<T extends z.ZodType>(schema: T, keys: 'strict' | 'strip'): T {
  const walk = (s: z.ZodType): z.ZodType => {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    const again = (changes: Record<string, unknown>) => s.clone({ ...def, ...changes } as typeof s._zod.def);
    switch (def.type) {
      case 'object': {
        const shape = Object.fromEntries(Object.entries(def.shape as Record<string, z.ZodType>).map(([k, v]) => [k, walk(v)]));
        return again({ shape, catchall: keys === 'strict' ? z.never() : undefined });
      }
      case 'array':
        return again({ element: walk(def.element as z.ZodType) });
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        return again({ innerType: walk(def.innerType as z.ZodType) });
      case 'record':
        return again({ valueType: walk(def.valueType as z.ZodType) });
      case 'union':
        return again({ options: (def.options as z.ZodType[]).map(walk) });
      case 'pipe':
        return again({ in: walk(def.in as z.ZodType), out: walk(def.out as z.ZodType) });
      case 'intersection':
      case 'tuple':
      case 'lazy':
      case 'map':
      case 'set':
      case 'promise':
      case 'function':
        throw new Error(`everyObject: a ${def.type} schema is not walked yet; add it here`);
      default:
        return s; // a value: string, number, enum, literal…
    }
  };
  return walk(schema) as T;
}

const strictOf = new WeakMap<z.ZodType, z.ZodType>();

/**
 * The keys a strict reading of `json` refuses, as paths (`labTests.0.diseas`): what a tolerant
 * reading (plain z.object) drops without a word. Empty when there are none — or when `json` fails
 * `schema` for another reason first, which its caller reports.
 */
export function unknownKeys(schema: z.ZodType, json: unknown): string[] {
  let strict = strictOf.get(schema);
  if (!strict) strictOf.set(schema, (strict = everyObject(schema, 'strict')));
  const r = strict.safeParse(json);
  if (r.success) return [];
  return r.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : []));
}
