import { InputError } from './errors.ts';

/**
 * Where registry-less artifacts (image archives, layer blobs, manifests) live: an S3 bucket (AWS or any S3-compatible
 * endpoint), a GCS bucket, or a local directory. Written by users as `s3://bucket/prefix`, `gs://bucket/prefix`,
 * `file:///abs/dir` or an absolute path.
 */
export type StoreKind = 's3' | 'gcs' | 'file';

export interface StoreLocation {
  kind: StoreKind;
  /** Bucket name (s3/gcs) or the absolute directory (file). */
  bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  prefix: string;
}

/** A single object: a store location whose prefix names the object itself (no trailing slash). */
export interface ObjectLocation {
  kind: StoreKind | 'https';
  bucket: string;
  key: string;
}

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const KEY_SAFE = /^[A-Za-z0-9!_.*'()/=+@-]*$/;

function splitUrl(input: string, raw: string): { kind: StoreKind; bucket: string; rest: string } {
  const m = /^(s3|gs):\/\/([^/]+)(?:\/(.*))?$/.exec(raw);
  if (m) {
    const kind: StoreKind = m[1] === 's3' ? 's3' : 'gcs';
    const bucket = m[2]!;
    const ok = kind === 's3' ? S3_BUCKET.test(bucket) : GCS_BUCKET.test(bucket);
    if (!ok) {
      throw new InputError(
        input,
        `'${bucket.replace(/^.*@/s, '…@')}' is not a valid ${kind === 's3' ? 'S3' : 'GCS'} bucket name`, // no user:password
        'use lowercase letters, digits, dots and dashes, 3 to 63 characters',
      );
    }
    return { kind, bucket, rest: m[3] ?? '' };
  }
  const path = raw.startsWith('file://') ? raw.slice('file://'.length) : raw;
  if (path.startsWith('/')) return { kind: 'file', bucket: '/', rest: path.replace(/^\/+/, '') };
  throw new InputError(
    input,
    `'${shownUrl(raw)}' is not a store location`,
    'write s3://bucket/prefix, gs://bucket/prefix, or an absolute directory (file:///dir or /dir)',
  );
}

function checkKey(input: string, key: string): string {
  if (key.split('/').some((s) => s === '..' || s === '.')) {
    throw new InputError(input, `'${key}' contains '.' or '..' path segments`, 'name the prefix without them');
  }
  if (!KEY_SAFE.test(key)) {
    throw new InputError(
      input,
      `'${shownUrl(key)}' contains characters lading does not put in object keys`, // no query, no user:password
      'use letters, digits and / . _ - only',
    );
  }
  return key;
}

/** Parses a store location (a "folder"): s3://bucket/prefix, gs://bucket/prefix, file:///dir, /dir. */
export function parseStoreLocation(input: string, raw: string): StoreLocation {
  const value = raw.trim();
  const { kind, bucket, rest } = splitUrl(input, value);
  if (kind === 'file') {
    const dir = `/${rest}`.replace(/\/+$/, '') || '/';
    checkKey(input, dir);
    return { kind, bucket: dir, prefix: '' };
  }
  const prefix = checkKey(input, rest.replace(/^\/+/, '').replace(/\/*$/, ''));
  return { kind, bucket, prefix: prefix ? `${prefix}/` : '' };
}

/**
 * A loopback host name as a URL gives it (URL.hostname): localhost, 127.0.0.0/8 or [::1]. Plain http is accepted to
 * these only (manifests, objects, agents' webhooks, registries): nothing in transit can change what comes back.
 */
export function isLoopbackHost(hostname: string): boolean {
  return /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i.test(hostname);
}

/**
 * A URL as errors and logs show it: without its query, fragment and user info, where a signed URL carries its
 * signature (S3 presigned, GCS signed, SAS tokens) and a basic-auth URL its password.
 */
export function shownUrl(raw: string | URL): string {
  try {
    const u = new URL(raw);
    // http(s) and the other special schemes; s3://, gs:// and opaque ones ('null' origin) go by text below
    if (u.origin !== 'null') return `${u.origin}${u.pathname}`;
  } catch {
    // not a URL: by text
  }
  return String(raw)
    .replace(/[?#].*$/s, '')
    .replace(/\/\/[^/]*@/g, '//');
}

/** Parses the location of one object: s3://bucket/key, gs://bucket/object, an absolute path, or an https URL. */
export function parseObjectLocation(input: string, raw: string): ObjectLocation {
  const value = raw.trim();
  if (/^https?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InputError(
        input,
        `'${shownUrl(value)}' is not a valid URL`,
        'write the full https:// address of the object',
      );
    }
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      throw new InputError(
        input,
        `'${url.origin}' is plain http`,
        'use https (plain http is accepted on loopback only)',
      );
    }
    return { kind: 'https', bucket: url.origin, key: value };
  }
  const { kind, bucket, rest } = splitUrl(input, value);
  if (!rest || rest.endsWith('/')) {
    throw new InputError(
      input,
      `'${shownUrl(value)}' names a folder, not an object`,
      'give the full object name, e.g. s3://bucket/path/manifest.json',
    );
  }
  if (kind === 'file') return { kind, bucket: '/', key: checkKey(input, `/${rest}`) };
  return { kind, bucket, key: checkKey(input, rest) };
}

/** The URL form of a location, as logs and the manifest show it. */
export function objectUrl(kind: StoreKind, bucket: string, key: string): string {
  if (kind === 'file') return `${bucket.replace(/\/$/, '')}/${key}`.replace(/\/+/g, '/');
  return `${kind === 's3' ? 's3' : 'gs'}://${bucket}/${key}`;
}

/** A docker image name as a key segment: registry host and path kept readable, ':' never used. */
export function imageKeySegment(name: string): string {
  return name.replace(/[^A-Za-z0-9._/-]/g, '_').replace(/\/+/g, '/');
}

export type ArchiveCompression = 'zstd' | 'gzip' | 'none';
export const COMPRESSION_SUFFIX: Record<ArchiveCompression, string> = {
  zstd: '.tar.zst',
  gzip: '.tar.gz',
  none: '.tar',
};

/** Object names lading uses inside a store prefix. */
export const storeKeys = {
  /** The archive of one image, addressed by the image ID (a hash of its config, which names every layer). */
  archive: (prefix: string, name: string, imageId: string, c: ArchiveCompression) =>
    `${prefix}images/${imageKeySegment(name)}/${imageId.replace(':', '-')}${COMPRESSION_SUFFIX[c]}`,
  /** Sidecar with sha256/size/imageId of an archive, written after the archive itself. */
  sidecar: (archiveKey: string) => `${archiveKey}.json`,
  /** `<name>-<alias>` copies for hosts that fetch by a fixed name (the seed's `-latest`). */
  alias: (prefix: string, name: string, alias: string, c: ArchiveCompression) =>
    `${prefix}images/${imageKeySegment(name)}-${alias}${COMPRESSION_SUFFIX[c]}`,
  /** Layers mode: `<name>-<alias>.index.json` copies of an image's index. */
  aliasIndex: (prefix: string, name: string, alias: string) =>
    `${prefix}images/${imageKeySegment(name)}-${alias}.index.json`,
  blob: (prefix: string, digest: string) => `${prefix}blobs/sha256/${digest.replace(/^sha256:/, '')}`,
  index: (prefix: string, name: string, imageId: string) =>
    `${prefix}images/${imageKeySegment(name)}/${imageId.replace(':', '-')}.index.json`,
  manifestBySha: (prefix: string, sha: string) => `${prefix}manifests/by-sha/${sha}.json`,
  manifestByTag: (prefix: string, tag: string) => `${prefix}manifests/by-tag/${tag}.json`,
  manifestChannel: (prefix: string, channel: string) => `${prefix}manifests/channels/${channel}.json`,
};
