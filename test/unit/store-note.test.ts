// What make up says about a backup store it does not start (docs/backup.md "Settings").
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { endpointAnswers, foreignStoreNotes } from '../../infra/dev/store-note.js';

describe('make up with BACKUP_S3_ENDPOINT set', () => {
  it('names the store it does not start, and says when nothing answers there — its own address called out', () => {
    expect(foreignStoreNotes('http://minio.lan:9000', 9000, true)).toEqual([
      'backup store: BACKUP_S3_ENDPOINT=http://minio.lan:9000, not started by make up (its own store, port 9000, starts only without BACKUP_S3_ENDPOINT)',
    ]);
    const own = foreignStoreNotes('http://127.0.0.1:34900', 34900, false);
    expect(own).toHaveLength(2);
    expect(own[1]).toContain("that is make up's own store's address, which it does not start while BACKUP_S3_ENDPOINT is set");
    expect(foreignStoreNotes('http://10.0.0.5:9000', 34900, false)[1]).toBe(
      'nothing answers at http://10.0.0.5:9000 yet: every backup fails until the store is reachable there (docs/backup.md "Settings")',
    );
  });

  it('tells a listening port from a closed one', async () => {
    const srv = createServer(() => undefined);
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
    const port = (srv.address() as { port: number }).port;
    expect(await endpointAnswers(`http://127.0.0.1:${port}`)).toBe(true);
    await new Promise((ok) => srv.close(ok));
    expect(await endpointAnswers(`http://127.0.0.1:${port}`)).toBe(false);
    expect(await endpointAnswers('not a url')).toBe(false);
  });
});
