import { InputError } from '../lib/errors.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { parseStoreLocation } from '../lib/store-location.ts';
import type { RetentionSettings } from '../stages/retention.ts';
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
