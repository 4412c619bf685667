import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../../lib/errors.ts';
import { normalizeRequests, parsePlatform, type Platform } from '../../lib/extract-plan.ts';
import { parseByteSize, parseList } from '../../lib/inputs.ts';
import { readInputs } from '../../lib/input-values.ts';
import { parseProviderOverrides } from '../../lib/registry.ts';
import type { InputReader } from '../../lib/tag-settings.ts';
import { readRegistryAuth } from '../../settings/registry.ts';
import type { StoreOptions } from '../../io/store.ts';
import { parseStoreOptions, readManifestLimits } from '../../settings/common.ts';

/** The extract stage's inputs, parsed once: what to read, which paths, where to put them. */
export interface ExtractSettings {
  requests: string[];
  destination: string;
  cacheDir: string;
  platform: Platform;
  platformGiven: boolean;
  image?: string;
  source?: string;
  manifest?: string;
  sha256?: string;
  overrides: ReturnType<typeof parseProviderOverrides>;
  insecure: string[];
  auth: ReturnType<typeof readRegistryAuth>;
  store: StoreOptions;
  manifestLimits: ReturnType<typeof readManifestLimits>;
  /** source-max-size / source-idle-timeout: the bounds of an https source download. */
  sourceLimits: { maxBytes: number; idleMs: number };
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.RUNNER_TEMP) return join(env.RUNNER_TEMP, 'lading-extract-cache');
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'lading', 'extract');
}

export function readExtractSettings(read: InputReader, env: NodeJS.ProcessEnv, cwd: string): ExtractSettings {
  const image = read('image')?.trim() || undefined;
  const source = read('source')?.trim() || undefined;
  const manifest = read('manifest')?.trim() || undefined;
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
  const destination = read('destination')?.trim();
  if (!destination) throw new InputError('destination', 'is empty', 'name the directory to copy the paths into');
  const sha256 =
    read('sha256')
      ?.trim()
      .replace(/^sha256:/, '') || undefined;
  if (sha256 && !/^[a-f0-9]{64}$/.test(sha256)) throw new InputError('sha256', `'${sha256}' is not a sha256`);
  const rawPlatform = read('platform');
  return {
    requests: normalizeRequests(parseList(read('paths'))),
    destination: resolve(cwd, destination),
    cacheDir: resolve(cwd, read('cache-dir')?.trim() || defaultCacheDir(env)),
    platform: parsePlatform(rawPlatform),
    platformGiven: !!rawPlatform?.trim(),
    ...(image && { image }),
    ...(source && { source }),
    ...(manifest && { manifest }),
    ...(sha256 && { sha256 }),
    overrides: parseProviderOverrides(read('registry-providers')),
    insecure: parseList(read('insecure-registries')),
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
