import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import type { ObjectInfo, ObjectStore, PutOptions, PutResult, StoreOptions } from './object-store.ts';
import { StoreError } from './object-store.ts';

const MIN_PART = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** Part size that keeps an upload of `size` bytes (with head room for a bad estimate) under 10,000 parts. */
export function partSizeFor(sizeHint: number | undefined): number {
  if (!sizeHint) return 16 * 1024 * 1024;
  const needed = Math.ceil((sizeHint * 2) / (MAX_PARTS - 100));
  return Math.max(MIN_PART, Math.ceil(needed / (1024 * 1024)) * 1024 * 1024);
}

/**
 * S3 and S3-compatible stores (MinIO, R2, s3rver) with the AWS SDK v3. Credentials come from the SDK's default
 * chain (env keys, OIDC web identity from aws-actions/configure-aws-credentials, instance roles); nothing is logged.
 */
export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly concurrency: number;

  constructor(
    readonly bucket: string,
    opts: StoreOptions = {},
  ) {
    this.client = new S3Client({
      region: opts.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: opts.forcePathStyle ?? true } : {}),
      ...(opts.forcePathStyle !== undefined && !opts.endpoint ? { forcePathStyle: opts.forcePathStyle } : {}),
      maxAttempts: 4,
    });
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
  }

  url(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  private fail(err: unknown, key: string, doing: string): never {
    const where = this.url(key);
    if (err instanceof StoreError) throw err;
    if (err instanceof S3ServiceException) {
      const status = err.$metadata?.httpStatusCode;
      if (err.name === 'NoSuchBucket') {
        throw new StoreError(
          `bucket s3://${this.bucket} does not exist (${doing} ${where})`,
          'create the bucket or fix the store location (and region/endpoint)',
          false,
          { cause: err },
        );
      }
      if (err.name === 'NoSuchKey' || err.name === 'NotFound' || status === 404) {
        throw new StoreError(
          `${where} does not exist`,
          'check the location and that the export/build that writes it ran',
          true,
          { cause: err },
        );
      }
      if (err.name === 'AccessDenied' || status === 403) {
        throw new StoreError(
          `no permission for ${doing} ${where}`,
          'grant the role the workflow assumes s3:GetObject/PutObject/ListBucket on the bucket (and check the region)',
          false,
          { cause: err },
        );
      }
      throw new StoreError(
        `${doing} ${where} failed: ${err.name}: ${err.message}`,
        'check the bucket, region and endpoint',
        false,
        { cause: err },
      );
    }
    const e = err as Error;
    if (e?.name === 'CredentialsProviderError') {
      throw new StoreError(
        `no AWS credentials for ${doing} ${where}`,
        'configure credentials (aws-actions/configure-aws-credentials, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
        false,
        { cause: err },
      );
    }
    throw new StoreError(
      `${doing} ${where} failed: ${e?.message ?? String(err)}`,
      'check the endpoint and network',
      false,
      { cause: err },
    );
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: r.ContentLength ?? 0, version: r.ETag, updated: r.LastModified };
    } catch (err) {
      const e = err as S3ServiceException;
      if (e?.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket') {
        // HEAD carries no body: tell a missing bucket from a missing key.
        await this.checkBucket(key);
        return undefined;
      }
      this.fail(err, key, 'reading');
    }
  }

  private async checkBucket(key: string): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1, Prefix: key }));
    } catch (err) {
      this.fail(err, key, 'reading');
    }
  }

  async put(key: string, body: Readable | Buffer | string, opts: PutOptions = {}): Promise<PutResult> {
    if (opts.ifAbsent && (await this.head(key))) return { created: false };
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: opts.contentType ?? 'application/octet-stream',
        ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
      },
      queueSize: this.concurrency,
      partSize: partSizeFor(opts.sizeHint),
      leavePartsOnError: false,
    });
    if (opts.onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && opts.onProgress!(p.loaded));
    // A failing body (docker save died, a digest mismatch) is the real story, not the abort that follows it.
    let bodyError: Error | undefined;
    if (body instanceof Readable) body.once('error', (e) => (bodyError ??= e));
    try {
      const r = await upload.done();
      return { created: true, version: 'ETag' in r ? r.ETag : undefined };
    } catch (err) {
      const e = err as S3ServiceException;
      if (bodyError) {
        if (bodyError instanceof StoreError || bodyError.name === 'LadingError') throw bodyError;
        throw new StoreError(
          `upload to ${this.url(key)} aborted: ${bodyError.message}`,
          'nothing was stored under that name; fix the cause and re-run',
          false,
          { cause: bodyError },
        );
      }
      if (opts.ifAbsent && (e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412))
        return { created: false };
      this.fail(err, key, 'writing');
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.Body as Readable;
    } catch (err) {
      this.fail(err, key, 'reading');
    }
  }

  async getText(key: string): Promise<{ text: string; version?: string }> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { text: (await r.Body?.transformToString('utf8')) ?? '', version: r.ETag };
    } catch (err) {
      this.fail(err, key, 'reading');
    }
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`,
        }),
      );
    } catch (err) {
      this.fail(err, to, 'copying to');
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (err) {
        this.fail(err, prefix, 'listing');
      }
      for (const o of r.Contents ?? []) {
        if (o.Key) yield { key: o.Key, size: o.Size ?? 0, version: o.ETag, updated: o.LastModified };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      this.fail(err, key, 'deleting');
    }
  }

  async signedUrl(key: string, ttlSeconds: number): Promise<string> {
    try {
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
        expiresIn: ttlSeconds,
      });
    } catch (err) {
      this.fail(err, key, 'signing a URL for');
    }
  }
}
