// The development-key warning of a destination (shared/uplink/config.ts): said once per destination
// and process, not at every push run (every minute and at every nudge drowned the other warnings).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { destinationFromEnv } from '../../shared/uplink/config.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the development-key warning', () => {
  it('is logged once per destination however often its configuration is read', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const read = (name: string) =>
      destinationFromEnv({ name, kind: 'national', resources: null }, { [`${name.toUpperCase()}_URL`]: 'http://127.0.0.1:9/uplink' }, () => undefined);
    for (let i = 0; i < 5; i++) {
      read('devwarn_a');
      read('devwarn_b');
    }
    const said = lines.filter((l) => l.includes('well-known development keys'));
    expect(said.map((l) => JSON.parse(l).destination)).toEqual(['devwarn_a', 'devwarn_b']);
  });
});
