/**
 * Runs the known-truth traffic (truth.ts) through a running front's data port and measures early
 * warning against it (docs/warning.md "Measured against ground truth"): the HIS's reminder stream
 * (server-sent events) is open before the first record; every record is posted as an adapter does;
 * then the reminders seen are compared with the truth — per rule and overall, cases caught / true
 * cases, false prompts / prompts, prompts for a person already carded (duplicate cards), and the time
 * from the raising record's 2xx to its reminder on the stream.
 */
import { truthTraffic, type Rule, type TruthPatient } from './truth.js';

export interface TruthReport {
  patients: number;
  trueCases: number;
  caught: number;
  recall: number;
  prompts: number;
  falsePrompts: number;
  falsePromptShare: number;
  duplicateCardPrompts: number;
  perRule: Record<Rule, { cases: number; caught: number }>;
  missed: Array<{ patientId: string; disease: string; rule: Rule }>;
  falseOnes: Array<{ patientId: string; disease: string; state: string; decoy: string | null }>;
  latencyMs: { n: number; p50: number; p99: number; max: number };
  postedIn: number;
}

interface Seen {
  patientId: string;
  disease: string;
  state: string;
  at: number;
}

const PROMPT_STATES = new Set(['to_confirm', 'to_diagnose']);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Reads the reminder stream until `stop()`; reconnects when a stream ends (they last 50 s). */
function listen(dataUrl: string, orgCode: string, headers: Record<string, string>, onReminder: (r: Seen) => void): { ready: Promise<void>; stop: () => void } {
  const ctrl = new AbortController();
  let stopped = false;
  let readyOk!: () => void;
  const ready = new Promise<void>((r) => (readyOk = r));
  void (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${dataUrl}/function/remind/reminders/stream?orgCode=${orgCode}`, { headers, signal: ctrl.signal });
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = block
              .split('\n')
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            if (event === 'open') readyOk();
            if (event === 'reminder') {
              const r = JSON.parse(data) as { patientId: string; disease: string; state: string };
              onReminder({ patientId: r.patientId, disease: r.disease, state: r.state, at: Date.now() });
            }
          }
        }
      } catch {
        if (stopped) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  return {
    ready,
    stop: () => {
      stopped = true;
      ctrl.abort();
    },
  };
}

export async function measureTruth(o: {
  dataUrl: string;
  orgCode: string;
  patients: number;
  seed?: number;
  headers?: Record<string, string>;
  settleMs?: number;
  concurrency?: number;
}): Promise<TruthReport> {
  const { patients, records } = truthTraffic({ orgCode: o.orgCode, patients: o.patients, seed: o.seed ?? 1, prefix: `gt${o.orgCode.slice(-4)}` });
  const seen: Seen[] = [];
  const headers = o.headers ?? {};
  const stream = listen(o.dataUrl, o.orgCode, headers, (r) => seen.push(r));
  await stream.ready;
  const raisedAt = new Map<string, number>();
  // Each patient's records in order (parents first), patients side by side as HIS adapters send them.
  const byPatient = new Map<string, typeof records>();
  for (const r of records) (byPatient.get(r.patientId) ?? byPatient.set(r.patientId, []).get(r.patientId)!).push(r);
  const queue = [...byPatient.values()];
  const t0 = Date.now();
  const worker = async () => {
    for (let list = queue.shift(); list; list = queue.shift()) {
      for (const r of list) {
        const res = await fetch(`${o.dataUrl}/hclient/emr/receive/${r.resource}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(r.body),
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${r.resource} ${String(r.body.id)}: ${res.status} ${text.slice(0, 300)}`);
        if (r.raises) raisedAt.set(r.patientId, Date.now());
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  const postedIn = Date.now() - t0;
  // Until every true case is seen, or the settle time passes.
  const cases = patients.filter((p): p is TruthPatient & { case: NonNullable<TruthPatient['case']> } => p.case !== null);
  const caughtOf = (p: (typeof cases)[number]) => seen.find((s) => s.patientId === p.patientId && s.disease === p.case.disease && PROMPT_STATES.has(s.state));
  const end = Date.now() + (o.settleMs ?? 20_000);
  while (Date.now() < end && !cases.every(caughtOf)) await new Promise((r) => setTimeout(r, 100));
  // A little longer for prompts that should not come.
  await new Promise((r) => setTimeout(r, 1500));
  stream.stop();

  const truthOf = new Map(patients.map((p) => [p.patientId, p]));
  const promptKeys = new Map<string, Seen>();
  for (const s of seen) if (PROMPT_STATES.has(s.state) && !promptKeys.has(`${s.patientId}|${s.disease}`)) promptKeys.set(`${s.patientId}|${s.disease}`, s);
  const prompts = [...promptKeys.values()];
  const falseOnes = prompts.filter((s) => truthOf.get(s.patientId)?.case?.disease !== s.disease);
  const rules: Rule[] = ['icd10-class-a', 'icd10', 'lab', 'death', 'keyword'];
  const perRule = Object.fromEntries(rules.map((r) => [r, { cases: 0, caught: 0 }])) as TruthReport['perRule'];
  const latencies: number[] = [];
  const missed: TruthReport['missed'] = [];
  for (const p of cases) {
    perRule[p.case.rule].cases++;
    const hit = caughtOf(p);
    if (hit) {
      perRule[p.case.rule].caught++;
      const t = raisedAt.get(p.patientId);
      if (t !== undefined) latencies.push(Math.max(0, hit.at - t));
    } else missed.push({ patientId: p.patientId, disease: p.case.disease, rule: p.case.rule });
  }
  latencies.sort((a, b) => a - b);
  const caught = cases.length - missed.length;
  return {
    patients: patients.length,
    trueCases: cases.length,
    caught,
    recall: cases.length ? caught / cases.length : 1,
    prompts: prompts.length,
    falsePrompts: falseOnes.length,
    falsePromptShare: prompts.length ? falseOnes.length / prompts.length : 0,
    duplicateCardPrompts: prompts.filter((s) => truthOf.get(s.patientId)?.decoy === 'chronic-known').length,
    perRule,
    missed,
    falseOnes: falseOnes.map((s) => ({ patientId: s.patientId, disease: s.disease, state: s.state, decoy: truthOf.get(s.patientId)?.decoy ?? null })),
    latencyMs: { n: latencies.length, p50: pct(latencies, 50), p99: pct(latencies, 99), max: latencies.at(-1) ?? 0 },
    postedIn,
  };
}
