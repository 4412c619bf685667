import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../lib/errors.ts';
import { normalizeRequests, parsePlatform } from '../lib/extract-plan.ts';
import { parseByteSize } from '../lib/inputs.ts';
import { type InputReader, readInputs } from '../lib/input-values.ts';
import { parseProviderOverrides } from '../lib/registry.ts';
import type { ExtractSettings } from '../stages/extract/settings.ts';
import { parseStoreOptions, readManifestLimits } from './common.ts';
import { readRegistryAuth } from './registry.ts';

export type { ExtractSettings } from '../stages/extract/settings.ts';

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.RUNNER_TEMP) return join(env.RUNNER_TEMP, 'lading-extract-cache');
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'lading', 'extract');
}

/** The extract stage's inputs, parsed once at the edge (the extract action, lading extract). */
export function readExtractSettings(read: InputReader, env: NodeJS.ProcessEnv, cwd: string): ExtractSettings {
  const v = readInputs(read, [
    'image',
    'source',
    'manifest',
    'destination',
    'sha256',
    'platform',
    'paths',
    'cache-dir',
    'registry-providers',
    'insecure-registries',
  ]);
  const image = v.image;
  const source = v.source;
  const manifest = v.manifest?.trim() || undefined;
  if (!image && !source && !manifest) {
    throw new InputError(
      'image',
      'none of image, source or manifest is given',
      'name a registry image, an exported object, or a manifest + image',
    );
  }
  if (source && (image || manifest)) {
    throw new InputError(
      'source',
      `is given together with ${image ? 'image' : 'manifest'}`,
      'give one: image (registry), source (object), or manifest + image',
    );
  }
  const destination = v.destination;
  if (!destination) throw new InputError('destination', 'is empty', 'name the directory to copy the paths into');
  const sha256 = v.sha256?.replace(/^sha256:/, '') || undefined;
  if (sha256 && !/^[a-f0-9]{64}$/.test(sha256)) throw new InputError('sha256', `'${sha256}' is not a sha256`);
  return {
    requests: normalizeRequests(v.paths),
    destination: resolve(cwd, destination),
    cacheDir: resolve(cwd, v['cache-dir'] || defaultCacheDir(env)),
    platform: parsePlatform(v.platform),
    // given: a registry index must have it; not given: the table's default, or the image's only platform
    platformGiven: !!read('platform')?.trim(),
    ...(image && { image }),
    ...(source && { source }),
    ...(manifest && { manifest }),
    ...(sha256 && { sha256 }),
    overrides: parseProviderOverrides(v['registry-providers'].join('\n')),
    insecure: v['insecure-registries'],
    auth: readRegistryAuth(read),
    store: parseStoreOptions(read),
    manifestLimits: readManifestLimits(read),
    sourceLimits: readSourceLimits(read),
  };
}

function readSourceLimits(read: InputReader): ExtractSettings['sourceLimits'] {
  const v = readInputs(read, ['source-max-size', 'source-idle-timeout']);
  return {
    maxBytes: parseByteSize('source-max-size', v['source-max-size'], 8 * 1024 ** 3, {
      min: 1024,
      max: 1024 ** 4,
      range: '1k to 1024g',
    }),
    idleMs: v['source-idle-timeout'] * 1000,
  };
}
