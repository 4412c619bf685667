import { LadingError } from '../lib/errors.ts';
import { type ObjectLocation, objectUrl, type StoreKind, type StoreLocation } from '../lib/store-location.ts';
import type { ObjectStore, StoreOptions } from './object-store.ts';

export {
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
  StoreError,
  type StoreOptions,
} from './object-store.ts';

/** Opens the store a location names. SDK clients are loaded only for the kind in use. */
export async function openStore(location: StoreLocation, opts: StoreOptions = {}): Promise<ObjectStore> {
  switch (location.kind) {
    case 's3': {
      const { S3Store } = await import('./store-s3.ts');
      return new S3Store(location.bucket, opts);
    }
    case 'gcs': {
      const { GcsStore } = await import('./store-gcs.ts');
      return new GcsStore(location.bucket, opts);
    }
    case 'file': {
      const { FileStore } = await import('./store-file.ts');
      return new FileStore(location.bucket);
    }
  }
}

export function describeLocation(kind: StoreKind, bucket: string, key: string): string {
  return objectUrl(kind, bucket, key);
}

/** The store and key of one object location (s3://bucket/key, gs://bucket/object, or an absolute path). */
export async function openObjectLocation(
  loc: ObjectLocation,
  opts: StoreOptions = {},
): Promise<{ store: ObjectStore; key: string }> {
  if (loc.kind === 'https') throw new LadingError(`${loc.key} is an https URL, not a store object`, 'fetch it instead');
  if (loc.kind === 'file')
    return { store: await openStore({ kind: 'file', bucket: '/', prefix: '' }), key: loc.key.replace(/^\/+/, '') };
  return { store: await openStore({ kind: loc.kind, bucket: loc.bucket, prefix: '' }, opts), key: loc.key };
}
