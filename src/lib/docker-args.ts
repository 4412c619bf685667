import { joinPath } from './compose.ts';
import { InputError } from './errors.ts';
import type { PlannedImage } from './build-plan.ts';

/**
 * Which builder runs `docker build` on this machine:
 * - `buildx`: the buildx plugin (GitHub-hosted runners; docker/setup-buildx-action) — every option;
 * - `buildkit`: the engine's own BuildKit through a docker client that still has it built in (client < 23,
 *   `DOCKER_BUILDKIT=1 docker build`) — RUN --mount, secrets and ssh, no cache export, one platform;
 * - `classic`: the legacy builder (a client ≥ 23 without buildx) — no RUN --mount, secrets or ssh.
 */
export type Builder = 'buildx' | 'buildkit' | 'classic';

/** The builder a docker client offers: buildx when it answers, else the built-in BuildKit of clients before 23. */
export function builderFor(f: { buildx: boolean; clientVersion?: string; serverVersion: string }): Builder {
  if (f.buildx) return 'buildx';
  const major = (v: string | undefined) => Number(/^(\d+)\./.exec(v ?? '')?.[1] ?? 'NaN');
  const client = major(f.clientVersion);
  const server = major(f.serverVersion);
  // The engine has BuildKit since 18.09; clients from 23 on hand BuildKit builds to buildx only.
  return client >= 18 && client < 23 && server >= 18 ? 'buildkit' : 'classic';
}

/** How the log and errors name a builder. */
export function describeBuilder(builder: Builder): string {
  return {
    buildx: 'buildx',
    buildkit: "the engine's BuildKit (no buildx)",
    classic: 'the classic builder (no buildx)',
  }[builder];
}

/** One BuildKit secret as the build sees it (/run/secrets/<id>): a file, or an environment variable (buildx). */
export type BuildSecret = { id: string; src: string } | { id: string; env: string };

export interface BuildOptions {
  builder: Builder;
  /** Every full reference the image gets (name:tag). */
  refs: string[];
  labels: Record<string, string>;
  /** File docker writes the image id to. */
  iidfile: string;
  /** Platforms when the image does not name its own. */
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  /** Provenance attestations (buildx `--provenance`): 'false' (the default: the pushed digest is the image itself), 'true', 'mode=max' … */
  provenance: string;
  /** SBOM attestations (buildx `--sbom`): '' = buildx's default, 'true', 'false', 'generator=…'. */
  sbom?: string;
  /** Pull newer base images (never for bases built in this run: they are local only). */
  pull: boolean;
  noCache?: boolean;
  /** Secrets mounted with RUN --mount=type=secret: never build args, never in the image or its history. */
  secrets?: BuildSecret[];
  /** SSH agent sockets or keys to forward (`default`, `id=path`). */
  ssh?: string[];
  shmSize?: string;
  ulimits?: string[];
  network?: string;
  /**
   * buildx builds several platforms straight into the registry (they cannot be loaded into the engine); false
   * (push: false, pull requests) builds them without pushing.
   */
  push?: boolean;
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

const SETUP_BUILDX = 'add docker/setup-buildx-action before lading';

/** A cache-from entry as the engine's builders take it: an image reference (type=registry,ref=X or plain X). */
function engineCacheFrom(entry: string, builder: Builder): string {
  const fields = entry.split(',').map((f) => f.trim());
  if (!fields.some((f) => f.includes('='))) return entry.trim();
  const type = fields.find((f) => f.startsWith('type='))?.slice(5) ?? 'registry';
  const ref = fields.find((f) => f.startsWith('ref='))?.slice(4);
  if (type === 'registry' && ref) return ref;
  throw new InputError(
    'cache-from',
    `'${entry}' needs buildx (the ${builder === 'buildkit' ? "engine's BuildKit" : 'classic builder'} reads only registry images)`,
    `${SETUP_BUILDX}, or use type=registry,ref=<image>`,
  );
}

/** Whether a Dockerfile uses BuildKit-only syntax (RUN --mount, heredocs): the classic builder cannot build it. */
export function needsBuildKit(dockerfile: string): boolean {
  return (
    /^\s*RUN\s+(?:--\w+(?:=\S+)?\s+)*--mount[=\s]/im.test(dockerfile) ||
    /^\s*(?:RUN|COPY)\s.*<<-?["']?\w+/m.test(dockerfile)
  );
}

/** The docker command line for one planned image: buildx, the engine's BuildKit or the classic builder; no shell. */
export function buildCommand(image: PlannedImage, opts: BuildOptions): BuildCommand {
  const platforms = image.platforms.length > 0 ? image.platforms : opts.platforms;
  const { builder } = opts;
  const secrets = opts.secrets ?? [];
  const ssh = opts.ssh ?? [];
  const provenance = opts.provenance.trim() || 'false';
  const sbom = opts.sbom?.trim() ?? '';
  const args: string[] = [];
  let pushes = false;
  if (builder === 'buildx') {
    args.push('buildx', 'build', `--provenance=${provenance}`);
    if (sbom) args.push(`--sbom=${sbom}`);
    for (const c of opts.cacheFrom) args.push('--cache-from', c);
    for (const c of opts.cacheTo) args.push('--cache-to', c);
    if (platforms.length > 0) args.push('--platform', platforms.join(','));
    if (platforms.length > 1) {
      if (opts.push !== false) {
        pushes = true;
        args.push('--push');
        if (opts.metadataFile) args.push('--metadata-file', opts.metadataFile);
      }
    } else args.push('--load');
  } else {
    const what = describeBuilder(builder);
    if (platforms.length > 1) {
      throw new InputError(
        'platforms',
        `'${image.id}' is built for ${platforms.join(', ')}, which needs buildx`,
        `${SETUP_BUILDX}, or build one platform`,
      );
    }
    const inline = opts.cacheTo.filter((c) => /^type=inline\s*$/.test(c.trim()));
    if (opts.cacheTo.length > inline.length || (inline.length > 0 && builder === 'classic')) {
      throw new InputError('cache-to', `${what} cannot export a cache`, `${SETUP_BUILDX}, or drop cache-to`);
    }
    if (!['false', '0'].includes(provenance) || (sbom && !['false', '0'].includes(sbom))) {
      throw new InputError(
        provenance !== 'false' ? 'provenance' : 'sbom',
        `attestations need buildx (${what} cannot add them)`,
        `${SETUP_BUILDX}, or set it to false`,
      );
    }
    if (builder === 'classic' && (secrets.length > 0 || ssh.length > 0)) {
      throw new InputError(
        secrets.length > 0 ? 'secrets' : 'ssh',
        'build secrets and ssh forwarding need BuildKit, and this docker client has neither buildx nor a built-in BuildKit',
        SETUP_BUILDX,
      );
    }
    // compose build options: the classic builder has none of them; the engine's BuildKit takes file secrets only
    const envSecrets = (image.secrets ?? []).some((s) => !s.file);
    const needsKit = [
      ...(image.secrets?.length && (builder === 'classic' || envSecrets) ? ['build.secrets'] : []),
      ...(Object.keys(image.additionalContexts ?? {}).length ? ['build.additional_contexts'] : []),
    ];
    if (needsKit.length > 0) {
      throw new InputError(
        'compose-files',
        builder === 'classic'
          ? `'${image.id}' uses ${needsKit.join(' and ')}, which the classic builder cannot do`
          : `'${image.id}' uses ${needsKit.join(' and ')}${envSecrets ? ' (a secret from the environment)' : ''}, which ${what} cannot do`,
        'add docker/setup-buildx-action before lading (BuildKit), or drop them',
      );
    }
    args.push('build');
    for (const c of opts.cacheFrom) args.push('--cache-from', engineCacheFrom(c, builder));
    if (inline.length > 0) args.push('--build-arg', 'BUILDKIT_INLINE_CACHE=1');
    if (platforms.length === 1) args.push('--platform', platforms[0]!);
  }
  for (const s of secrets) {
    if ('src' in s) args.push('--secret', `id=${s.id},src=${s.src}`);
    else if (builder === 'buildx') args.push('--secret', `id=${s.id},env=${s.env}`);
    else throw new Error(`secret ${s.id}: the engine's BuildKit takes files only (write it to a file first)`);
  }
  for (const s of ssh) args.push('--ssh', s);
  args.push('--iidfile', opts.iidfile);
  if (opts.pull && image.dependsOn.length === 0) args.push('--pull');
  if (opts.noCache) args.push('--no-cache');
  if (opts.network) args.push('--network', opts.network);
  if (opts.shmSize) args.push('--shm-size', opts.shmSize);
  for (const u of opts.ulimits ?? []) args.push('--ulimit', u);
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
  // The builder is chosen by the command and DOCKER_BUILDKIT=1 for the engine's BuildKit; BuildKit is never turned off.
  return { args, env: builder === 'buildkit' ? { DOCKER_BUILDKIT: '1' } : {}, pushes };
}

const SECRET_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * `id=value` per line, as build-push-action's `secrets`, `secret-files` and `secret-envs` take them. Unlike other
 * lists, a line is never split on commas and the value is kept verbatim (a token may contain anything but a newline);
 * the error never echoes the value.
 */
export function parseSecretLines(name: string, raw: string | undefined): Array<{ id: string; value: string }> {
  const out: Array<{ id: string; value: string }> = [];
  for (const [n, line] of (raw ?? '').split(/\r?\n/).entries()) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const eq = line.indexOf('=');
    const id = eq === -1 ? '' : line.slice(0, eq).trim();
    if (!SECRET_ID.test(id)) {
      throw new InputError(
        name,
        `line ${n + 1} is not an id=value pair with an id of letters, digits, '_', '.' or '-'`,
        'write one secret per line, like GIT_AUTH_TOKEN=… (the Dockerfile reads /run/secrets/<id>)',
      );
    }
    if (out.some((s) => s.id === id)) throw new InputError(name, `the secret id '${id}' is given twice`);
    out.push({ id, value: line.slice(eq + 1) });
  }
  return out;
}
