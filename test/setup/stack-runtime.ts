/**
 * The runtime running stack.yml on free loopback ports, as on a hospital's server, for tests that
 * talk to the front the way a HIS or an operator does: infra/runtime/boot.ts on the test database
 * (which tries again on the rare port taken between choosing it and binding it).
 *
 *   const front = await startStackRuntime('answers');          // in beforeAll
 *   await fetch(`${front.rt.portUrls.data}/hclient/emr/receive/emrPatientInfo`, …);
 *   await front.close();                                       // in afterAll
 */
import { bootStack, type Booted } from '../../infra/runtime/boot.js';
import type { RuntimeHandle, RuntimeOptions } from '../../infra/runtime/index.js';
import { expect } from 'vitest';
import { databaseUrl } from './db.js';
import { devKeyFiles } from '../../shared/pii/index.js';

export type StackRuntime = Booted;

/**
 * Starts the runtime; `env` is added to (and overrides) the defaults of bootStack, `over` overrides
 * any runtime option (pass `autoscaler: undefined` to keep the autoscaler's defaults). Every front
 * started here seals personal data with the public development keys (docs/keys.md), as the test
 * processes themselves do: they share the test database, and a front whose keys could not open
 * another's sealed ID numbers would judge them missing (the duplicate-card rules would then match a
 * person by name, not by ID number, when its warning run evaluates another file's records).
 */
export async function startStackRuntime(name: string, env: Record<string, string> = {}, over: Partial<RuntimeOptions> = {}): Promise<StackRuntime> {
  return bootStack({ name, databaseUrl: databaseUrl(), env, runtime: over, secrets: devKeyFiles() });
}

/** A record posted as a HIS does, through the running front's data port: it must be accepted (200). */
export async function hisPost(rt: RuntimeHandle, resource: string, body: unknown): Promise<void> {
  const res = await fetch(`${rt.portUrls.data}/hclient/emr/receive/${resource}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}
