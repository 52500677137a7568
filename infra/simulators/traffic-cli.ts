/**
 * Synthetic HIS traffic against a front's data port (see traffic.ts). Prints JSON lines: one
 * `progress` line about every 5 s and a `summary` at the end; with --acks FILE the acknowledged
 * (resource, orgCode, id, version) list is written there as ndjson.
 *
 *   node --import tsx infra/simulators/traffic-cli.ts --url http://127.0.0.1:8881 --rate 50 --duration 60 \
 *     --seed 1 --profile default [--count N] [--batch 20] [--concurrency 8] [--api-key KEY] [--test-mode] \
 *     [--orgs 440106001,440106002] [--mix emrPatientInfo=10,emrExLabItem=30] [--out-of-order 0.05] \
 *     [--invalid 0.02] [--updates 0.01] [--id-prefix run7] [--acks acks.ndjson] [--allow-remote]
 *
 * Exit status: 0 when every valid record was acknowledged and every invalid one refused; 1 otherwise; 2 on usage errors.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PROFILES, runTraffic, type ProfileName } from './traffic.js';

const USAGE = `usage: traffic-cli --url http://127.0.0.1:8881 --rate 50 (--duration 60 | --count 3000) [--seed 1] [--profile default|outpatient|inpatient]
  [--batch 20] [--concurrency 8] [--api-key KEY] [--test-mode] [--orgs a,b] [--mix res=w,...] [--out-of-order 0.05]
  [--invalid 0.02] [--updates 0.01] [--notifiable 0.15] [--id-prefix P] [--acks FILE] [--allow-remote]`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

function num(v: string | undefined, name: string, { min = 0, max = Infinity, int = false } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) fail(`--${name} must be a number in [${min}, ${max}]`);
  return n;
}

const { values: a } = (() => {
  try {
    return parseArgs({
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8881' },
        rate: { type: 'string', default: '50' },
        duration: { type: 'string' },
        count: { type: 'string' },
        seed: { type: 'string', default: '1' },
        profile: { type: 'string', default: 'default' },
        batch: { type: 'string', default: '1' },
        concurrency: { type: 'string', default: '8' },
        'api-key': { type: 'string' },
        'test-mode': { type: 'boolean', default: false },
        orgs: { type: 'string' },
        mix: { type: 'string' },
        'out-of-order': { type: 'string' },
        invalid: { type: 'string' },
        updates: { type: 'string' },
        notifiable: { type: 'string' },
        'id-prefix': { type: 'string' },
        acks: { type: 'string' },
        'allow-remote': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    });
  } catch (err) {
    fail((err as Error).message);
  }
})();

if (a.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
if (!(a.profile! in PROFILES)) fail(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
const durationS = num(a.duration, 'duration', { min: 0.1, max: 86_400 });
const count = num(a.count, 'count', { min: 1, max: 10_000_000, int: true });
if (durationS === undefined && count === undefined) fail('give --duration or --count: traffic is always bounded');
let mix: Record<string, number> | undefined;
if (a.mix) {
  mix = {};
  for (const part of a.mix.split(',')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined) fail(`--mix: "${part}" is not resource=weight`);
    mix[k] = num(v, 'mix', { min: 0 })!;
  }
}

const started = Date.now();
try {
  const s = await runTraffic({
    baseUrl: a.url!,
    rate: num(a.rate, 'rate', { min: 0.01, max: 100_000 })!,
    ...(durationS !== undefined ? { durationS } : {}),
    ...(count !== undefined ? { count } : {}),
    seed: num(a.seed, 'seed', { int: true })!,
    profile: a.profile as ProfileName,
    ...(mix ? { mix } : {}),
    batch: num(a.batch, 'batch', { min: 1, max: 500, int: true })!,
    concurrency: num(a.concurrency, 'concurrency', { min: 1, max: 1024, int: true })!,
    ...(a['api-key'] ? { apiKey: a['api-key'] } : {}),
    ...(a['test-mode'] ? { headers: { 'x-test-mode': '1' } } : {}),
    ...(a.orgs ? { orgCodes: a.orgs.split(',').filter(Boolean) } : {}),
    ...(a['out-of-order'] ? { outOfOrderShare: num(a['out-of-order'], 'out-of-order', { max: 1 })! } : {}),
    ...(a.invalid ? { invalidShare: num(a.invalid, 'invalid', { max: 1 })! } : {}),
    ...(a.updates ? { updateShare: num(a.updates, 'updates', { max: 1 })! } : {}),
    ...(a.notifiable ? { notifiableShare: num(a.notifiable, 'notifiable', { max: 1 })! } : {}),
    ...(a['id-prefix'] ? { idPrefix: a['id-prefix'] } : {}),
    allowRemote: a['allow-remote'],
    onProgress: (() => {
      let last = 0;
      return (p) => {
        if (p.elapsedS - last < 5) return;
        last = p.elapsedS;
        process.stdout.write(JSON.stringify({ type: 'progress', ...p, elapsedS: Number(p.elapsedS.toFixed(1)) }) + '\n');
      };
    })(),
  });
  const { acknowledgedRecords, ...summary } = s;
  if (a.acks) writeFileSync(a.acks, acknowledgedRecords.map((r) => JSON.stringify(r)).join('\n') + (acknowledgedRecords.length ? '\n' : ''));
  process.stdout.write(JSON.stringify({ type: 'summary', url: a.url, seed: Number(a.seed), profile: a.profile, batch: Number(a.batch), ...summary }) + '\n');
  const clean = s.errors === 0 && s.unexpected.validRejected === 0 && s.unexpected.invalidAccepted === 0;
  process.exit(clean ? 0 : 1);
} catch (err) {
  process.stderr.write(JSON.stringify({ type: 'error', message: (err as Error).message, afterS: (Date.now() - started) / 1000 }) + '\n');
  process.exit(2);
}
