import { joinPath } from './compose.ts';
import { InputError } from './errors.ts';
import type { PlannedImage } from './build-plan.ts';

export interface BuildOptions {
  /** buildx is installed (docker buildx version answers). */
  buildx: boolean;
  /** Every full reference the image gets (name:tag). */
  refs: string[];
  labels: Record<string, string>;
  /** File docker writes the image id to. */
  iidfile: string;
  /** Platforms when the image does not name its own. */
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  /** Provenance attestations (buildx); off unless asked, so the pushed digest is the image itself. */
  provenance: boolean;
  /** Pull newer base images (never for bases built in this run: they are local only). */
  pull: boolean;
  /** buildx builds several platforms straight into the registry (they cannot be loaded into the engine). */
  metadataFile?: string;
  /** The Dockerfile to use instead of context/dockerfile (compose dockerfile_inline written to a file). */
  dockerfilePath?: string;
}

export interface BuildCommand {
  args: string[];
  env: Record<string, string>;
  /** True when the build itself pushes (buildx multi-platform); the push stage then only reads the digest. */
  pushes: boolean;
}

/** The docker command line for one planned image: classic builder or buildx, nothing passed through a shell. */
export function buildCommand(image: PlannedImage, opts: BuildOptions): BuildCommand {
  const platforms = image.platforms.length > 0 ? image.platforms : opts.platforms;
  const args: string[] = [];
  let pushes = false;
  if (opts.buildx) {
    args.push('buildx', 'build', `--provenance=${opts.provenance}`);
    for (const c of opts.cacheFrom) args.push('--cache-from', c);
    for (const c of opts.cacheTo) args.push('--cache-to', c);
    if (platforms.length > 0) args.push('--platform', platforms.join(','));
    if (platforms.length > 1) {
      pushes = true;
      args.push('--push');
      if (opts.metadataFile) args.push('--metadata-file', opts.metadataFile);
    } else args.push('--load');
  } else {
    if (platforms.length > 1) {
      throw new InputError(
        'platforms',
        `'${image.id}' is built for ${platforms.join(', ')}, which needs buildx`,
        'add docker/setup-buildx-action before lading, or build one platform',
      );
    }
    if (opts.cacheTo.length > 0) {
      throw new InputError(
        'cache-to',
        'the classic builder cannot export a cache',
        'add docker/setup-buildx-action, or drop cache-to',
      );
    }
    const needsKit = [
      ...(image.secrets?.length ? ['build.secrets'] : []),
      ...(Object.keys(image.additionalContexts ?? {}).length ? ['build.additional_contexts'] : []),
    ];
    if (needsKit.length > 0) {
      throw new InputError(
        'compose-files',
        `'${image.id}' uses ${needsKit.join(' and ')}, which the classic builder cannot do`,
        'add docker/setup-buildx-action before lading (BuildKit), or drop them',
      );
    }
    args.push('build');
    for (const c of opts.cacheFrom) args.push('--cache-from', c);
    if (platforms.length === 1) args.push('--platform', platforms[0]!);
  }
  args.push('--iidfile', opts.iidfile);
  if (opts.pull && image.dependsOn.length === 0) args.push('--pull');
  args.push('--file', opts.dockerfilePath ?? joinPath(image.context, image.dockerfile ?? 'Dockerfile'));
  if (image.target) args.push('--target', image.target);
  for (const [k, v] of Object.entries(image.resolvedArgs)) args.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries({ ...image.labels, ...opts.labels })) args.push('--label', `${k}=${v}`);
  for (const [k, v] of Object.entries(image.additionalContexts ?? {})) args.push('--build-context', `${k}=${v}`);
  for (const s of image.secrets ?? []) {
    args.push('--secret', s.file ? `id=${s.id},src=${s.file}` : `id=${s.id},env=${s.env ?? s.id}`);
  }
  for (const ref of opts.refs) args.push('--tag', ref);
  args.push(image.context);
  return { args, env: opts.buildx ? {} : { DOCKER_BUILDKIT: '0' }, pushes };
}
