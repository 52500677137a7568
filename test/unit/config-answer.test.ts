// The runtime's own answers on the configuration port (docs/config-bundles.md §3 "Answers"): a refusal
// before the function had the bundle says nothing was applied; after a 504 or a 502 the function had
// it and its transaction may have committed, so the answer says the outcome is unknown and where to look.
import { describe, expect, it } from 'vitest';
import { configAnswer } from '../../infra/runtime/proxy.js';

describe('the configuration port’s runtime answers', () => {
  it('say "nothing applied" only where the function never had the bundle', () => {
    for (const status of [400, 408, 413, 429, 431, 503])
      expect(configAnswer(status, 'x')).toMatchObject({ applied: false, error: { reason: 'x (nothing applied)' } });
    expect(configAnswer(504, 'config: exec_timeout (55000 ms) exceeded')).toEqual({
      error: {
        code: 'timeout',
        reason: 'config: exec_timeout (55000 ms) exceeded (outcome unknown: the bundle may have been applied — GET /bundles/current tells)',
      },
      applied: null,
    });
    expect(configAnswer(502, 'config: replica 1 failed before answering: ECONNRESET')).toMatchObject({ applied: null, error: { code: 'unavailable' } });
  });
});
