/**
 * The embedded S3-compatible store `make up` and the tests run in place of MinIO (docs/backup.md):
 * s3rver, in this process, data under `dir`, loopback only, with the bucket created. It speaks
 * the S3 protocol the `minio` client uses (put, multipart, copy, stat, get, list, delete).
 *
 *   const s3 = await startS3({ dir: '.data/s3', port: 9000 });
 *   s3.endpoint   // 'http://127.0.0.1:9000'
 *   await s3.stop();
 *
 * s3rver accepts only its fixed key pair (S3RVER / S3RVER): these are not secrets. Production
 * points BACKUP_S3_ENDPOINT at MinIO with keys from secret files instead.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';

export const S3RVER_KEY = 'S3RVER';

export interface RunningS3 {
  endpoint: string;
  port: number;
  bucket: string;
  accessKey: string;
  secretKey: string;
  stop(): Promise<void>;
}

function portFree(host: string, port: number): Promise<void> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'EADDRINUSE' ? new Error(`port ${port} (S3 store for backups) is already in use`) : err),
    );
    probe.listen(port, host, () => probe.close(() => ok()));
  });
}

/**
 * Drops the multipart uploads an earlier run of the store left incomplete (their parts under
 * `<bucket>/._S3rver_uploads/`). s3rver implements no AbortMultipartUpload, and an upload cut off by
 * the store going away could not have been aborted anyway: MinIO expires such uploads itself
 * (`api.stale_uploads_expiry`, docs/backup.md), this stand-in when it starts — nothing can be
 * uploading to a store that was not running.
 */
function dropStaleUploads(dir: string): void {
  for (const bucket of readdirSync(dir, { withFileTypes: true })) {
    if (bucket.isDirectory()) rmSync(join(dir, bucket.name, '._S3rver_uploads'), { recursive: true, force: true });
  }
}

export async function startS3(opts: { dir: string; port?: number; host?: string; bucket?: string }): Promise<RunningS3> {
  mkdirSync(opts.dir, { recursive: true });
  dropStaleUploads(opts.dir);
  const bucket = opts.bucket ?? 'cdc-front-backup';
  const host = opts.host ?? '127.0.0.1';
  // s3rver emits a taken port as an unhandled 'error' event (the process dies) instead of rejecting
  // run(): the port is tried first, so make up names it and stops cleanly.
  if (opts.port) await portFree(host, opts.port);
  // Imported at the first start, not with this module: s3rver is a development dependency, and the
  // runtime's bundle, which holds this module, runs on servers where production stores go to MinIO.
  // s3rver ships no types: its constructor options and run/close are all this file uses.
  // @ts-expect-error no declaration file
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ address: host, port: opts.port ?? 0, directory: opts.dir, silent: true, configureBuckets: [{ name: bucket }] });
  let addr: AddressInfo;
  try {
    addr = (await server.run()) as AddressInfo;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new Error(`port ${opts.port} (S3 store for backups) is already in use`);
    throw err;
  }
  let stopped = false;
  return {
    endpoint: `http://${host}:${addr.port}`,
    port: addr.port,
    bucket,
    accessKey: S3RVER_KEY,
    secretKey: S3RVER_KEY,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
  };
}
