// The embedded S3 store on a taken port (infra/dev/s3.ts): a clear refusal naming the port, not an
// unhandled 'error' event that kills make up (s3rver itself emits one instead of rejecting).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startS3 } from '../../infra/dev/s3.js';

it('refuses a taken port with its number, and the process lives on', async () => {
  const blocker = createServer();
  await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', () => ok()));
  const port = (blocker.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'cdc-s3-port-'));
  try {
    await expect(startS3({ dir, port })).rejects.toThrow(`port ${port} (S3 store for backups) is already in use`);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // Free again: it starts there.
  const s3 = await startS3({ dir, port });
  expect(s3.endpoint).toBe(`http://127.0.0.1:${port}`);
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
});
