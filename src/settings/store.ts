import type { StoreOptions } from '../io/store.ts';
import { InputError } from '../lib/errors.ts';
import { readInputs } from '../lib/input-values.ts';
import { parseBool } from '../lib/inputs.ts';
import type { InputReader } from '../lib/tag-settings.ts';

/** Reads the store inputs every registry-less stage shares (export, load, extract, deploy, retention). */
export function readStoreOptions(read: InputReader): StoreOptions {
  const o: StoreOptions = {};
  const endpoint = url(read, 's3-endpoint', 'https://<account>.r2.cloudflarestorage.com');
  if (endpoint) o.endpoint = endpoint;
  const region = read('s3-region');
  if (region) o.region = region;
  const ps = read('s3-path-style');
  if (ps) o.forcePathStyle = parseBool('s3-path-style', ps, true);
  const gcs = url(read, 'gcs-endpoint', 'https://storage.example.com (an emulator or private endpoint)');
  if (gcs) o.gcsEndpoint = gcs;
  o.concurrency = readInputs(read, ['upload-concurrency'])['upload-concurrency'];
  return o;
}

function url(read: InputReader, name: string, example: string): string | undefined {
  const v = read(name)?.trim();
  if (v && !/^https?:\/\/\S+$/.test(v)) throw new InputError(name, `'${v}' is not a URL`, `write e.g. ${example}`);
  return v || undefined;
}
