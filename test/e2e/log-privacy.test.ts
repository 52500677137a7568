// No personal data in any log line (docs/his-guide.md; the standards): generated HIS traffic with
// names, resident ID numbers, phones and addresses — valid records, refused ones, early warning run
// over them — through a front started from stack.yml at LOG_LEVEL=debug (the most it writes), then
// every line of every log file (the runtime's and each function's) is searched for each value sent;
// so is every answer the national platform reads on the monitoring and configuration ports.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../infra/simulators/traffic.js';
import { resources } from '../../schemas/index.js';
import { uniqueOrg } from '../setup/db.js';
import { startStackRuntime, type StackRuntime } from '../setup/stack-runtime.js';

let front: StackRuntime;
const org = uniqueOrg();

beforeAll(async () => {
  front = await startStackRuntime('log-privacy', { LOG_LEVEL: 'debug', FRONT_ORG_CODE: org });
}, 120_000);
afterAll(async () => {
  await front?.close();
});

/**
 * Generated HIS traffic with names, resident ID numbers, phones and addresses — valid records and one
 * in ten refused — and early warning run over it, once for the file: the personal values sent.
 */
let sent: Promise<Set<string>> | undefined;
const traffic = () => (sent ??= sendTraffic());
async function sendTraffic(): Promise<Set<string>> {
  const data = front.rt.portUrls.data!;
  const personal = new Set<string>();
  const items = [...generate({ seed: 11, count: 300, orgCodes: [org], idPrefix: 'lp', start: new Date(Date.now() - 3_600_000) })];
  let refused = 0;
  for (const [i, it] of items.entries()) {
    const fields = resources[it.resource]!.fields;
    for (const [k, def] of Object.entries(fields)) {
      const v = it.record[k];
      if (!def.personal || typeof v !== 'string') continue;
      // Names of three characters or more (two-character ones also occur inside ordinary words).
      if (def.personal === 'name' ? v.length >= 3 : v.length >= 6) personal.add(v);
    }
    // One record in ten sent broken, so refusals (and their logged issues) are covered too.
    const body = i % 10 === 5 ? { ...it.record, birthDate: 'not a date', genderCode: 'bad-code-value' } : it.record;
    const res = await fetch(`${data}/hclient/emr/receive/${it.resource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (res.status === 400) refused++;
  }
  expect(refused).toBeGreaterThan(0);
  expect(personal.size).toBeGreaterThan(50);
  // Early warning over them, as its cron would.
  await (await fetch(`${front.rt.gatewayUrl}/function/warning`, { method: 'POST', headers: { 'x-topic': 'cron-function' } })).arrayBuffer();
  return personal;
}

describe('log lines', () => {
  it('carry no name, ID number, phone or address of what the HIS sent', { timeout: 180_000 }, async () => {
    const personal = await traffic();
    await new Promise((r) => setTimeout(r, 500)); // log lines are written in batches
    const dir = join(front.dir, 'logs');
    const leaks: string[] = [];
    let lines = 0;
    for (const f of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        lines++;
        for (const v of personal) if (line.includes(v)) leaks.push(`${f}: ${v} in ${line.slice(0, 200)}`);
      }
    }
    expect(lines).toBeGreaterThan(100);
    expect(leaks.slice(0, 10)).toEqual([]);
  });
});

describe('the ports the national platform reads', () => {
  it('answer the monitoring and configuration reads without a name, ID number, phone or address sent', { timeout: 180_000 }, async () => {
    const personal = await traffic();
    const token = (name: string) => ({ authorization: `Bearer ${readFileSync(join(front.secretsDir, name), 'utf8').trim()}` });
    const reads = [
      [front.rt.portUrls.monitor!, ['/status', '/components', '/metrics'], token('monitor-token')],
      [front.rt.portUrls.config!, ['/bundles', '/bundles/current', '/activation', '/schedules', '/version-check'], token('config-token')],
    ] as const;
    const leaks: string[] = [];
    let read = 0;
    for (const [base, paths, headers] of reads) {
      for (const path of paths) {
        const res = await fetch(`${base}${path}`, { headers });
        const text = await res.text();
        if (res.status === 200) read++;
        for (const v of personal) if (text.includes(v)) leaks.push(`${path}: ${v}`);
      }
    }
    expect(read).toBeGreaterThanOrEqual(5);
    expect(leaks.slice(0, 10)).toEqual([]);
  });
});
