// The configuration bundle's format (docs/config-bundles.md §1): every object in it, at any depth, is
// strict on the way in through the configuration port, and tolerant when what is stored is read back;
// the shipped trigger list and aberration definitions, which bundles are built from, carry no key the
// port would refuse.
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import shippedDefs from '../../shared/aberration/definitions.json' with { type: 'json' };
import { Bundle, BUNDLE_FORMAT, StoredBundle, StoredSection } from '../../shared/configbundle/schema.js';
import shippedTriggers from '../../shared/warning/triggers.json' with { type: 'json' };

type Def = Record<string, unknown> & { type: string };
const defOf = (s: z.ZodType) => s._zod.def as unknown as Def;

/** Every object schema inside `s`, by path, with whether it refuses unknown keys. */
function objects(s: z.ZodType, path = '', out: Array<[string, boolean]> = []): Array<[string, boolean]> {
  const d = defOf(s);
  const inner = (x: unknown, p = path) => objects(x as z.ZodType, p, out);
  if (d.type === 'object') {
    out.push([path || '(bundle)', (d.catchall as z.ZodType | undefined) !== undefined && defOf(d.catchall as z.ZodType).type === 'never']);
    for (const [k, v] of Object.entries(d.shape as Record<string, z.ZodType>)) inner(v, path ? `${path}.${k}` : k);
  } else if (d.type === 'array') inner(d.element, `${path}[]`);
  else if ('innerType' in d) inner(d.innerType);
  else if (d.type === 'record') inner(d.valueType, `${path}{}`);
  else if (d.type === 'union') for (const o of d.options as unknown[]) inner(o);
  else if (d.type === 'pipe') {
    inner(d.in);
    inner(d.out);
  }
  return out;
}

const doc = (sections: Record<string, unknown>) => ({ format: BUNDLE_FORMAT, version: 1, issuedAt: '2026-12-01T08:00:00+08:00', issuer: '测试', sections });
const { syndromes, ...algorithms } = shippedDefs;

describe('the bundle format', () => {
  it('refuses an unknown key in every object of every section, at any depth', () => {
    const all = objects(Bundle);
    // The nested objects of the trigger list and the aberration sections are among them.
    expect(all.map(([p]) => p)).toEqual(
      expect.arrayContaining([
        'sections.triggers',
        'sections.triggers.labTests[]',
        'sections.triggers.specialDrugs[]',
        'sections.triggers.symptomDrugs[]',
        'sections.triggers.keywords[]',
        'sections.algorithms.mpm',
        'sections.algorithms.ears',
        'sections.algorithms.cluster',
        'sections.algorithms.fixedThreshold',
        'sections.syndromes.syndromes[]',
        'sections.codeTables[].codes[]',
      ]),
    );
    expect(all.filter(([, strict]) => !strict).map(([p]) => p)).toEqual([]);
  });

  it('reads back what is stored with unknown keys dropped, at every depth', () => {
    for (const s of [StoredBundle, ...Object.values(StoredSection)]) expect(objects(s).filter(([, strict]) => strict)).toEqual([]);
  });

  it('takes the shipped trigger list and aberration definitions as sections', () => {
    const r = Bundle.safeParse(doc({ triggers: shippedTriggers, algorithms, syndromes: { version: shippedDefs.version, syndromes } }));
    expect(r.error?.issues ?? []).toEqual([]);
  });

  it('names an unknown key by its path; a stored copy drops it and keeps the rest', () => {
    const triggers = { ...structuredClone(shippedTriggers), windowDay: 7 };
    const r = Bundle.safeParse(doc({ triggers, algorithms: { ...algorithms, ears: { ...algorithms.ears, limt: 1 } } }));
    expect(r.error?.issues.map((i) => [i.code, i.path.join('.'), 'keys' in i ? i.keys : null])).toEqual([
      ['unrecognized_keys', 'sections.triggers', ['windowDay']],
      ['unrecognized_keys', 'sections.algorithms.ears', ['limt']],
    ]);
    const stored = StoredBundle.parse(doc({ triggers }));
    expect(stored.sections.triggers).not.toHaveProperty('windowDay');
    expect(stored.sections.triggers?.windowDays).toBe(30);
  });
});

describe('a platform’s address', () => {
  const platform = (url: string) => ({ name: 'national', kind: 'national', url, publicKey: 'x' });
  const urlIssue = (url: string) =>
    Bundle.safeParse(doc({ platforms: [platform(url)] })).error?.issues.find((i) => i.path.join('.') === 'sections.platforms.0.url')?.message;
  it('is never link-local, unspecified or multicast (a metadata service, not a platform); private and public addresses pass', () => {
    for (const url of [
      'https://169.254.169.254/latest/meta-data/',
      'https://[fe80::1]/',
      'https://0.0.0.0/',
      'https://224.0.0.1/',
      'https://[::ffff:169.254.169.254]/',
    ])
      expect(urlIssue(url), url).toMatch(/link-local/);
    for (const url of ['https://10.20.30.40/', 'https://192.168.1.5:8443/', 'https://platform.example.cn/', 'http://127.0.0.1:18888/'])
      expect(urlIssue(url), url).toBeUndefined();
  });
});
