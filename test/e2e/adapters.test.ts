// Real adapters, unchanged (docs/his-guide.md): records built from exactly the fields fields.csv
// lists for each table (infra/simulators/adapter.ts: nothing else, nulls dropped, times in every
// form the adapters emit), posted in causal order through port 8881 of a running front — the
// runtime with stack.yml, as on a hospital's server. Every one must be accepted.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type RuntimeHandle } from '../../infra/runtime/index.js';
import { freePort } from '../../infra/runtime/replica.js';
import { adapterShape, TIME_FORMS } from '../../infra/simulators/adapter.js';
import { generate } from '../../infra/simulators/traffic.js';
import { resources } from '../../schemas/index.js';
import { databaseUrl, uniqueOrg } from '../setup/db.js';

let rt: RuntimeHandle;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cdc-adapters-'));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'cdc-database-url'), databaseUrl());
  rt = await startRuntime({
    stackFile: resolve('stack.yml'),
    env: {
      DATA_PORT: String(await freePort()),
      CONFIG_PORT: String(await freePort()),
      MONITOR_PORT: String(await freePort()),
      WEB_PORT: String(await freePort()),
      HIS_ALLOW: '127.0.0.1/8,::1/128',
      // Nothing is pushed in this test; the push function must not reach a real platform.
      NATIONAL_URL: `http://127.0.0.1:${await freePort()}`,
    },
    secretsDir: join(dir, 'secrets'),
    logsDir: join(dir, 'logs'),
    logToStdout: false,
    gateway: { host: '127.0.0.1', port: await freePort() },
    hospital: { host: '127.0.0.1' },
    cron: false,
    autoscaler: false,
    build: 'missing',
  });
}, 120_000);

afterAll(async () => {
  await rt?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('records shaped as the public adapters send them, through port 8881', () => {
  it.each(TIME_FORMS)('every table, times as %s: all accepted', { timeout: 120_000 }, async (form) => {
    const org = uniqueOrg();
    const items = [...generate({ seed: 7, count: 400, orgCodes: [org], idPrefix: `ad-${form}`, start: new Date(Date.now() - 3_600_000) })];
    const refused: string[] = [];
    const seen = new Set<string>();
    for (const it of items) {
      seen.add(it.resource);
      const body = adapterShape(it.resource, it.record, form);
      const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/${it.resource}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const a = (await res.json()) as { result?: boolean; errors?: Array<{ field: string; rule: string; message: string }>; desc?: string };
      if (res.status !== 200 || a.result !== true) {
        refused.push(`${it.resource} ${String(body.id ?? body.deptCode)}: ${res.status} ${a.errors?.map((e) => `${e.field}/${e.rule}`).join(', ') ?? a.desc}`);
      }
    }
    expect(seen.size, 'the generator covered the tables').toBeGreaterThanOrEqual(Object.keys(resources).length - 3);
    // Grouped by resource and rule, so a failure reads as a list of causes.
    const causes = new Map<string, number>();
    for (const r of refused) {
      const k = r.replace(/^(\S+) \S+: /, '$1: ');
      causes.set(k, (causes.get(k) ?? 0) + 1);
    }
    expect([...causes].map(([k, n]) => `${n} × ${k}`), `${refused.length} of ${items.length} refused; first: ${refused.slice(0, 5).join(' | ')}`).toEqual([]);
  });
});
