/**
 * Code mapping (值域代码映射; docs/code-mapping.md): the forty national value domains, the
 * hospitals' mappings onto them, the cache ingest reads through, the unmapped queue, suggestions and
 * the completeness report. The console's REST routes are in ./api.ts.
 */
export { createCodeCache, listsLookedUp, listsOfAllRecords, type CodeCache, type CodeCacheOptions, type LookupResult } from './cache.js';
export * from './model.js';
export { DOMAINS, DOMAIN_COUNT, domainInfo, isDomain, listDomainOf, type DomainInfo } from './registry.js';
export * from './store.js';
export { foldName, nameSimilarity, notifiableLookalike, NameIndex, DANGER_THRESHOLD, type Candidate, type Danger } from './similarity.js';
export { decodeText, parseCsv, writeCsv, records } from './csv.js';
