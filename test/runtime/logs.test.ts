/** Log lines and rotation, without processes. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogStore, lineSplitter, normaliseLine } from '../../infra/runtime/logs.js';

const dir = mkdtempSync(join(tmpdir(), 'cdc-logs-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('log lines', () => {
  it('keeps a JSON line’s fields and adds where it came from', () => {
    const l = normaliseLine('patient', 'patient-1', 'stdout', '{"level":"warn","msg":"slow query","ts":"2024-01-01T00:00:00.000Z","fn":"spoofed"}');
    expect(l).toEqual({ level: 'warn', msg: 'slow query', ts: '2024-01-01T00:00:00.000Z', fn: 'patient', replica: 'patient-1', stream: 'stdout' });
  });

  it('wraps a plain line', () => {
    const l = normaliseLine('push', 'push-2', 'stderr', 'TypeError: boom');
    expect(l).toMatchObject({ level: 'error', fn: 'push', replica: 'push-2', stream: 'stderr', msg: 'TypeError: boom' });
    expect(typeof l.ts).toBe('string');
  });

  it('splits chunks into lines', () => {
    const got: string[] = [];
    const s = lineSplitter((l) => got.push(l));
    s.push(Buffer.from('a\r\nb'));
    s.push(Buffer.from('c\nd'));
    s.end();
    expect(got).toEqual(['a', 'bc', 'd']);
  });
});

describe('rotation', () => {
  it('rotates by size, keeps N files, and tails across them', () => {
    const store = new LogStore(dir, { rotation: { maxBytes: 2000, keep: 2 }, stdout: false });
    for (let i = 0; i < 100; i++) {
      store.replicaLine('fn', 'fn-1', 'stdout', `line ${i}`);
      if (i % 10 === 9) store.tail('fn', 1); // flushes
    }
    store.close();
    expect(existsSync(join(dir, 'fn.log.1'))).toBe(true);
    expect(existsSync(join(dir, 'fn.log.2'))).toBe(true);
    expect(existsSync(join(dir, 'fn.log.3'))).toBe(false);
    expect(readFileSync(join(dir, 'fn.log'), 'utf8').length).toBeLessThan(2000);
    const store2 = new LogStore(dir, { rotation: { maxBytes: 2000, keep: 2 }, stdout: false });
    const tail = store2.tail('fn', 5).map((l) => JSON.parse(l) as { msg: string });
    expect(tail.map((t) => t.msg)).toEqual(['line 95', 'line 96', 'line 97', 'line 98', 'line 99']);
    store2.close();
  });
});
