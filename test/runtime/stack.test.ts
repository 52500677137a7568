/** stack.yml parsing without processes: substitution, environment files, validation, durations. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scaleConfig, watchdogConfig } from '../../infra/runtime/config.js';
import { parseDuration } from '../../shared/time/duration.js';
import { loadStack, substitute } from '../../infra/runtime/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'cdc-stack-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('substitution', () => {
  it('replaces ${VAR} and ${VAR:-default}, an unset one by ""', () => {
    expect(substitute('a=${A} b=${B:-dflt} c=${C} d=${D:-x}', { A: '1', D: '' })).toBe('a=1 b=dflt c= d=x');
  });
});

describe('loadStack', () => {
  it('reads the project stack.yml with the defaults', () => {
    const s = loadStack(join(import.meta.dirname, '../../stack.yml'), {});
    const patient = s.functions.find((f) => f.name === 'patient')!;
    expect(patient.annotations['com.cdc-front.port']).toBe('8881');
    expect(patient.environment.TZ_LOCAL).toBe('Asia/Shanghai');
    expect(watchdogConfig(patient)).toEqual({
      execTimeoutMs: 30_000,
      readTimeoutMs: 30_000,
      writeTimeoutMs: 35_000,
      maxInflight: 64,
      maxBodyBytes: 8 * 1024 * 1024,
    });
    expect(scaleConfig(patient)).toEqual({ min: 1, max: 4, type: 'capacity', target: 16 });
  });

  it('lets environment_file win over inline environment, paths relative to the stack file', () => {
    writeFileSync(join(dir, 'common.yml'), 'environment:\n  A: from-file\n  N: 3\n');
    writeFileSync(
      join(dir, 'stack.yml'),
      'version: 1.0\nfunctions:\n  f:\n    handler: ./f\n    environment:\n      A: inline\n      B: ${B_VAR:-b}\n    environment_file: [common.yml]\n    annotations:\n      com.cdc-front.port: "${P:-8881}"\n',
    );
    const [f] = loadStack(join(dir, 'stack.yml'), { P: '9999' }).functions;
    expect(f!.environment).toEqual({ A: 'from-file', B: 'b', N: '3' });
    expect(f!.handler).toBe(join(dir, 'f'));
    expect(f!.annotations['com.cdc-front.port']).toBe('9999');
  });

  it('lets a later environment_file win over an earlier one; the receive functions get the larger young generation', () => {
    writeFileSync(join(dir, 'first.yml'), 'environment:\n  A: first\n  B: first\n');
    writeFileSync(join(dir, 'second.yml'), 'environment:\n  B: second\n');
    writeFileSync(join(dir, 'two.yml'), 'version: 1.0\nfunctions:\n  f:\n    handler: ./f\n    environment_file: [first.yml, second.yml]\n');
    expect(loadStack(join(dir, 'two.yml'), {}).functions[0]!.environment).toEqual({ A: 'first', B: 'second' });
    // The project's stack: infra/env/receive.yml after common.yml for the eight receive functions (docs/bench.md "A/B of one replica").
    const fns = loadStack(join(import.meta.dirname, '../../stack.yml'), {}).functions;
    const options = Object.fromEntries(fns.map((f) => [f.name, f.environment.NODE_OPTIONS]));
    const receive = ['patient', 'diagnosis', 'card', 'lab', 'exam', 'order', 'death', 'record'];
    for (const [name, o] of Object.entries(options)) expect(o, name).toBe(receive.includes(name) ? '--max-semi-space-size=2' : '--max-semi-space-size=1');
    expect(Object.keys(options)).toEqual(expect.arrayContaining(receive));
  });

  it('fails naming what is wrong', () => {
    writeFileSync(join(dir, 'bad.yml'), 'functions:\n  Bad_Name:\n    handler: ./x\n');
    expect(() => loadStack(join(dir, 'bad.yml'), {})).toThrow(/functions\.Bad_Name.*DNS label|DNS label/);
    writeFileSync(join(dir, 'nofile.yml'), 'functions:\n  f:\n    handler: ./x\n    environment_file: [missing.yml]\n');
    expect(() => loadStack(join(dir, 'nofile.yml'), {})).toThrow(/missing\.yml/);
  });
});

describe('body limit', () => {
  it("takes a function's MAX_BODY_BYTES from its environment, 8 MiB without, and names a bad one", () => {
    const spec = (env: Record<string, string>) => ({ name: 'f', image: 'f', handler: dir, environment: env, secrets: [], labels: {}, annotations: {} });
    expect(watchdogConfig(spec({})).maxBodyBytes).toBe(8 * 1024 * 1024);
    expect(watchdogConfig(spec({ MAX_BODY_BYTES: '1048576' })).maxBodyBytes).toBe(1024 * 1024);
    expect(() => watchdogConfig(spec({ MAX_BODY_BYTES: '8MB' }))).toThrow(/function f: environment MAX_BODY_BYTES/);
    expect(() => watchdogConfig(spec({ MAX_BODY_BYTES: '0' }))).toThrow(/MAX_BODY_BYTES/);
  });
});

describe('durations', () => {
  it('reads Go durations and bare seconds', () => {
    expect(parseDuration('1m30s', 0)).toBe(90_000);
    expect(parseDuration('250ms', 0)).toBe(250);
    expect(parseDuration('2', 0)).toBe(2000);
    expect(parseDuration(undefined, 7)).toBe(7);
    expect(() => parseDuration('soon', 0)).toThrow(/invalid duration/);
  });
});
