/**
 * An in-process Google Cloud Storage stand-in: the subset of the GCS JSON API that `@google-cloud/storage` (v8) uses
 * for lading's object store, plus V4 signed-URL GETs (the XML-API path style `/<bucket>/<object>?X-Goog-Signature=…`)
 * so a host with only curl can fetch an object.
 *
 * Point the real client at it with no auth at all (a custom `apiEndpoint` that is not a Google domain makes the
 * client skip authentication unless `useAuthWithCustomEndpoint` is set):
 *
 *   new Storage({ apiEndpoint: server.endpoint, projectId: 'test' })
 *   // to sign URLs, add a service-account-shaped credential the server trusts:
 *   new Storage({ apiEndpoint: server.endpoint, projectId: 'test', credentials: serviceAccount })
 *
 * Do not set STORAGE_EMULATOR_HOST: with it the client builds signed URLs and upload URLs differently (it is the
 * fake-gcs-server convention); `apiEndpoint` alone is enough.
 *
 * Supported: resumable uploads (session POST, chunked PUTs with Content-Range, 308 + Range for incomplete sessions,
 * status queries, cancel by DELETE), multipart and media uploads, preconditions (if[Meta]Generation[Not]Match, incl.
 * ifGenerationMatch=0 = create-only → 412), media download with Range (both /download/storage/v1/… and
 * /storage/v1/…?alt=media), object metadata with real md5Hash/crc32c (the client validates crc32c on upload and
 * download), list (prefix, delimiter, startOffset/endOffset, maxResults/pageToken), delete, rewrite/copy, bucket
 * get/list/insert, a per-bucket "no permission" switch (403), and byte counters.
 *
 * Standalone: `npx tsx test/helpers/gcs-server.ts --port 4443 --bucket a --bucket b [--credentials-out sa.json]`.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------------------------
// Checksums as GCS reports them: base64 of the big-endian CRC32C, base64 of the MD5 digest.

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Buffer, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function crc32cBase64(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32c(data));
  return b.toString('base64');
}

// ---------------------------------------------------------------------------------------------------------------

export interface StoredObject {
  name: string;
  data: Buffer;
  contentType: string;
  generation: number;
  metageneration: number;
  md5Hash: string;
  crc32c: string;
  created: Date;
  updated: Date;
  metadata?: Record<string, string>;
}

interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  contentType: string;
  metadata?: Record<string, string>;
  preconditions: Preconditions;
  /** Bytes persisted so far. */
  chunks: Buffer[];
  received: number;
  done?: StoredObject;
}

interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

/** A service-account-shaped credential (what a key file holds) with its public key, for signing URLs in tests. */
export interface ServiceAccount {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
  /** Not part of a key file: the matching public key, PEM. */
  public_key: string;
}

/** Generates a fresh RSA key and a service-account credential around it (no network, nothing written). */
export function makeServiceAccount(email = 'lading-test@test.iam.gserviceaccount.com'): ServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    type: 'service_account',
    project_id: 'test',
    private_key_id: randomBytes(8).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: email,
    client_id: '1',
    token_uri: 'https://oauth2.googleapis.com/token',
    public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The key-file JSON of a service account (without the public key), e.g. for GOOGLE_APPLICATION_CREDENTIALS. */
export function keyFileJson(sa: ServiceAccount): string {
  const { public_key: _omit, ...keyFile } = sa;
  return JSON.stringify(keyFile, null, 2);
}

export interface GcsServerOptions {
  buckets?: string[];
  /** Service accounts whose V4 signed URLs are accepted (verified with their public keys). */
  signers?: ServiceAccount[];
  /** Listen port (0 = random). */
  port?: number;
  host?: string;
}

export interface GcsServerCounters {
  /** Object content bytes received by uploads (resumable chunks, multipart/media bodies), accepted or not. */
  bytesReceived: number;
  /** Object content bytes sent by media downloads (API and signed URLs). */
  bytesSent: number;
  /** Requests seen, by a short name: 'upload.resumable.start', 'upload.resumable.put', 'upload.multipart', … */
  requests: Record<string, number>;
}

export interface GcsServer {
  /** http://127.0.0.1:<port>: the client's apiEndpoint. */
  endpoint: string;
  port: number;
  counters: GcsServerCounters;
  stop(): Promise<void>;
  /** The objects of a bucket by name (live view). */
  objects(bucket: string): Map<string, StoredObject>;
  createBucket(bucket: string): void;
  /** Makes every request touching the bucket fail with 403 (true) or work again (false). */
  denyBucket(bucket: string, deny?: boolean): void;
  /** Accepts V4 signed URLs signed by this service account. */
  trust(sa: ServiceAccount): void;
  /**
   * Fault injection: the next `times` requests of a kind (a `counters.requests` name such as 'upload.resumable.put'
   * or 'download') are answered with `status` (default 503) before anything of them is kept.
   */
  failNext(kind: string, times?: number, status?: number): void;
  /** Stores an object directly (no request, no counters), e.g. to seed a bucket or to race a writer. */
  putObject(bucket: string, name: string, data: Buffer | string, contentType?: string): StoredObject;
  /**
   * Flips one byte of a stored object. By default its md5/crc32c stay those of the original bytes, so the client's
   * download validation catches it; with `updateHashes` they match the corrupted bytes and only an end-to-end check
   * (lading's sha256) can.
   */
  corruptObject(bucket: string, name: string, opts?: { offset?: number; updateHashes?: boolean }): void;
  /** Open resumable sessions not yet finalized. */
  openUploads(): number;
  resetCounters(): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const QUANTUM = 256 * 1024;

function rfc3339(d: Date): string {
  return d.toISOString();
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted'));
    });
  });
}

function numParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new HttpError(400, `Invalid argument for ${name}: '${v}'`, 'invalid');
  return n;
}

function preconditionsFrom(q: URLSearchParams, prefix = ''): Preconditions {
  const p: Preconditions = {};
  const name = (n: string) => (prefix ? prefix + n[0]!.toUpperCase() + n.slice(1) : n);
  for (const k of [
    'ifGenerationMatch',
    'ifGenerationNotMatch',
    'ifMetagenerationMatch',
    'ifMetagenerationNotMatch',
  ] as const) {
    const v = numParam(q, name(k));
    if (v !== undefined) p[k] = v;
  }
  return p;
}

const PRECONDITION_FAILED = 'At least one of the pre-conditions you specified did not hold.';

/** Checks preconditions against the current object (undefined = absent, generation 0). */
function checkPreconditions(p: Preconditions, obj: StoredObject | undefined, read = false): void {
  const gen = obj?.generation ?? 0;
  if (p.ifGenerationMatch !== undefined && p.ifGenerationMatch !== gen) {
    throw new HttpError(412, PRECONDITION_FAILED, 'conditionNotMet');
  }
  if (p.ifGenerationNotMatch !== undefined && p.ifGenerationNotMatch === gen) {
    if (read) throw new HttpError(304, 'Not Modified', 'notModified');
    throw new HttpError(412, PRECONDITION_FAILED, 'conditionNotMet');
  }
  if (p.ifMetagenerationMatch !== undefined && (!obj || p.ifMetagenerationMatch !== obj.metageneration)) {
    throw new HttpError(412, PRECONDITION_FAILED, 'conditionNotMet');
  }
  if (p.ifMetagenerationNotMatch !== undefined && obj && p.ifMetagenerationNotMatch === obj.metageneration) {
    if (read) throw new HttpError(304, 'Not Modified', 'notModified');
    throw new HttpError(412, PRECONDITION_FAILED, 'conditionNotMet');
  }
}

/** RFC 3986 strict encoding, as the client's signer encodes query keys and values. */
function strictEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (!m[2] || n === 0) throw new HttpError(416, 'Requested range not satisfiable', 'requestedRangeNotSatisfiable');
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) {
    throw new HttpError(416, 'Requested range not satisfiable', 'requestedRangeNotSatisfiable', {
      'content-range': `bytes */${size}`,
    });
  }
  return { start, end };
}

export async function startGcsServer(opts: GcsServerOptions = {}): Promise<GcsServer> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  const bucketCreated = new Map<string, Date>();
  const denied = new Set<string>();
  const signers = new Map<string, KeyObject>();
  const sessions = new Map<string, UploadSession>();
  const counters: GcsServerCounters = { bytesReceived: 0, bytesSent: 0, requests: {} };
  let generationClock = Date.now() * 1000;
  let base = '';

  const createBucket = (b: string) => {
    if (!buckets.has(b)) {
      buckets.set(b, new Map());
      bucketCreated.set(b, new Date());
    }
  };
  for (const b of opts.buckets ?? []) createBucket(b);
  const trust = (sa: ServiceAccount) => signers.set(sa.client_email, createPublicKey(sa.public_key));
  for (const sa of opts.signers ?? []) trust(sa);

  const faults = new Map<string, { times: number; status: number }>();
  const count = (what: string) => {
    counters.requests[what] = (counters.requests[what] ?? 0) + 1;
    const f = faults.get(what);
    if (f && f.times > 0) {
      f.times--;
      throw new HttpError(f.status, `gcs-server: injected failure of ${what}`, 'backendError');
    }
  };

  const bucketOf = (name: string, permission: string): Map<string, StoredObject> => {
    if (denied.has(name)) {
      throw new HttpError(
        403,
        `lading-test@test.iam.gserviceaccount.com does not have ${permission} access to the Google Cloud Storage bucket. Permission '${permission}' denied on resource (or it may not exist).`,
        'forbidden',
      );
    }
    const b = buckets.get(name);
    if (!b) throw new HttpError(404, 'The specified bucket does not exist.', 'notFound');
    return b;
  };

  const noSuchObject = (bucket: string, name: string) =>
    new HttpError(404, `No such object: ${bucket}/${name}`, 'notFound');

  const resource = (bucket: string, o: StoredObject) => {
    const enc = encodeURIComponent(o.name);
    return {
      kind: 'storage#object',
      id: `${bucket}/${o.name}/${o.generation}`,
      selfLink: `${base}/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink: `${base}/download/storage/v1/b/${bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket,
      generation: String(o.generation),
      metageneration: String(o.metageneration),
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      etag: Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64'),
      timeCreated: rfc3339(o.created),
      updated: rfc3339(o.updated),
      timeStorageClassUpdated: rfc3339(o.created),
      ...(o.metadata ? { metadata: o.metadata } : {}),
    };
  };

  const bucketResource = (name: string) => ({
    kind: 'storage#bucket',
    id: name,
    selfLink: `${base}/storage/v1/b/${name}`,
    projectNumber: '1',
    name,
    timeCreated: rfc3339(bucketCreated.get(name)!),
    updated: rfc3339(bucketCreated.get(name)!),
    metageneration: '1',
    location: 'US',
    locationType: 'multi-region',
    storageClass: 'STANDARD',
    etag: 'CAE=',
  });

  /** Writes an object, checking preconditions at the moment of the write (like GCS at finalize). */
  const writeObject = (
    bucket: string,
    name: string,
    data: Buffer,
    contentType: string,
    p: Preconditions,
    metadata?: Record<string, string>,
  ): StoredObject => {
    const b = bucketOf(bucket, 'storage.objects.create');
    const existing = b.get(name);
    checkPreconditions(p, existing);
    const now = new Date();
    const obj: StoredObject = {
      name,
      data,
      contentType: contentType || 'application/octet-stream',
      generation: ++generationClock,
      metageneration: 1,
      md5Hash: createHash('md5').update(data).digest('base64'),
      crc32c: crc32cBase64(data),
      created: now,
      updated: now,
      ...(metadata ? { metadata } : {}),
    };
    b.set(name, obj);
    return obj;
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const sendError = (res: ServerResponse, e: HttpError, xml = false) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e.status === 304) {
      res.writeHead(304, e.headers);
      res.end();
      return;
    }
    if (xml) {
      const code =
        e.status === 404
          ? e.message.includes('bucket')
            ? 'NoSuchBucket'
            : 'NoSuchKey'
          : e.status === 403
            ? 'AccessDenied'
            : e.reason;
      const text = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${e.message}</Message></Error>`;
      res.writeHead(e.status, {
        'content-type': 'application/xml; charset=UTF-8',
        'content-length': String(Buffer.byteLength(text)),
        ...e.headers,
      });
      res.end(text);
      return;
    }
    sendJson(
      res,
      e.status,
      {
        error: {
          code: e.status,
          message: e.message,
          errors: [{ message: e.message, domain: 'global', reason: e.reason }],
        },
      },
      e.headers,
    );
  };

  const sendMedia = (req: IncomingMessage, res: ServerResponse, o: StoredObject) => {
    const size = o.data.length;
    const range = parseRange(req.headers.range, size);
    const headers: Record<string, string> = {
      'content-type': o.contentType,
      'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5Hash}`,
      'x-goog-generation': String(o.generation),
      'x-goog-metageneration': String(o.metageneration),
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(size),
      'x-goog-storage-class': 'STANDARD',
      etag: `"${o.md5Hash}"`,
      'last-modified': o.updated.toUTCString(),
      'accept-ranges': 'bytes',
    };
    let body = o.data;
    let status = 200;
    if (range) {
      body = o.data.subarray(range.start, range.end + 1);
      status = 206;
      headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
    }
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    counters.bytesSent += body.length;
    res.end(body);
  };

  // ----- uploads -----

  const sessionUrl = (s: UploadSession) =>
    `${base}/upload/storage/v1/b/${s.bucket}/o?uploadType=resumable&name=${encodeURIComponent(s.name)}&upload_id=${s.id}`;

  const parseMultipart = (
    contentType: string,
    body: Buffer,
  ): { meta: Record<string, unknown>; media: Buffer; mediaType: string } => {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!m) throw new HttpError(400, 'Missing multipart boundary', 'invalid');
    const boundary = Buffer.from(`--${(m[1] ?? m[2])!.trim()}`);
    const parts: { headers: string; body: Buffer }[] = [];
    let pos = body.indexOf(boundary);
    while (pos >= 0) {
      let start = pos + boundary.length;
      if (body.subarray(start, start + 2).toString() === '--') break;
      if (body.subarray(start, start + 2).toString() === '\r\n') start += 2;
      const next = body.indexOf(boundary, start);
      if (next < 0) throw new HttpError(400, 'Malformed multipart body', 'invalid');
      let end = next;
      if (body.subarray(end - 2, end).toString() === '\r\n') end -= 2;
      const part = body.subarray(start, end);
      const sep = part.indexOf('\r\n\r\n');
      if (sep < 0) throw new HttpError(400, 'Malformed multipart part', 'invalid');
      parts.push({ headers: part.subarray(0, sep).toString(), body: part.subarray(sep + 4) });
      pos = next;
    }
    if (parts.length !== 2) throw new HttpError(400, `Expected 2 multipart parts, got ${parts.length}`, 'invalid');
    const mediaType = /content-type:\s*([^\r\n]+)/i.exec(parts[1]!.headers)?.[1]?.trim() ?? 'application/octet-stream';
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(parts[0]!.body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'Invalid JSON metadata part', 'parseError');
    }
    return { meta, media: parts[1]!.body, mediaType };
  };

  const startUpload = async (req: IncomingMessage, res: ServerResponse, bucket: string, q: URLSearchParams) => {
    const uploadType = q.get('uploadType') ?? 'media';
    if (uploadType === 'resumable' && q.get('upload_id')) return continueUpload(req, res, q.get('upload_id')!);
    const p = preconditionsFrom(q);
    if (uploadType === 'resumable') {
      count('upload.resumable.start');
      const body = await readBody(req);
      let meta: Record<string, unknown> = {};
      if (body.length) {
        try {
          meta = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          throw new HttpError(400, 'Invalid JSON payload', 'parseError');
        }
      }
      const name = (q.get('name') ?? (meta.name as string | undefined)) || '';
      if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
      const b = bucketOf(bucket, 'storage.objects.create');
      // GCS checks preconditions when the session starts (and again when it is finalized).
      checkPreconditions(p, b.get(name));
      const s: UploadSession = {
        id: randomBytes(12).toString('hex'),
        bucket,
        name,
        contentType:
          (req.headers['x-upload-content-type'] as string | undefined) ??
          (meta.contentType as string | undefined) ??
          'application/octet-stream',
        ...(meta.metadata ? { metadata: meta.metadata as Record<string, string> } : {}),
        preconditions: p,
        chunks: [],
        received: 0,
      };
      sessions.set(s.id, s);
      res.writeHead(200, { location: sessionUrl(s), 'content-length': '0', 'x-guploader-uploadid': s.id });
      res.end();
      return;
    }
    if (uploadType === 'multipart') {
      count('upload.multipart');
      const body = await readBody(req);
      const { meta, media, mediaType } = parseMultipart(String(req.headers['content-type'] ?? ''), body);
      counters.bytesReceived += media.length;
      const name = (q.get('name') ?? (meta.name as string | undefined)) || '';
      if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
      const obj = writeObject(
        bucket,
        name,
        Buffer.from(media),
        (meta.contentType as string | undefined) ?? mediaType,
        p,
        meta.metadata as Record<string, string> | undefined,
      );
      sendJson(res, 200, resource(bucket, obj));
      return;
    }
    if (uploadType === 'media') {
      count('upload.media');
      const body = await readBody(req);
      counters.bytesReceived += body.length;
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
      const obj = writeObject(bucket, name, body, String(req.headers['content-type'] ?? 'application/octet-stream'), p);
      sendJson(res, 200, resource(bucket, obj));
      return;
    }
    throw new HttpError(400, `Invalid upload type: ${uploadType}`, 'invalid');
  };

  const continueUpload = async (req: IncomingMessage, res: ServerResponse, id: string) => {
    const s = sessions.get(id);
    if (!s) throw new HttpError(404, 'No such upload session', 'notFound');
    if (req.method === 'DELETE') {
      count('upload.resumable.cancel');
      sessions.delete(id);
      res.writeHead(499, { 'content-length': '0' });
      res.end();
      return;
    }
    if (req.method !== 'PUT' && req.method !== 'POST') throw new HttpError(405, 'Method not allowed', 'invalid');
    const persisted = () => {
      const h: Record<string, string> = { 'content-length': '0' };
      if (s.received > 0) h.range = `bytes=0-${s.received - 1}`;
      return h;
    };
    if (s.done) {
      // A finished session answers with the object, whatever is sent.
      await readBody(req).catch(() => Buffer.alloc(0));
      sendJson(res, 200, resource(s.bucket, s.done));
      return;
    }
    let cr = String(req.headers['content-range'] ?? '');
    if (cr === 'bytes 0--1/0') cr = 'bytes */0'; // the client's chunked mode announces an empty object this way
    // Status query: "bytes */*" or "bytes */<total>" with an empty body.
    const status = /^bytes \*\/(\*|\d+)$/.exec(cr);
    if (status) {
      count('upload.resumable.status');
      await readBody(req);
      if (status[1] !== '*' && Number(status[1]) === s.received) return finalize(res, s);
      res.writeHead(308, persisted());
      res.end();
      return;
    }
    count('upload.resumable.put');
    const m = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(cr);
    if (!m && cr) throw new HttpError(400, `Invalid Content-Range: ${cr}`, 'invalid');
    const start = m ? Number(m[1]) : 0;
    const total = m && m[3] !== '*' ? Number(m[3]) : undefined;
    if (start > s.received) {
      await readBody(req).catch(() => Buffer.alloc(0));
      res.writeHead(308, persisted());
      res.end();
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      // The client went away mid-request: nothing of it is kept.
      return;
    }
    counters.bytesReceived += body.length;
    if (m && m[2] !== '*' && Number(m[2]) - start + 1 !== body.length) {
      throw new HttpError(400, `Content-Range ${cr} does not match the ${body.length} bytes sent`, 'invalid');
    }
    const fresh = body.subarray(s.received - start);
    const endOfObject = total !== undefined ? s.received + fresh.length >= total : !m || m[2] === '*';
    if (endOfObject) {
      s.chunks.push(fresh);
      s.received += fresh.length;
      if (total !== undefined && s.received !== total) {
        throw new HttpError(400, `Upload is ${s.received} bytes, Content-Range says ${total}`, 'invalid');
      }
      return finalize(res, s);
    }
    // Like GCS: a non-final chunk persists only whole multiples of 256 KiB; the client resends the rest.
    const keep = Math.floor((s.received + fresh.length) / QUANTUM) * QUANTUM - s.received;
    if (keep > 0) {
      s.chunks.push(Buffer.from(fresh.subarray(0, keep)));
      s.received += keep;
    }
    res.writeHead(308, persisted());
    res.end();
  };

  const finalize = (res: ServerResponse, s: UploadSession) => {
    try {
      s.done = writeObject(s.bucket, s.name, Buffer.concat(s.chunks), s.contentType, s.preconditions, s.metadata);
    } catch (e) {
      sessions.delete(s.id);
      throw e;
    }
    s.chunks = [];
    sendJson(res, 200, resource(s.bucket, s.done));
    setTimeout(() => sessions.delete(s.id), 60_000).unref();
  };

  // ----- signed URLs (XML API path style) -----

  const checkSignedUrl = (req: IncomingMessage, url: URL) => {
    const q = url.searchParams;
    const need = [
      'X-Goog-Algorithm',
      'X-Goog-Credential',
      'X-Goog-Date',
      'X-Goog-Expires',
      'X-Goog-SignedHeaders',
      'X-Goog-Signature',
    ];
    for (const n of need) {
      if (!q.get(n)) throw new HttpError(400, `Missing required query parameter ${n}`, 'MissingSecurityElement');
    }
    if (q.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256') {
      throw new HttpError(400, `Unsupported algorithm ${q.get('X-Goog-Algorithm')}`, 'InvalidArgument');
    }
    const date = q.get('X-Goog-Date')!;
    const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!dm) throw new HttpError(400, `Invalid X-Goog-Date ${date}`, 'InvalidArgument');
    const signedAt = Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!);
    const expires = Number(q.get('X-Goog-Expires'));
    if (!Number.isFinite(expires) || expires <= 0 || expires > 604800) {
      throw new HttpError(400, 'X-Goog-Expires must be between 1 and 604800 seconds', 'InvalidArgument');
    }
    if (Date.now() > signedAt + expires * 1000) {
      throw new HttpError(
        400,
        `The provided token has expired. Request signature expired at: ${new Date(signedAt + expires * 1000).toISOString()}`,
        'ExpiredToken',
      );
    }
    if (Date.now() + 60_000 < signedAt) throw new HttpError(400, 'Request is not yet valid', 'RequestNotYetValid');
    const credential = q.get('X-Goog-Credential')!;
    const [email, day, region, service, term] = credential.split('/');
    if (!email || day !== date.slice(0, 8) || !region || service !== 'storage' || term !== 'goog4_request') {
      throw new HttpError(400, `Malformed X-Goog-Credential ${credential}`, 'InvalidArgument');
    }
    const key = signers.get(email);
    if (!key) throw new HttpError(403, `Unknown signer ${email}`, 'SignatureDoesNotMatch');
    const signedHeaders = q.get('X-Goog-SignedHeaders')!;
    const canonicalHeaders = signedHeaders
      .split(';')
      .map((h) => {
        let v = req.headers[h];
        if (h === 'host') v = String(v ?? '').replace(/:\d+$/, ''); // the client signs the hostname without a port
        return `${h}:${String(v ?? '')
          .trim()
          .replace(/\s{2,}/g, ' ')}\n`;
      })
      .join('');
    const query = [...q.entries()]
      .filter(([k]) => k !== 'X-Goog-Signature')
      .map(([k, v]) => [strictEncode(k), strictEncode(v)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const path = (req.url ?? '').split('?')[0]!;
    const canonical = [
      req.method === 'HEAD' ? 'GET' : req.method,
      path,
      query,
      canonicalHeaders,
      signedHeaders,
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const toSign = [
      'GOOG4-RSA-SHA256',
      date,
      `${day}/${region}/storage/goog4_request`,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const sig = Buffer.from(q.get('X-Goog-Signature')!, 'hex');
    if (!verify('RSA-SHA256', Buffer.from(toSign), key, sig)) {
      throw new HttpError(
        403,
        'The request signature we calculated does not match the signature you provided.',
        'SignatureDoesNotMatch',
      );
    }
  };

  // ----- routing -----

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const segs = url.pathname.split('/').slice(1); // raw (still percent-encoded) segments
    const dec = (s: string | undefined) => decodeURIComponent(s ?? '');

    // /upload/storage/v1/b/:bucket/o
    if (
      segs[0] === 'upload' &&
      segs[1] === 'storage' &&
      segs[2] === 'v1' &&
      segs[3] === 'b' &&
      segs[5] === 'o' &&
      segs.length === 6
    ) {
      if (q.get('upload_id')) return continueUpload(req, res, q.get('upload_id')!);
      if (method !== 'POST') throw new HttpError(405, 'Method not allowed', 'invalid');
      return startUpload(req, res, dec(segs[4]), q);
    }
    // /download/storage/v1/b/:bucket/o/:object
    if (
      segs[0] === 'download' &&
      segs[1] === 'storage' &&
      segs[2] === 'v1' &&
      segs[3] === 'b' &&
      segs[5] === 'o' &&
      segs.length >= 7
    ) {
      count('download');
      return getObject(req, res, dec(segs[4]), dec(segs.slice(6).join('/')), q, true);
    }
    if (segs[0] === 'storage' && segs[1] === 'v1' && segs[2] === 'b') {
      // /storage/v1/b
      if (segs.length === 3 || (segs.length === 4 && segs[3] === '')) {
        if (method === 'GET') {
          count('bucket.list');
          const items = [...buckets.keys()]
            .filter((b) => !denied.has(b))
            .sort()
            .map(bucketResource);
          return sendJson(res, 200, { kind: 'storage#buckets', items });
        }
        if (method === 'POST') {
          count('bucket.insert');
          const meta = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { name?: string };
          if (!meta.name) throw new HttpError(400, 'Required parameter: name', 'required');
          if (buckets.has(meta.name))
            throw new HttpError(
              409,
              'Your previous request to create the named bucket succeeded and you already own it.',
              'conflict',
            );
          createBucket(meta.name);
          return sendJson(res, 200, bucketResource(meta.name));
        }
      }
      const bucket = dec(segs[3]);
      // /storage/v1/b/:bucket
      if (segs.length === 4) {
        count('bucket.get');
        bucketOf(bucket, 'storage.buckets.get');
        if (method === 'GET') return sendJson(res, 200, bucketResource(bucket));
        if (method === 'DELETE') {
          if (buckets.get(bucket)!.size)
            throw new HttpError(409, 'The bucket you tried to delete is not empty.', 'conflict');
          buckets.delete(bucket);
          res.writeHead(204);
          return res.end();
        }
        throw new HttpError(405, 'Method not allowed', 'invalid');
      }
      if (segs[4] !== 'o') throw new HttpError(404, `Not Found: ${url.pathname}`, 'notFound');
      // /storage/v1/b/:bucket/o
      if (segs.length === 5) {
        if (method === 'POST') return startUpload(req, res, bucket, q);
        count('object.list');
        return listObjects(res, bucket, q);
      }
      // /storage/v1/b/:bucket/o/:object/{rewriteTo,copyTo}/b/:dest/o/:destObject
      const rest = segs.slice(5);
      const op = rest.findIndex(
        (s, i) => (s === 'rewriteTo' || s === 'copyTo') && rest[i + 1] === 'b' && rest[i + 3] === 'o',
      );
      if (op > 0 && method === 'POST') {
        count('object.rewrite');
        const rewrite = rest[op] === 'rewriteTo';
        return copyObject(
          req,
          res,
          bucket,
          dec(rest.slice(0, op).join('/')),
          dec(rest[op + 2]),
          dec(rest.slice(op + 4).join('/')),
          q,
          rewrite,
        );
      }
      const name = dec(rest.join('/'));
      if (method === 'GET' || method === 'HEAD') {
        if (q.get('alt') === 'media') {
          count('download');
          return getObject(req, res, bucket, name, q, true);
        }
        count('object.get');
        return getObject(req, res, bucket, name, q, false);
      }
      if (method === 'DELETE') {
        count('object.delete');
        const b = bucketOf(bucket, 'storage.objects.delete');
        const o = b.get(name);
        if (!o) throw noSuchObject(bucket, name);
        const gen = numParam(q, 'generation');
        if (gen !== undefined && gen !== o.generation) throw noSuchObject(bucket, name);
        checkPreconditions(preconditionsFrom(q), o);
        b.delete(name);
        res.writeHead(204, { 'content-length': '0' });
        return res.end();
      }
      if (method === 'PATCH' || method === 'PUT') {
        count('object.patch');
        const b = bucketOf(bucket, 'storage.objects.update');
        const o = b.get(name);
        if (!o) throw noSuchObject(bucket, name);
        checkPreconditions(preconditionsFrom(q), o);
        const meta = JSON.parse((await readBody(req)).toString('utf8') || '{}') as {
          contentType?: string;
          metadata?: Record<string, string>;
        };
        if (meta.contentType) o.contentType = meta.contentType;
        if (meta.metadata) o.metadata = { ...(method === 'PATCH' ? o.metadata : {}), ...meta.metadata };
        o.metageneration++;
        o.updated = new Date();
        return sendJson(res, 200, resource(bucket, o));
      }
      throw new HttpError(405, 'Method not allowed', 'invalid');
    }
    throw new HttpError(404, `Not Found: ${url.pathname}`, 'notFound');
  };

  const getObject = (
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    name: string,
    q: URLSearchParams,
    media: boolean,
  ) => {
    const b = bucketOf(bucket, 'storage.objects.get');
    const o = b.get(name);
    if (!o) throw noSuchObject(bucket, name);
    const gen = numParam(q, 'generation');
    if (gen !== undefined && gen !== o.generation) throw noSuchObject(bucket, name);
    checkPreconditions(preconditionsFrom(q), o, true);
    if (media) return sendMedia(req, res, o);
    sendJson(res, 200, resource(bucket, o));
  };

  const listObjects = (res: ServerResponse, bucket: string, q: URLSearchParams) => {
    const b = bucketOf(bucket, 'storage.objects.list');
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startOffset = q.get('startOffset') ?? '';
    const endOffset = q.get('endOffset') ?? '';
    const max = Math.min(Math.max(1, numParam(q, 'maxResults') ?? 1000), 1000);
    const after = q.get('pageToken') ? Buffer.from(q.get('pageToken')!, 'base64url').toString('utf8') : undefined;
    // Entries in name order: objects and (with a delimiter) collapsed prefixes, each counted once.
    const entries: { name: string; prefix?: boolean }[] = [];
    const seen = new Set<string>();
    for (const name of [...b.keys()].sort()) {
      if (!name.startsWith(prefix)) continue;
      if (startOffset && name < startOffset) continue;
      if (endOffset && name >= endOffset) continue;
      if (delimiter) {
        const i = name.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          const p = name.slice(0, i + delimiter.length);
          if (!seen.has(p)) {
            seen.add(p);
            entries.push({ name: p, prefix: true });
          }
          continue;
        }
      }
      entries.push({ name });
    }
    const from = after === undefined ? 0 : entries.findIndex((e) => e.name > after);
    const page = from < 0 ? [] : entries.slice(from, from + max);
    const more = from >= 0 && from + max < entries.length;
    const body: Record<string, unknown> = { kind: 'storage#objects' };
    const items = page.filter((e) => !e.prefix).map((e) => resource(bucket, b.get(e.name)!));
    const prefixes = page.filter((e) => e.prefix).map((e) => e.name);
    if (items.length) body.items = items;
    if (prefixes.length) body.prefixes = prefixes;
    if (more) body.nextPageToken = Buffer.from(page[page.length - 1]!.name).toString('base64url');
    sendJson(res, 200, body);
  };

  const copyObject = async (
    req: IncomingMessage,
    res: ServerResponse,
    srcBucket: string,
    srcName: string,
    dstBucket: string,
    dstName: string,
    q: URLSearchParams,
    rewrite: boolean,
  ) => {
    const bodyText = (await readBody(req)).toString('utf8');
    const meta = (bodyText ? JSON.parse(bodyText) : {}) as { contentType?: string; metadata?: Record<string, string> };
    const sb = bucketOf(srcBucket, 'storage.objects.get');
    const src = sb.get(srcName);
    if (!src) throw noSuchObject(srcBucket, srcName);
    const srcGen = numParam(q, 'sourceGeneration');
    if (srcGen !== undefined && srcGen !== src.generation) throw noSuchObject(srcBucket, srcName);
    checkPreconditions(preconditionsFrom(q, 'ifSource'), src);
    const obj = writeObject(
      dstBucket,
      dstName,
      src.data,
      meta.contentType ?? src.contentType,
      preconditionsFrom(q),
      meta.metadata ?? src.metadata,
    );
    if (!rewrite) return sendJson(res, 200, resource(dstBucket, obj));
    sendJson(res, 200, {
      kind: 'storage#rewriteResponse',
      totalBytesRewritten: String(obj.data.length),
      objectSize: String(obj.data.length),
      done: true,
      resource: resource(dstBucket, obj),
    });
  };

  const xmlGet = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    count('signed.get');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, 'Method not allowed', 'MethodNotAllowed');
    checkSignedUrl(req, url);
    const segs = url.pathname.split('/').slice(1);
    const bucket = decodeURIComponent(segs[0] ?? '');
    const name = decodeURIComponent(segs.slice(1).join('/'));
    if (!bucket || !name) throw new HttpError(400, 'A signed URL must name a bucket and an object', 'InvalidArgument');
    const b = bucketOf(bucket, 'storage.objects.get');
    const o = b.get(name);
    if (!o) throw new HttpError(404, 'The specified key does not exist.', 'NoSuchKey');
    sendMedia(req, res, o);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const isApi = /^\/(storage|upload|download)\//.test(url.pathname);
    const handler = isApi ? api(req, res, url) : Promise.resolve().then(() => xmlGet(req, res, url));
    handler.catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err, !isApi);
      if (!res.headersSent) {
        sendError(
          res,
          new HttpError(500, `gcs-server: ${(err as Error)?.message ?? String(err)}`, 'backendError'),
          !isApi,
        );
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  base = `http://${opts.host ?? '127.0.0.1'}:${port}`;

  return {
    endpoint: base,
    port,
    counters,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    objects: (bucket) => {
      const b = buckets.get(bucket);
      if (!b) throw new Error(`gcs-server: no bucket ${bucket}`);
      return b;
    },
    createBucket,
    denyBucket: (bucket, deny = true) => void (deny ? denied.add(bucket) : denied.delete(bucket)),
    trust,
    failNext: (kind, times = 1, status = 503) => void faults.set(kind, { times, status }),
    putObject: (bucket, name, data, contentType) =>
      writeObject(bucket, name, Buffer.from(data), contentType ?? 'application/octet-stream', {}),
    corruptObject: (bucket, name, o = {}) => {
      const obj = buckets.get(bucket)?.get(name);
      if (!obj) throw new Error(`gcs-server: no object ${bucket}/${name}`);
      const data = Buffer.from(obj.data);
      const at = Math.min(o.offset ?? Math.floor(data.length / 2), data.length - 1);
      data[at] = data[at]! ^ 0xff;
      obj.data = data;
      if (o.updateHashes) {
        obj.md5Hash = createHash('md5').update(data).digest('base64');
        obj.crc32c = crc32cBase64(data);
      }
    },
    openUploads: () => [...sessions.values()].filter((s) => !s.done).length,
    resetCounters: () => {
      counters.bytesReceived = 0;
      counters.bytesSent = 0;
      counters.requests = {};
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Standalone: npx tsx test/helpers/gcs-server.ts --port 4443 --bucket x [--bucket y] [--credentials-out sa.json]

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const bucketsArg: string[] = [];
  let port = 4443;
  let credentialsOut: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--port') port = Number(args[++i]);
    else if (a === '--bucket') bucketsArg.push(args[++i]!);
    else if (a === '--credentials-out') credentialsOut = args[++i];
    else {
      console.error(`usage: gcs-server.ts [--port N] [--bucket NAME]... [--credentials-out key.json]`);
      process.exit(2);
    }
  }
  const sa = makeServiceAccount();
  const srv = await startGcsServer({ buckets: bucketsArg, port, signers: [sa] });
  if (credentialsOut) writeFileSync(credentialsOut, keyFileJson(sa), { mode: 0o600 });
  console.log(`gcs-server listening on ${srv.endpoint} (buckets: ${bucketsArg.join(', ') || 'none'})`);
  console.log(`client: new Storage({ apiEndpoint: '${srv.endpoint}', projectId: 'test' })`);
  if (credentialsOut) console.log(`signed URLs: credentials for ${sa.client_email} written to ${credentialsOut}`);
  const shutdown = () => void srv.stop().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
