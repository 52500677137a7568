// The HIS traffic generator: repeatable by seed, the mix it was asked for, causal order, and every
// record it calls valid is valid for the front (every invalid one is not).
import { describe, expect, it } from 'vitest';
import { batches, depth, generate, isLoopbackUrl, mixOf, runTraffic, type TrafficItem } from '../../infra/simulators/traffic.js';
import { resources } from '../../schemas/index.js';
import { normalizeKeys } from '../../shared/ingest/normalize.js';
import { validateRecord } from '../../shared/ingest/validate.js';

const START = new Date('2026-11-26T02:00:00Z');
const parentKeys = (it: TrafficItem): string[] => {
  const r = resources[it.resource]!;
  return r.parents.map((p) => `${p.resource}|${it.record.orgCode}|${it.record[p.field]}`);
};

describe('determinism', () => {
  it('the same seed and start give the same records; another seed does not', () => {
    const a = [...generate({ seed: 42, count: 400, start: START, outOfOrderShare: 0.1, invalidShare: 0.05 })];
    const b = [...generate({ seed: 42, count: 400, start: START, outOfOrderShare: 0.1, invalidShare: 0.05 })];
    const c = [...generate({ seed: 43, count: 400, start: START, outOfOrderShare: 0.1, invalidShare: 0.05 })];
    expect(a).toHaveLength(400);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
  });

  it('uses every org code it is given, and unique keys for every record', () => {
    const orgs = ['111111111', '222222222', '333333333'];
    const items = [...generate({ seed: 5, count: 600, orgCodes: orgs, start: START })];
    expect(new Set(items.map((i) => i.record.orgCode))).toEqual(new Set(orgs));
    expect(new Set(items.map((i) => i.key)).size).toBe(items.length);
  });
});

describe('mix', () => {
  for (const profile of ['default', 'outpatient', 'inpatient'] as const) {
    it(`${profile}: each resource's share within 1.5 points of the profile's`, () => {
      const items = [...generate({ seed: 7, count: 5000, profile, start: START })];
      const counts: Record<string, number> = {};
      for (const it of items) counts[it.resource] = (counts[it.resource] ?? 0) + 1;
      const want = mixOf({ profile });
      for (const [name, share] of Object.entries(want)) {
        expect(Math.abs((counts[name] ?? 0) / items.length - share), `${profile} ${name}: ${counts[name]} of ${items.length} vs ${share}`).toBeLessThan(0.015);
      }
      expect(Object.keys(counts).sort()).toEqual(Object.keys(want).sort());
    });
  }

  it('weights per resource replace the profile, and a resource at weight 0 never appears', () => {
    const items = [
      ...generate({ seed: 3, count: 2000, mix: { emrExLabItem: 3, emrExLab: 1, emrPatientInfo: 1, emrActivityInfo: 1, emrDeathInfo: 0 }, start: START }),
    ];
    const share = items.filter((i) => i.resource === 'emrExLabItem').length / items.length;
    expect(Math.abs(share - 0.5)).toBeLessThan(0.03);
    expect(items.some((i) => i.resource === 'emrDeathInfo')).toBe(false);
  });

  it('contains the realistic parts: notifiable diagnoses with report cards, positive lab items, deaths', () => {
    const items = [...generate({ seed: 11, count: 5000, start: START })];
    const dx = items.filter((i) => i.resource === 'emrActivityInfo');
    const notifiable = dx.filter((i) => i.record.diseaseCode);
    expect(notifiable.length / dx.length).toBeGreaterThan(0.05);
    expect(notifiable.map((i) => i.record.wmDiseaseCode)).toContain('B18.1');
    // Every card follows a notifiable visit of the same patient, naming the same disease.
    for (const card of items.filter((i) => i.resource === 'emrInfReport')) {
      const visit = notifiable.find((v) => v.record.patientId === card.record.patientId && v.record.orgCode === card.record.orgCode);
      expect(visit, `card ${card.key}`).toBeDefined();
      expect(visit!.record.diseaseCode).toBe(card.record.diseaseCode);
    }
    expect(items.some((i) => i.resource === 'emrExLabItem' && i.record.examinationResultCode === '01')).toBe(true);
    expect(items.some((i) => i.resource === 'emrDeathInfo')).toBe(true);
    // Resident ID numbers: one patient is one person across the encounter's records.
    const patients = new Map(items.filter((i) => i.resource === 'emrPatientInfo').map((i) => [`${i.record.orgCode}|${i.record.id}`, i.record.idCard]));
    for (const it of items.filter((i) => i.resource === 'emrActivityInfo')) {
      expect(it.record.idCard).toBe(patients.get(`${it.record.orgCode}|${it.record.patientId}`));
    }
  });
});

describe('causal order', () => {
  it('in order: every parent is sent before its child', () => {
    const items = [...generate({ seed: 9, count: 3000, start: START })];
    const seen = new Set<string>();
    for (const it of items) {
      for (const p of parentKeys(it)) expect(seen.has(p), `${it.key} before its parent ${p}`).toBe(true);
      seen.add(it.key);
    }
  });

  it('out of order on request: about the share asked for, each early child directly followed by its parent', () => {
    const items = [...generate({ seed: 9, count: 3000, start: START, outOfOrderShare: 0.2 })];
    const early = items.filter((i) => i.outOfOrder);
    expect(early.length).toBeGreaterThan(50);
    const seen = new Set<string>();
    for (const [n, it] of items.entries()) {
      const missing = parentKeys(it).filter((p) => !seen.has(p));
      if (it.outOfOrder) {
        expect(missing.length, it.key).toBeGreaterThan(0);
        // The parent comes right behind and says it must wait for the child's answer.
        const next = items[n + 1]!;
        expect(missing).toContain(next.key);
        expect(next.after).toContain(it.key);
      } else {
        expect(missing, `${it.key} before its parent`).toEqual([]);
      }
      seen.add(it.key);
    }
  });

  it('batches keep one resource per batch, at most the size asked, and parents’ resources first', () => {
    const items = [...generate({ seed: 4, count: 2000, start: START })];
    const units = [...batches(items, 50)];
    expect(units.flatMap((u) => u.items)).toHaveLength(items.length);
    const sent = new Set<string>();
    for (const u of units) {
      expect(u.items.length).toBeLessThanOrEqual(50);
      expect(new Set(u.items.map((i) => i.resource))).toEqual(new Set([u.resource]));
      for (const it of u.items) for (const p of parentKeys(it)) expect(sent.has(p), `${it.key} before ${p}`).toBe(true);
      for (const it of u.items) sent.add(it.key);
    }
    expect(depth('emrPatientInfo')).toBe(0);
    expect(depth('emrExLab')).toBe(1);
    expect(depth('emrExLabItem')).toBe(2);
  });
});

describe('validity', () => {
  it('every valid record passes validateRecord of its resource; every invalid one fails it', () => {
    const now = new Date(START.getTime() + 60_000);
    const items = [...generate({ seed: 13, count: 4000, start: START, invalidShare: 0.05, updateShare: 0.02, outOfOrderShare: 0.05 })];
    const invalid = items.filter((i) => !i.valid);
    expect(invalid.length).toBeGreaterThan(100);
    for (const it of items) {
      const r = resources[it.resource]!;
      const v = validateRecord(r, normalizeKeys(r, it.record).known, now);
      if (it.valid) expect(v.ok, `${it.key}: ${JSON.stringify(!v.ok && v.issues)}`).toBe(true);
      else expect(v.ok, `${it.key} (${it.invalidBy}) passed`).toBe(false);
    }
    // Every resource of the data set appears in the default mix, valid.
    expect(new Set(items.filter((i) => i.valid).map((i) => i.resource))).toEqual(new Set(Object.keys(resources)));
  });

  it('updates send a patient again: the same key, later in the stream', () => {
    const items = [...generate({ seed: 21, count: 2000, start: START, updateShare: 0.05 })];
    const keys = items.filter((i) => i.resource === 'emrPatientInfo').map((i) => i.key);
    expect(keys.length - new Set(keys).size).toBeGreaterThan(20);
  });
});

describe('runTraffic bounds', () => {
  it('refuses a non-loopback URL unless allowed, and unbounded runs', async () => {
    expect(isLoopbackUrl('http://127.0.0.1:8881')).toBe(true);
    expect(isLoopbackUrl('http://localhost:8881')).toBe(true);
    expect(isLoopbackUrl('http://[::1]:8881')).toBe(true);
    expect(isLoopbackUrl('http://10.1.2.3:8881')).toBe(false);
    await expect(runTraffic({ baseUrl: 'http://10.1.2.3:8881', rate: 10, count: 1 })).rejects.toThrow(/loopback/);
    await expect(runTraffic({ baseUrl: 'http://127.0.0.1:1', rate: 10 })).rejects.toThrow(/bounded/);
  });

  it('posts to the receive path, counts answers by kind and lists what was acknowledged', async () => {
    const calls: Array<{ url: string; body: unknown }> = [];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body)) as Record<string, unknown>;
      calls.push({ url, body });
      const bad = String(body.id).endsWith('-bad');
      return new Response(
        JSON.stringify(bad ? { result: false, id: body.id, errorCode: 'VALIDATION_FAILED' } : { result: true, id: body.id, status: 'created', version: 1 }),
        {
          status: bad ? 400 : 200,
        },
      );
    }) as unknown as typeof fetch;
    const s = await runTraffic({ baseUrl: 'http://127.0.0.1:9', rate: 2000, count: 60, seed: 2, invalidShare: 0.1, fetch: fakeFetch, concurrency: 4 });
    expect(s.sent).toBe(60);
    expect(calls).toHaveLength(60);
    expect(calls[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:9\/hclient\/emr\/receive\/emr\w+$/);
    expect(s.acknowledged + s.rejected).toBe(60);
    expect(s.rejected).toBeGreaterThan(0);
    expect(s.unexpected).toMatchObject({ validRejected: 0, invalidAccepted: 0 });
    expect(s.acknowledgedRecords).toHaveLength(s.acknowledged);
    expect(s.acknowledgedRecords[0]).toMatchObject({ version: 1, held: false });
  });
});

describe('runTraffic stopped by its duration', () => {
  it('still sends the parent owed to a child it sent early on purpose', async () => {
    // A fake front that remembers what it got. A run bounded by time stops wherever the clock says,
    // often between an early child and the parent right behind it.
    let earlyChildren = 0;
    for (const records of [12, 17, 23, 31, 40, 52]) {
      const sent: Array<{ resource: string; rec: TrafficItem['record'] }> = [];
      const fakeFetch = (async (url: string, init: RequestInit) => {
        const rec = JSON.parse(String(init.body)) as TrafficItem['record'];
        sent.push({ resource: url.split('/').at(-1)!, rec });
        return new Response(JSON.stringify({ result: true, id: rec.id, status: 'created', version: 1 }), { status: 200 });
      }) as unknown as typeof fetch;
      const rate = 400;
      await runTraffic({
        baseUrl: 'http://127.0.0.1:9',
        rate,
        durationS: (records + 0.5) / rate,
        seed: 7,
        outOfOrderShare: 0.6,
        fetch: fakeFetch,
        concurrency: 1,
      });
      const keyOf = (resource: string, rec: TrafficItem['record']) => {
        const def = resources[resource]!;
        return `${resource}|${rec.orgCode}|${rec.id ?? (def.keyField ? rec[def.keyField] : '')}`;
      };
      const all = new Set(sent.map((x) => keyOf(x.resource, x.rec)));
      const before = new Set<string>();
      for (const { resource, rec } of sent) {
        for (const p of resources[resource]!.parents) {
          const parent = `${p.resource}|${rec.orgCode}|${rec[p.field]}`;
          if (!before.has(parent)) earlyChildren++;
          // Every parent named by a record sent is sent too: before it, or right after an early child.
          expect(all.has(parent), `${keyOf(resource, rec)} was sent, its parent ${parent} never (run of ${records} records)`).toBe(true);
        }
        before.add(keyOf(resource, rec));
      }
    }
    // The runs did stop between an early child and its parent at least once (else this proves nothing).
    expect(earlyChildren).toBeGreaterThan(0);
  });
});
