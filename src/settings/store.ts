import { InputError } from '../lib/errors.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { parseStoreLocation } from '../lib/store-location.ts';
import type { RetentionSettings } from '../stages/retention.ts';
import type { LoadSettings } from '../stages/load.ts';
import { readManifestFrom } from '../io/manifest-source.ts';
import { parseStoreOptions } from './common.ts';

/** `lading retention`: the store, how many manifests to keep, and whether to delete. */
export function parseRetentionSettings(read: InputReader): RetentionSettings {
  const v = readInputs(read, ['retention-store', 'keep', 'apply']);
  if (!v['retention-store'])
    throw new InputError('store', 'is empty', 'give the store to prune: s3://bucket/prefix or gs://bucket/prefix');
  return {
    location: parseStoreLocation('store', v['retention-store']),
    storeOptions: parseStoreOptions(read),
    keep: v.keep,
    apply: v.apply,
  };
}

/** `lading load`: a source object, or the manifest (read here) and the image ids wanted. */
export async function readLoadSettings(read: InputReader): Promise<LoadSettings> {
  const v = readInputs(read, ['source', 'sha256', 'manifest', 'load-images']);
  const store = parseStoreOptions(read);
  const s: LoadSettings = { store, images: v['load-images'] };
  if (v.source) {
    s.source = v.source;
    if (v.sha256) s.sha256 = v.sha256;
    return s;
  }
  s.manifest = await readManifestFrom('manifest', v.manifest, { storeOptions: store });
  return s;
}
