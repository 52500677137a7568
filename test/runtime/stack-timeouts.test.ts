// stack.yml's timeouts as a real OpenFaaS reads them (docs/runtime.md "Timeouts on a real OpenFaaS"):
// of-watchdog's write_timeout must be above exec_timeout, or its Go server drops the connection with
// no answer instead of a 504; and a request through faasd's gateway (read/write 60 s by default) must
// end within the gateway's own limit — except the two long-running functions documented there,
// whose deployment raises the gateway's timeouts.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../shared/time/duration.js';
import { loadStack } from '../../infra/runtime/stack.js';

const GATEWAY_MS = 60_000;
/** Documented in docs/runtime.md as needing the gateway's timeouts raised (or an async invocation). */
const LONG_RUNNING = ['day-close', 'backup'];
const stack = loadStack(resolve('stack.yml'), {});

describe('stack.yml timeouts', () => {
  it.each(stack.functions.map((f) => f.name))('%s: write_timeout above exec_timeout; within the gateway’s unless documented as long-running', (name) => {
    const f = stack.functions.find((x) => x.name === name)!;
    const exec = parseDuration(f.environment.exec_timeout, 10_000);
    const write = parseDuration(f.environment.write_timeout, 10_000);
    const read = parseDuration(f.environment.read_timeout, 10_000);
    if (exec > 0) expect(write, `${name}: write ${write} ms must exceed exec ${exec} ms`).toBeGreaterThan(exec);
    if (LONG_RUNNING.includes(name)) return;
    expect(exec, name).toBeGreaterThan(0);
    expect(write, name).toBeLessThanOrEqual(GATEWAY_MS);
    expect(read, name).toBeLessThanOrEqual(GATEWAY_MS);
  });

  it('the long-running exceptions are the ones docs/runtime.md names', () => {
    const doc = readFileSync('docs/runtime.md', 'utf8');
    const section = doc.slice(doc.indexOf('## Timeouts on a real OpenFaaS'));
    expect(section.length).toBeGreaterThan(100);
    for (const n of LONG_RUNNING) expect(section).toContain(`\`${n}\``);
  });
});
