// Real adapters, unchanged (docs/his-guide.md): records built from exactly the fields fields.csv
// lists for each table (infra/simulators/adapter.ts: nothing else, nulls dropped, times in every
// form the adapters emit), posted in causal order through port 8881 of a running front — the
// runtime with stack.yml, as on a hospital's server. Every one must be accepted. So must the
// records of the national front-end's own acceptance script (test/fixtures/adapters), and the
// records that are really wrong must be refused, each naming its rule.
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterShape, TIME_FORMS } from '../../infra/simulators/adapter.js';
import { residentId } from '../../infra/simulators/his.js';
import { generate } from '../../infra/simulators/traffic.js';
import { formatLocal } from '../../shared/time/index.js';
import { resources } from '../../schemas/index.js';
import { uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
let data: string;
// A single-hospital front, activated for its org code (FRONT_ORG_CODE through stack.yml): the org of
// what the adapters send without one (departments) when neither a parent nor the caller decides it.
const org = uniqueOrg();

beforeAll(async () => {
  front = await startStackRuntime('adapters', { FRONT_ORG_CODE: org });
  data = front.rt.portUrls.data!;
}, 120_000);

afterAll(async () => {
  await front?.close();
});

type Answer = { result?: boolean; errors?: Array<{ field: string; rule: string; message: string }>; desc?: string; held?: string[] };

async function post(resource: string, body: unknown): Promise<{ status: number; a: Answer }> {
  const res = await fetch(`${data}/hclient/emr/receive/${resource}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, a: (await res.json()) as Answer };
}

const why = (resource: string, id: unknown, status: number, a: Answer) =>
  `${resource} ${String(id)}: ${status} ${a.errors?.map((e) => `${e.field}/${e.rule}`).join(', ') ?? a.desc}`;

describe('records shaped as the public adapters send them, through port 8881', () => {
  it.each(TIME_FORMS)('every table, times as %s: all accepted', { timeout: 120_000 }, async (form) => {
    const items = [...generate({ seed: 7, count: 400, orgCodes: [org], idPrefix: `ad-${form}`, start: new Date(Date.now() - 3_600_000) })];
    const refused: string[] = [];
    const seen = new Set<string>();
    for (const it of items) {
      seen.add(it.resource);
      const body = adapterShape(it.resource, it.record, form);
      const { status, a } = await post(it.resource, body);
      if (status !== 200 || a.result !== true) refused.push(why(it.resource, body.id ?? body.deptCode, status, a));
    }
    expect(seen.size, 'the generator covered the tables').toBeGreaterThanOrEqual(Object.keys(resources).length - 3);
    // Grouped by resource and rule, so a failure reads as a list of causes.
    const causes = new Map<string, number>();
    for (const r of refused) {
      const k = r.replace(/^(\S+) \S+: /, '$1: ');
      causes.set(k, (causes.get(k) ?? 0) + 1);
    }
    expect(
      [...causes].map(([k, n]) => `${n} × ${k}`),
      `${refused.length} of ${items.length} refused; first: ${refused.slice(0, 5).join(' | ')}`,
    ).toEqual([]);
  });
});

describe("the national front-end's acceptance script", () => {
  it('its records, posted in its order, are all accepted', async () => {
    const fixture = JSON.parse(readFileSync('test/fixtures/adapters/national-test-script.json', 'utf8')) as {
      records: Array<{ resource: string; body: Record<string, unknown> }>;
    };
    const person = (sex: '1' | '2') => {
      const birth = { y: 1966 + randomInt(40), m: 1 + randomInt(12), d: 1 + randomInt(28) };
      return {
        id: residentId('110101', birth, sex, randomInt(1000)),
        birth: `${birth.y}-${String(birth.m).padStart(2, '0')}-${String(birth.d).padStart(2, '0')}`,
      };
    };
    const [p1, p2] = [person('2'), person('1')];
    const values: Record<string, string> = {
      org,
      // The script posts yesterday's records, at times between 08:00 and 18:00.
      day: formatLocal(new Date(Date.now() - 86_400_000)).slice(0, 10),
      id1: p1!.id,
      birth1: p1!.birth,
      id2: p2!.id,
      birth2: p2!.birth,
      t1: '09:12:05',
      t11: '09:47:31',
      t2: '10:03:44',
      t22: '10:58:09',
    };
    const fill = (v: unknown): unknown => (typeof v === 'string' ? v.replace(/\{\{(\w+)\}\}/g, (_, k: string) => values[k]!) : v);
    const refused: string[] = [];
    for (const { resource, body } of fixture.records) {
      const filled = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, fill(v)]));
      const { status, a } = await post(resource, filled);
      if (status !== 200 || a.result !== true) refused.push(why(resource, filled.id ?? filled.ID, status, a));
    }
    expect(refused).toEqual([]);
  });
});
