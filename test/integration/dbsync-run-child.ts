// A process test/integration/dbsync.test.ts starts with a small heap, as the dbsync function runs
// (stack.yml: 192 MiB): one run over one staging table; prints the run as JSON and exits.
import pg from 'pg';
import { resources } from '../../schemas/index.js';
import { syncResource } from '../../shared/dbsync/index.js';

const db = new pg.Pool({ connectionString: process.env.DBSYNC_TEST_DB, max: 4 });
const run = await syncResource(db, resources[process.env.DBSYNC_TEST_RESOURCE!]!, {
  settings: { batch: 500, orgs: '*', runMs: 60_000, installationOrg: null, testOrgs: new Set(), pushNudgeUrl: '', warningNudgeUrl: '' },
});
process.stdout.write(`${JSON.stringify(run)}\n`);
await db.end();
