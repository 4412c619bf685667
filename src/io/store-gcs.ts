import { type Bucket, type File, IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectInfo, ObjectStore, PutOptions, PutResult, StoreOptions } from './object-store.ts';
import { StoreError } from './object-store.ts';

/** Bodies up to this size that are already in memory go up in one multipart request. */
const SIMPLE_MAX = 5 * 1024 * 1024;
/** Resumable chunk: each chunk is one retryable request; a multiple of 256 KiB as GCS requires. */
const DEFAULT_CHUNK = 16 * 1024 * 1024;
const QUANTUM = 256 * 1024;

/** Knobs tests (and the rare user) need beyond StoreOptions. */
export interface GcsTuning {
  /** Resumable chunk size in bytes (rounded up to a multiple of 256 KiB). */
  chunkSize?: number;
  /** Retries of retryable failures (the client's exponential backoff); 0 turns them off. */
  maxRetries?: number;
  /** Objects per list page. */
  pageSize?: number;
}

interface GcsError {
  code?: number | string;
  status?: number;
  message?: string;
  errors?: { message?: string; reason?: string }[];
  response?: { status?: number; data?: { error?: { message?: string } } };
  cause?: unknown;
  name?: string;
}

/** The HTTP status of an error from @google-cloud/storage (ApiError.code, GaxiosError.response.status…). */
export function gcsStatus(err: unknown): number | undefined {
  const e = err as GcsError | undefined;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'number') return e.code;
  if (typeof e.code === 'string' && /^\d{3}$/.test(e.code)) return Number(e.code);
  if (typeof e.status === 'number') return e.status;
  if (typeof e.response?.status === 'number') return e.response.status;
  return undefined;
}

function gcsMessage(err: unknown): string {
  const e = err as GcsError | undefined;
  const msg =
    e?.response?.data?.error?.message ?? e?.errors?.find((x) => x.message)?.message ?? e?.message ?? String(err);
  // Downloads put the raw JSON error body in the message.
  if (msg.startsWith('{')) {
    try {
      const body = JSON.parse(msg) as { error?: { message?: string } };
      if (body.error?.message) return body.error.message;
    } catch {
      // not JSON after all
    }
  }
  return msg;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

function networkCode(err: unknown): string | undefined {
  for (let e = err as GcsError | undefined, i = 0; e && i < 5; e = e.cause as GcsError | undefined, i++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
    const m = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b/.exec(
      e.message ?? '',
    );
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Google Cloud Storage with @google-cloud/storage: resumable uploads for streams (chunked, each chunk retried by the
 * client), multipart for small in-memory bodies, create-only writes with `ifGenerationMatch: 0`, crc32c validation
 * both ways. Credentials come from the library's default chain (GOOGLE_APPLICATION_CREDENTIALS, the credentials file
 * google-github-actions/auth leaves for workload identity federation, the metadata server); with `gcsEndpoint` (an
 * emulator such as the in-repo test server) requests carry no auth at all.
 */
export class GcsStore implements ObjectStore {
  readonly kind = 'gcs' as const;
  private readonly storage: Storage;
  private readonly ref: Bucket;
  private readonly chunkSize: number;
  private readonly pageSize: number;
  private readonly endpoint: string;

  constructor(
    readonly bucket: string,
    opts: StoreOptions = {},
    tuning: GcsTuning = {},
  ) {
    const options: StorageOptions = {
      // (the client reads maxRetries: 0 as "default", so no retries is autoRetry: false)
      retryOptions:
        tuning.maxRetries === 0
          ? { autoRetry: false }
          : {
              autoRetry: true,
              maxRetries: tuning.maxRetries ?? 4,
              maxRetryDelay: 16,
              totalTimeout: 300,
              // Every write lading makes is safe to repeat (content-addressed objects, or the same small JSON again),
              // so retry them too, not only those carrying a precondition.
              idempotencyStrategy: IdempotencyStrategy.RetryAlways,
            },
    };
    if (opts.gcsEndpoint) options.apiEndpoint = opts.gcsEndpoint.replace(/\/+$/, '');
    const projectId = opts.projectId ?? process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
    if (projectId) options.projectId = projectId;
    this.storage = new Storage(options);
    this.ref = this.storage.bucket(bucket);
    const chunk = tuning.chunkSize ?? DEFAULT_CHUNK;
    this.chunkSize = Math.max(QUANTUM, Math.ceil(chunk / QUANTUM) * QUANTUM);
    this.pageSize = Math.max(1, Math.min(1000, tuning.pageSize ?? 1000));
    this.endpoint = options.apiEndpoint ?? 'https://storage.googleapis.com';
  }

  url(key: string): string {
    return `gs://${this.bucket}/${key}`;
  }

  private fail(err: unknown, key: string, doing: string): never {
    if (err instanceof StoreError) throw err;
    const where = this.url(key);
    const status = gcsStatus(err);
    const detail = gcsMessage(err);
    if (status === 404 && /bucket does not exist|no such bucket/i.test(detail)) {
      throw new StoreError(
        `bucket gs://${this.bucket} does not exist (${doing} ${where})`,
        'create it or fix the store location',
        false,
        { cause: err },
      );
    }
    if (status === 404) {
      throw new StoreError(
        `${where} does not exist`,
        'check the location and that the export that writes it ran',
        true,
        {
          cause: err,
        },
      );
    }
    if (status === 401 || status === 403) {
      throw new StoreError(
        `no permission for ${doing} ${where}: ${detail}`,
        'grant roles/storage.objectAdmin on the bucket to the service account the workflow authenticates as (google-github-actions/auth)',
        false,
        { cause: err },
      );
    }
    const net = networkCode(err);
    if (net) {
      throw new StoreError(
        `cannot reach Cloud Storage at ${this.endpoint} (${net}) while ${doing} ${where}`,
        'check the network, proxy settings and the GCS endpoint',
        false,
        { cause: err },
      );
    }
    if (/default credentials|could not load the default credentials|invalid_grant|unauthorized_client/i.test(detail)) {
      throw new StoreError(
        `no usable Google credentials for ${doing} ${where}: ${detail}`,
        'authenticate first (google-github-actions/auth, or GOOGLE_APPLICATION_CREDENTIALS pointing at a key file)',
        false,
        { cause: err },
      );
    }
    const code = (err as GcsError | undefined)?.code;
    if (code === 'CONTENT_DOWNLOAD_MISMATCH' || code === 'FILE_NO_UPLOAD' || code === 'FILE_NO_UPLOAD_DELETE') {
      throw new StoreError(
        `${doing} ${where} failed: the data's checksum did not match (${detail})`,
        'retry; if it persists the object or the network path is corrupting data',
        false,
        { cause: err },
      );
    }
    throw new StoreError(
      `${doing} ${where} failed${status ? ` (HTTP ${status})` : ''}: ${detail}`,
      'check the bucket, credentials and network',
      false,
      { cause: err },
    );
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const [md] = await this.ref.file(key).getMetadata();
      return {
        key,
        size: Number(md.size ?? 0),
        ...(md.generation !== undefined ? { version: String(md.generation) } : {}),
        ...(md.updated ? { updated: new Date(md.updated) } : {}),
      };
    } catch (err) {
      if (gcsStatus(err) === 404 && !/bucket does not exist/i.test(gcsMessage(err))) return undefined;
      this.fail(err, key, 'reading');
    }
  }

  async put(key: string, body: Readable | Buffer | string, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.ref.file(key);
    const common = {
      metadata: { contentType: opts.contentType ?? 'application/octet-stream' },
      validation: 'crc32c' as const,
      ...(opts.ifAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    };
    try {
      // Like the S3 store: an existing object is reported before the body is touched. (A writer racing us between
      // this check and the upload start is caught by ifGenerationMatch: 0, and then the body has been consumed.)
      if (opts.ifAbsent && (await this.head(key))) return { created: false };
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
        if (buf.length <= SIMPLE_MAX) {
          await file.save(buf, { ...common, resumable: false });
          opts.onProgress?.(buf.length);
          return { created: true, ...this.versionOf(file) };
        }
        body = Readable.from([buf]);
      }
      await this.resumable(file, body, common, opts);
      return { created: true, ...this.versionOf(file) };
    } catch (err) {
      if (opts.ifAbsent && gcsStatus(err) === 412) return { created: false };
      this.fail(err, key, 'writing');
    }
  }

  private versionOf(file: File): { version?: string } {
    const g = file.metadata?.generation;
    return g !== undefined && g !== null ? { version: String(g) } : {};
  }

  /**
   * One resumable session, sent in chunks. The session is finalized only after the body ended cleanly, so a body
   * that errors leaves no object; its session is then cancelled.
   */
  private async resumable(file: File, body: Readable, common: object, opts: PutOptions): Promise<void> {
    const ws = file.createWriteStream({ ...common, resumable: true, chunkSize: this.chunkSize });
    let session: string | undefined;
    ws.on('uri', (uri: string) => (session = uri));
    if (opts.onProgress) {
      const report = opts.onProgress;
      ws.on('progress', (p: { bytesWritten?: number }) => p.bytesWritten !== undefined && report(p.bytesWritten));
    }
    try {
      await pipeline(body, ws);
    } catch (err) {
      if (session) await this.cancel(session);
      throw err;
    }
  }

  /** Cancels a resumable session (the session URI is its own credential; GCS answers 499). Best effort. */
  private async cancel(session: string): Promise<void> {
    try {
      const res = await fetch(session, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
    } catch {
      // An abandoned session expires on its own and never becomes an object.
    }
  }

  async get(key: string): Promise<Readable> {
    const { stream } = await this.open(key);
    return stream;
  }

  /** Starts a download and waits for the response headers, so a missing object fails here and not mid-stream. */
  private async open(key: string): Promise<{ stream: Readable; generation?: string }> {
    const src = this.ref.file(key).createReadStream({ validation: 'crc32c' });
    const out = new PassThrough();
    let generation: string | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        src.once(
          'response',
          (res: { statusCode?: number; headers?: Record<string, string | string[] | undefined> }) => {
            const g = res.headers?.['x-goog-generation'];
            if (typeof g === 'string') generation = g;
            if ((res.statusCode ?? 200) < 300) resolve();
            // Errors arrive on 'error' once the body has been read.
          },
        );
        src.once('error', reject);
        src.read(0); // the client starts the request on the first read
      });
    } catch (err) {
      src.destroy();
      this.fail(err, key, 'reading');
    }
    // Not pipeline(): it would destroy `out` with the raw error before it could be mapped.
    src.on('error', (err: unknown) => {
      try {
        this.fail(err, key, 'reading');
      } catch (mapped) {
        out.destroy(mapped as Error);
      }
    });
    out.on('close', () => src.destroy()); // the consumer stopped reading: end the download
    src.pipe(out);
    return { stream: out, ...(generation ? { generation } : {}) };
  }

  async getText(key: string): Promise<{ text: string; version?: string }> {
    const { stream, generation } = await this.open(key);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return { text: Buffer.concat(chunks).toString('utf8'), ...(generation ? { version: generation } : {}) };
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await this.ref.file(from).copy(this.ref.file(to));
    } catch (err) {
      this.fail(err, from, `copying to ${this.url(to)} from`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        const r = await this.ref.getFiles({
          prefix,
          autoPaginate: false,
          maxResults: this.pageSize,
          ...(pageToken ? { pageToken } : {}),
        });
        files = r[0];
        next = r[1] as { pageToken?: string } | null | undefined;
      } catch (err) {
        this.fail(err, prefix, 'listing');
      }
      for (const f of files) {
        const md = f.metadata;
        yield {
          key: f.name,
          size: Number(md.size ?? 0),
          ...(md.generation !== undefined ? { version: String(md.generation) } : {}),
          ...(md.updated ? { updated: new Date(md.updated) } : {}),
        };
      }
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.ref.file(key).delete();
    } catch (err) {
      if (gcsStatus(err) === 404 && !/bucket does not exist/i.test(gcsMessage(err))) return;
      this.fail(err, key, 'deleting');
    }
  }

  async signedUrl(key: string, ttlSeconds: number): Promise<string | undefined> {
    const ttl = Math.max(1, Math.min(7 * 24 * 3600, Math.floor(ttlSeconds)));
    try {
      const [url] = await this.ref
        .file(key)
        .getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + ttl * 1000 });
      return url;
    } catch (err) {
      const detail = gcsMessage(err);
      throw new StoreError(
        `cannot sign a URL for ${this.url(key)}: ${detail}`,
        'sign with a service account: google-github-actions/auth with service_account (workload identity) and ' +
          'roles/iam.serviceAccountTokenCreator for it, or a key file; or let lading stream the object over SSH',
        false,
        { cause: err },
      );
    }
  }
}
