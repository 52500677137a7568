/**
 * The archive store: an S3-compatible bucket (MinIO in production, s3rver under `make up` and the
 * tests) through the `minio` client (docs/backup.md).
 *
 * Uploads stream: bytes are gathered into one part of `partSize` at a time (the upload's whole
 * memory), never the archive. An archive that fits in one part is one PUT carrying its size and
 * SHA-256 as metadata. A larger one is a multipart upload started here (not minio's putObject,
 * which buffers parts of up to 512 MiB and first lists incomplete uploads, a call s3rver lacks),
 * completed only once the producer has exited cleanly, then given its size and SHA-256 by a
 * metadata-only copy onto itself. Any failure aborts the upload and removes the object.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as Minio from 'minio';
import type { StoreSettings } from './config.js';

export type Store = { client: Minio.Client; bucket: string; prefix: string };

export function openStore(s: StoreSettings): Store {
  const client = new Minio.Client({
    endPoint: s.endPoint,
    port: s.port,
    useSSL: s.useSSL,
    accessKey: s.accessKey,
    secretKey: s.secretKey,
    region: s.region,
    pathStyle: true,
  });
  return { client, bucket: s.bucket, prefix: s.prefix };
}

/** Creates the bucket when missing (MinIO in production is usually provisioned already). */
export async function ensureBucket(store: Store): Promise<void> {
  if (!(await store.client.bucketExists(store.bucket))) await store.client.makeBucket(store.bucket);
}

/** Metadata every archive carries (x-amz-meta-*), lower-case keys as S3 returns them. */
export type ArchiveMeta = Record<string, string>;

export interface Finished {
  size: number;
  sha256: string;
}

/**
 * One object being written. `write` applies backpressure (it resolves when the part, if full, is
 * uploaded); `finish` completes it with the final metadata; `abort` leaves nothing behind.
 */
export class ObjectWriter {
  /** The one part buffer, reused for every part: the upload's memory is this, whatever the archive. */
  private readonly buf: Buffer;
  private used = 0;
  private uploadId: string | undefined;
  private etags: { part: number; etag: string }[] = [];
  private hash = createHash('sha256');
  size = 0;

  constructor(
    private readonly store: Store,
    readonly key: string,
    private readonly meta: ArchiveMeta,
    partSize: number,
  ) {
    this.buf = Buffer.allocUnsafe(partSize);
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.size += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const n = chunk.copy(this.buf, this.used, at);
      this.used += n;
      at += n;
      if (this.used === this.buf.length) await this.flushPart();
    }
  }

  private async flushPart(): Promise<void> {
    const body = this.buf.subarray(0, this.used);
    const { client, bucket } = this.store;
    this.uploadId ??= await client.initiateNewMultipartUpload(bucket, this.key, { 'Content-Type': 'application/octet-stream', ...metaHeaders(this.meta) });
    const n = this.etags.length + 1;
    const md5 = createHash('md5').update(body).digest('base64');
    const r = await client.uploadPart(
      { bucketName: bucket, objectName: this.key, uploadID: this.uploadId, partNumber: n, headers: { 'Content-Length': body.length, 'Content-MD5': md5 } },
      body,
    );
    this.etags.push({ part: n, etag: r.etag });
    this.used = 0;
  }

  async finish(extra: ArchiveMeta = {}): Promise<Finished> {
    const sha256 = this.hash.digest('hex');
    const meta = { ...this.meta, ...extra, size: String(this.size), sha256 };
    const { client, bucket } = this.store;
    if (this.uploadId === undefined) {
      const body = this.buf.subarray(0, this.used);
      await client.putObject(bucket, this.key, body, body.length, { 'Content-Type': 'application/octet-stream', ...meta });
    } else {
      if (this.used > 0) await this.flushPart();
      await client.completeMultipartUpload(bucket, this.key, this.uploadId, this.etags);
      this.uploadId = undefined;
      await replaceMeta(this.store, this.key, meta);
    }
    return { size: this.size, sha256 };
  }

  /** Best effort: the store may be the thing that failed. */
  async abort(): Promise<void> {
    const { client, bucket } = this.store;
    if (this.uploadId) await client.abortMultipartUpload(bucket, this.key, this.uploadId).catch(() => undefined);
    await client.removeObject(bucket, this.key).catch(() => undefined);
  }
}

function metaHeaders(meta: ArchiveMeta): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [`X-Amz-Meta-${k}`, v]));
}

/** Replaces an object's metadata in place (a metadata-only copy onto itself). */
export async function replaceMeta(store: Store, key: string, meta: ArchiveMeta): Promise<void> {
  const src = new Minio.CopySourceOptions({ Bucket: store.bucket, Object: key });
  const dest = new Minio.CopyDestinationOptions({
    Bucket: store.bucket,
    Object: key,
    MetadataDirective: 'REPLACE',
    UserMetadata: meta,
    Headers: { 'Content-Type': 'application/octet-stream' },
  });
  await store.client.copyObject(src, dest);
}

export interface ObjectInfo {
  size: number;
  meta: ArchiveMeta;
}

/** The object's size and metadata; null when it does not exist. */
export async function statArchive(store: Store, key: string): Promise<ObjectInfo | null> {
  try {
    const s = await store.client.statObject(store.bucket, key);
    const meta: ArchiveMeta = {};
    for (const [k, v] of Object.entries(s.metaData ?? {})) meta[k.toLowerCase().replace(/^x-amz-meta-/, '')] = String(v);
    return { size: s.size, meta };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NotFound' || code === 'NoSuchKey') return null;
    throw err;
  }
}

/**
 * The archive's bytes. An object the store does not have is said as what it is — the archive file
 * missing, not an encryption key — naming it (docs/backup.md "Restore (runbook)"): the store's own
 * "The specified key does not exist." reads like a missing key in a runbook full of key files.
 */
export async function readArchive(store: Store, key: string): Promise<Readable> {
  try {
    return await store.client.getObject(store.bucket, key);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NotFound' || code === 'NoSuchKey')
      throw new Error(
        `the archive file ${key} is missing from bucket ${store.bucket} (the store has no such object; this is the archive itself, not an encryption key — its manifest may still be there): ` +
          'take another archive (make restore ARCHIVE=<key>, see: infra/backup/cli.ts list)',
      );
    throw err;
  }
}

export async function putSmall(store: Store, key: string, body: Buffer | string, meta: ArchiveMeta = {}): Promise<void> {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  await store.client.putObject(store.bucket, key, b, b.length, {
    'Content-Type': key.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    ...meta,
  });
}

export async function readSmall(store: Store, key: string): Promise<Buffer | null> {
  try {
    const s = await store.client.getObject(store.bucket, key);
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NotFound' || code === 'NoSuchKey') return null;
    throw err;
  }
}

export async function removeArchive(store: Store, key: string): Promise<void> {
  await store.client.removeObject(store.bucket, key);
}

/** Keys under a prefix (the whole prefix of this front by default). */
export async function listKeys(store: Store, prefix = `${store.prefix}/`): Promise<string[]> {
  const out: string[] = [];
  const s = store.client.listObjectsV2(store.bucket, prefix, true);
  for await (const o of s) if ((o as { name?: string }).name) out.push((o as { name: string }).name);
  return out;
}
