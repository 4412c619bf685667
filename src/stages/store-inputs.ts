import type { StoreOptions } from '../io/store.ts';
import { InputError } from '../lib/errors.ts';
import { parseBool, parseInteger } from '../lib/inputs.ts';
import type { InputReader } from '../lib/tag-settings.ts';

/** Reads the store inputs every registry-less stage shares (export, load, extract, deploy, retention). */
export function readStoreOptions(read: InputReader): StoreOptions {
  const o: StoreOptions = {};
  const endpoint = read('s3-endpoint');
  if (endpoint) {
    if (!/^https?:\/\//.test(endpoint))
      throw new InputError(
        's3-endpoint',
        `'${endpoint}' is not a URL`,
        'write e.g. https://<account>.r2.cloudflarestorage.com',
      );
    o.endpoint = endpoint;
  }
  const region = read('s3-region');
  if (region) o.region = region;
  const ps = read('s3-path-style');
  if (ps) o.forcePathStyle = parseBool('s3-path-style', ps, true);
  const gcs = read('gcs-endpoint');
  if (gcs) o.gcsEndpoint = gcs;
  o.concurrency = parseInteger('upload-concurrency', read('upload-concurrency'), 4, { min: 1, max: 64 });
  return o;
}
