import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openObjectLocation, type StoreOptions } from '../io/store.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { parseObjectLocation } from '../lib/store-location.ts';

/**
 * Reads the manifest an input names, in any of the forms the build can hand over: its JSON, a file (relative to
 * `cwd`), an https URL, or a store object (s3://bucket/key, gs://bucket/object — the manifest-location output).
 * Validated on the way in: a deploy refuses a manifest it does not understand before touching anything.
 */
export async function readManifestFrom(
  input: string,
  raw: string | undefined,
  opts: { storeOptions?: StoreOptions; cwd?: string } = {},
): Promise<Manifest> {
  const value = raw?.trim();
  if (!value) {
    throw new InputError(
      input,
      'is empty',
      'pass the manifest the build wrote: a file, its JSON, s3://…, gs://… or https://…',
    );
  }
  if (value.startsWith('{')) return parseManifest(value, `the ${input} input`);
  if (/^https?:\/\//.test(value)) {
    const res = await fetch(value).catch((err: Error) => {
      throw new LadingError(`cannot fetch the manifest at ${value}: ${err.message}`, 'check the URL and the network');
    });
    if (!res.ok) {
      throw new LadingError(
        `fetching the manifest at ${value} answered HTTP ${res.status}`,
        'the URL may be wrong or expired',
      );
    }
    return parseManifest(await res.text(), value);
  }
  if (/^(s3|gs):\/\//.test(value)) {
    const { store, key } = await openObjectLocation(parseObjectLocation(input, value), opts.storeOptions);
    return parseManifest((await store.getText(key)).text, value);
  }
  const text = await readFile(resolve(opts.cwd ?? process.cwd(), value), 'utf8').catch(() => {
    throw new InputError(input, `${value} does not exist`, 'give the manifest file the build wrote (manifest-path)');
  });
  return parseManifest(text, value);
}
