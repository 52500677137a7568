/**
 * The settings a configuration bundle put in force, as the functions that use them read them
 * (docs/config-bundles.md "What each section changes"). A bundle's area wins over the function's own
 * setting (the shipped file, or the file its environment names) until a rollback removes it; each
 * read is one small query, the content parsed again only when a bundle step changed it.
 */
import type { Db, Tx } from '../db/index.js';
import type { Definitions } from '../aberration/config.js';
import { parseTriggers, type TriggerSet } from '../warning/triggers.js';
import { type Platform, StoredSection } from './schema.js';
import { areaReader } from './store.js';

type Q = Db | Tx;

const triggersArea = areaReader('triggers', (c) => parseTriggers(c, 'the configuration bundle'));
const algorithmsArea = areaReader('algorithms', (c) => StoredSection.algorithms.parse(c));
const syndromesArea = areaReader('syndromes', (c) => StoredSection.syndromes.parse(c));

/** The trigger lists in force: the bundle's, else `fallback` (WARNING_TRIGGERS_FILE or the shipped list). */
export async function triggersInForce(db: Q, fallback: TriggerSet): Promise<TriggerSet> {
  return (await triggersArea(db))?.value ?? fallback;
}

/**
 * Aberration detection's definitions in force: the bundle's algorithm parameters and syndrome
 * definitions (each on its own), else `fallback`'s (ABERRATION_FILE or the shipped definitions).
 */
export async function definitionsInForce(db: Q, fallback: Definitions): Promise<Definitions> {
  const [alg, syn] = await Promise.all([algorithmsArea(db), syndromesArea(db)]);
  if (!alg && !syn) return fallback;
  const a = alg?.value;
  const s = syn?.value;
  return {
    ...fallback,
    ...(a ?? {}),
    syndromes: s?.syndromes ?? fallback.syndromes,
    version: [a?.version ?? fallback.version, ...(s ? [s.version] : [])].join('+'),
  };
}

const platformsArea = areaReader('platforms', (c) => StoredSection.platforms.parse(c));

/** The platforms a bundle put in force (address and SM2 key per destination name), or null: each destination's own settings. */
export async function platformsInForce(db: Q): Promise<Map<string, Platform> | null> {
  const a = await platformsArea(db);
  return a ? new Map(a.value.map((p) => [p.name, p])) : null;
}
