import { type InputReader, readInputs } from '../lib/input-values.ts';
import type { BuildInputs } from '../stages/build.ts';
import type { RegistryAccess } from '../stages/stale.ts';
import { parseBuildList } from './build.ts';
import { parseRegistrySettings } from './common.ts';

/** actions/stale and `lading stale`: the build's image list and registry access. */
export function parseStaleSettings(read: InputReader): { build: BuildInputs; registry: RegistryAccess } {
  const registry = parseRegistrySettings(read);
  const build: BuildInputs = {
    ...parseBuildList(read),
    platforms: [],
    cacheFrom: [],
    cacheTo: [],
    provenance: 'false',
    sbom: '',
    pull: false,
    noCache: false,
    secrets: [],
    ssh: [],
    ulimits: [],
    push: false,
    extraArgs: {},
    extraLabels: {},
    only: [],
    registry,
  };
  return { build, registry };
}

/** `lading newest`: the image name and registry access. */
export function parseNewestSettings(read: InputReader): { image: string | undefined; registry: RegistryAccess } {
  return { image: readInputs(read, ['newest-image'])['newest-image'], registry: parseRegistrySettings(read) };
}
