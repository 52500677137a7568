// The process test/integration/dbsync-counts.test.ts kills: runs the sync of one staging table with a
// code cache of its own (sightings buffered as the function's are; its flush far off) and, inside the
// second wave's transaction (before it commits), says so and waits to be killed.
import pg from 'pg';
import { resources } from '../../schemas/index.js';
import { syncResource } from '../../shared/dbsync/index.js';
import { createCodeCache } from '../../shared/codes/cache.js';

const db = new pg.Pool({ connectionString: process.env.DBSYNC_TEST_DB, max: 4 });
const codes = await createCodeCache(db, { refreshMs: 600_000, flushMs: 600_000 });
let waves = 0;
await syncResource(db, resources[process.env.DBSYNC_TEST_RESOURCE!]!, {
  settings: { batch: 500, orgs: '*', runMs: 60_000, installationOrg: null, testOrgs: new Set(), pushNudgeUrl: '', warningNudgeUrl: '' },
  codes,
  beforeCommit: async () => {
    if (++waves < 2) return;
    process.stdout.write('second wave\n');
    await new Promise(() => undefined);
  },
});
