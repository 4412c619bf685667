import { DEFAULT_LEVEL } from '../io/compress.ts';
import { TAG_RE } from '../lib/image-ref.ts';
import { InputError } from '../lib/errors.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { parseStoreLocation } from '../lib/store-location.ts';
import type { BuildResult } from '../stages/build.ts';
import type { ExportInputs } from '../stages/export.ts';
import { parseBuildJson } from './build.ts';
import { parseStoreOptions } from './common.ts';

/** actions/export, the umbrella (with store) and `lading export`: where and how to export. */
export function parseExportInputs(read: InputReader): ExportInputs {
  const v = readInputs(read, ['store', 'store-mode', 'compression', 'compression-level', 'aliases']);
  if (!v.store)
    throw new InputError(
      'store',
      'is empty',
      'give the bucket to export to: s3://bucket/prefix, gs://bucket/prefix or a directory',
    );
  for (const a of v.aliases) {
    if (a !== 'tags' && a !== 'none' && !TAG_RE.test(a))
      throw new InputError(
        'aliases',
        `'${a}' is not a valid alias`,
        'aliases follow docker tag rules: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
      );
  }
  return {
    location: parseStoreLocation('store', v.store),
    storeOptions: parseStoreOptions(read),
    mode: v['store-mode'],
    compression: v.compression,
    level: v['compression-level'] ?? DEFAULT_LEVEL[v.compression],
    ...(read('aliases')?.trim() ? { aliases: v.aliases } : {}),
  };
}

/** build-json and the export inputs together (actions/export, `lading export`). */
export function parseExportSettings(read: InputReader): { build: BuildResult; inputs: ExportInputs } {
  return { build: parseBuildJson(read), inputs: parseExportInputs(read) };
}
