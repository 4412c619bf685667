import type { Readable } from 'node:stream';
import { LadingError } from '../lib/errors.ts';
import type { StoreKind } from '../lib/store-location.ts';

// The store interface its implementations (store-s3, store-gcs, store-file) and its users share; the factory that
// picks an implementation is src/io/store.ts (implementations import only this module: no import cycle).

/** One stored object as listings and HEAD requests describe it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** ETag (S3) or generation (GCS) or mtime (file): changes whenever the object is replaced. */
  version?: string;
  updated?: Date;
}

export interface PutOptions {
  /** Create-only: never replace an existing object (S3 If-None-Match: *, GCS ifGenerationMatch: 0, O_EXCL). */
  ifAbsent?: boolean;
  contentType?: string;
  /** Expected size in bytes when known (sizes multipart parts). */
  sizeHint?: number;
  /** Called with the running byte count as the body is sent. */
  onProgress?: (bytes: number) => void;
}

export interface PutResult {
  /** False when ifAbsent was set and the object already existed (nothing replaced). */
  created: boolean;
  version?: string;
}

/**
 * The few operations lading needs from a bucket. Implementations: S3 (AWS SDK v3 + lib-storage, any S3-compatible
 * endpoint), GCS (@google-cloud/storage, resumable uploads), a local directory. Keys are full keys inside the bucket.
 * Missing objects: `head` resolves undefined, `get` throws a LadingError whose `notFound` is true.
 */
export interface ObjectStore {
  readonly kind: StoreKind;
  readonly bucket: string;
  /** s3://bucket/key, gs://bucket/key or /dir/key. */
  url(key: string): string;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Streams a body in (multipart/resumable for large ones). A body stream that errors leaves no object behind. */
  put(key: string, body: Readable | Buffer | string, opts?: PutOptions): Promise<PutResult>;
  get(key: string): Promise<Readable>;
  getText(key: string): Promise<{ text: string; version?: string }>;
  /** Server-side copy (aliases): no bytes travel through the runner. */
  copy(from: string, to: string): Promise<void>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  /** A short-lived URL a host can GET without credentials (S3 presigned / GCS V4 signed; file: undefined). */
  signedUrl(key: string, ttlSeconds: number): Promise<string | undefined>;
}

export class StoreError extends LadingError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly notFound = false,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

export interface StoreOptions {
  /** S3: region and endpoint (MinIO, R2, s3rver…); path-style addressing when an endpoint is given. */
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  /** GCS: API endpoint (tests use the in-repo GCS server) and project. */
  gcsEndpoint?: string;
  projectId?: string;
  /** Parallel part uploads (S3 multipart queue size). */
  concurrency?: number;
}
