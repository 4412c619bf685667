import type { Env } from '../lib/context.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { tagPolicyFromInputs } from '../lib/tag-settings.ts';
import type { PipelineSettings } from '../stages/pipeline.ts';
import { parseBuildInputs } from './build.ts';
import { parseExportInputs } from './export.ts';
import { parseManifestInputs } from './manifest.ts';
import { parsePushSettings } from './push.ts';

/** The umbrella action (action.yml): every stage's inputs, all parsed before anything runs. */
export function parsePipelineSettings(read: InputReader, env: Env): PipelineSettings {
  const v = readInputs(read, ['push', 'store']);
  return {
    tags: tagPolicyFromInputs(read, { images: false }),
    build: parseBuildInputs(read, env),
    push: v.push,
    publish: v.store ? { export: parseExportInputs(read) } : { push: parsePushSettings(read) },
    manifest: parseManifestInputs(read),
  };
}
