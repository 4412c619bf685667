import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { userDockerConfigDir, withDockerConfig } from '../io/docker-config.ts';
import { Docker, lastLines } from '../io/docker.ts';
import { registryHostOf } from '../lib/registry.ts';
import { registryCredentials, type RegistrySettings } from './registry-login.ts';
import {
  dockerfileBases,
  type ImageSpec,
  type PlannedImage,
  planBuilds,
  selectBuilds,
  specsFromCompose,
  stripTagAndDigest,
} from '../lib/build-plan.ts';
import { baseImageLabels } from '../lib/stale.ts';
import { type ComposeService, joinPath, servicesFromModel } from '../lib/compose.ts';
import { type ComposeResolver, loadComposeProject } from '../io/compose.ts';
import type { BuildContext, Env } from '../lib/context.ts';
import type { TagPolicy } from '../lib/tags.ts';
import {
  type BuildSecret,
  type Builder,
  buildCommand,
  builderFor,
  describeBuilder,
  needsBuildKit,
} from '../lib/docker-args.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import type { Reporter } from '../io/reporter.ts';
import { runTagsStage, type TagsResult } from './tags.ts';

export interface BuiltImage {
  id: string;
  name: string;
  services: string[];
  /** Local image id (sha256:…), as the engine knows it. */
  imageId?: string;
  tags: string[];
  refs: string[];
  platforms: string[];
  /** Built straight into the registry (buildx, several platforms): nothing to push. */
  pushedByBuild: boolean;
  dependsOn: string[];
}

export interface BuildResult {
  context: BuildContext;
  tags: string[];
  primary: string;
  channel?: string;
  labels: Record<string, string>;
  images: BuiltImage[];
  composeFiles: string[];
}

export interface BuildSettings {
  specs: ImageSpec[];
  composeFiles: Array<{ path: string; text: string }>;
  platforms: string[];
  cacheFrom: string[];
  cacheTo: string[];
  provenance: string;
  sbom: string;
  pull: boolean;
  noCache: boolean;
  /** secrets (values: written to 0600 files for the build), secret-files (paths), secret-envs (variable names). */
  secrets: Array<{ id: string; value: string; from: 'value' | 'file' | 'env' }>;
  ssh: string[];
  shmSize?: string;
  ulimits: string[];
  network?: string;
  /** false: build only (pull requests); multi-platform buildx builds do not push. */
  push: boolean;
  extraArgs: Record<string, string>;
  extraLabels: Record<string, string>;
  /** Compose variables used without a value (compose substitutes ''). */
  missingVars: string[];
  /** How the compose project was read (compose itself, or the built-in resolver). */
  composeVia?: string;
}

/** The build's typed inputs, parsed at the edge (src/settings/build.ts); files are read by the stage. */
export type BuildInputs = Omit<BuildSettings, 'specs' | 'composeFiles' | 'missingVars' | 'composeVia'> & {
  /** The `images` list (YAML or names), parsed. */
  images: ImageSpec[];
  composeFiles: string[];
  /** compose's --env-file: env files for interpolation instead of the project .env. */
  composeEnvFiles: string[];
  composeResolver: ComposeResolver;
  /** Rebuild only these image ids (and what is built on them); empty = everything. */
  only: string[];
  /** Logins for multi-platform buildx builds, which push from the build itself. */
  registry: RegistrySettings;
};

/** Where the build's tags come from: the tags step's result (tags-json, or the umbrella's tags stage) or a policy. */
export type TagsInput = { result: TagsResult } | { policy: TagPolicy };

async function exists(path: string, kind: 'file' | 'dir'): Promise<boolean> {
  try {
    const s = await stat(path);
    return kind === 'file' ? s.isFile() : s.isDirectory();
  } catch {
    return false;
  }
}

/** Reads and checks every build input before anything is built. */
export async function readBuildSettings(inputs: BuildInputs, cwd: string, env: Env): Promise<BuildSettings> {
  const composePaths = inputs.composeFiles;
  const composeFiles: Array<{ path: string; text: string }> = [];
  for (const path of composePaths) {
    try {
      composeFiles.push({ path, text: await readFile(isAbsolute(path) ? path : join(cwd, path), 'utf8') });
    } catch {
      throw new InputError('compose-files', `${path} does not exist (relative to ${cwd})`);
    }
  }
  const listed = inputs.images;
  let services: ComposeService[] = [];
  let missing: string[] = [];
  let composeVia: string | undefined;
  if (composePaths.length > 0) {
    const project = await loadComposeProject({
      cwd,
      files: composePaths,
      envFiles: inputs.composeEnvFiles.length > 0 ? inputs.composeEnvFiles : undefined,
      env: { ...env, DOCKER_TAG: env.DOCKER_TAG ?? 'latest' },
      resolver: inputs.composeResolver,
    });
    services = servicesFromModel(project.model, cwd);
    missing = project.missing;
    composeVia = project.via;
  }
  const fromCompose = specsFromCompose(services);
  const specs = [...listed];
  for (const s of fromCompose) {
    const dupe = specs.find((x) => x.name === s.name || x.id === s.id);
    if (dupe) {
      throw new InputError(
        'images',
        `'${s.name}' (service ${s.id}) is in both images and compose-files`,
        'list it once',
      );
    }
    specs.push(s);
  }
  if (specs.length === 0) {
    throw new InputError('images', 'nothing to build', 'list images, or give compose-files with build: sections');
  }
  for (const s of specs) {
    const context = isAbsolute(s.context) ? s.context : join(cwd, s.context);
    if (/^[a-z]+:\/\//i.test(s.context) || s.context.startsWith('git@')) continue; // remote contexts: the builder fetches them
    if (!(await exists(context, 'dir'))) {
      throw new InputError('images', `the build context of '${s.id}' (${s.context}) is not a directory`);
    }
    if (s.dockerfileInline !== undefined) continue;
    const dockerfile = joinPath(context, s.dockerfile ?? 'Dockerfile');
    if (!(await exists(dockerfile, 'file'))) {
      throw new InputError(
        'images',
        `'${s.id}' has no Dockerfile at ${joinPath(s.context, s.dockerfile ?? 'Dockerfile')}`,
        'add it, or set dockerfile: (relative to the context)',
      );
    }
  }
  const { images: _images, composeFiles: _files, composeEnvFiles: _envFiles, composeResolver: _r, ...rest } = inputs;
  return {
    ...rest,
    specs,
    composeFiles,
    missingVars: missing.filter((v) => v !== 'DOCKER_TAG'),
    ...(composeVia ? { composeVia } : {}),
  };
}

/**
 * The secrets as the builder takes them: values (and, without buildx, variables) written to 0600 files in the
 * build's private 0700 temp dir, removed with it; files by their path; variables by name for buildx.
 */
async function writeSecrets(
  secrets: BuildSettings['secrets'],
  dir: string,
  builder: Builder,
  env: Env,
): Promise<BuildSecret[]> {
  const out: BuildSecret[] = [];
  for (const [n, s] of secrets.entries()) {
    if (s.from === 'file') out.push({ id: s.id, src: s.value });
    else if (s.from === 'env' && builder === 'buildx') out.push({ id: s.id, env: s.value });
    else {
      const src = join(dir, `secret-${n}`);
      await writeFile(src, s.from === 'env' ? (env[s.value] ?? '') : s.value, { mode: 0o600 });
      out.push({ id: s.id, src });
    }
  }
  return out;
}

/** Where buildx keeps its builders (setup-buildx-action's), so a build with a private --config still finds them. */
function buildxConfigDir(env: Env): string {
  return env.BUILDX_CONFIG || join(userDockerConfigDir(env), 'buildx');
}

/** The tags from the tags step (its json output, or the umbrella's tags stage), else computed here by the policy. */
export async function tagsFor(tags: TagsInput, env: Env, cwd: string): Promise<TagsResult> {
  if ('result' in tags) return tags.result;
  return runTagsStage({ policy: tags.policy, env, cwd });
}

export async function runBuildStage(opts: {
  inputs: BuildInputs;
  tags: TagsInput;
  env: Env;
  cwd: string;
  reporter: Reporter;
  docker?: Docker;
}): Promise<BuildResult> {
  const { inputs, env, cwd, reporter } = opts;
  const settings = await readBuildSettings(inputs, cwd, env);
  if (settings.composeVia) reporter.info(`compose project read with ${settings.composeVia}`);
  for (const v of settings.missingVars) reporter.warning(`compose variable ${v} is not set: using an empty value`);
  const { context, plan: tagPlan } = await tagsFor(opts.tags, env, cwd);
  const dockerfiles: Record<string, string | undefined> = {};
  for (const s of settings.specs) {
    const path = joinPath(isAbsolute(s.context) ? s.context : join(cwd, s.context), s.dockerfile ?? 'Dockerfile');
    dockerfiles[s.id] = s.dockerfileInline ?? (await readFile(path, 'utf8').catch(() => undefined));
  }
  const planned = planBuilds(settings.specs, dockerfiles, tagPlan.primary);
  const order = selectBuilds(planned, inputs.only);
  const skipped = planned.filter((p) => !order.includes(p));
  if (skipped.length > 0)
    reporter.info(`only: ${order.map((o) => o.id).join(', ')} (not rebuilt: ${skipped.map((p) => p.id).join(', ')})`);
  const docker = opts.docker ?? new Docker({ log: reporter.info, cwd });
  const features = await docker.features();
  const builder = builderFor(features);
  reporter.info(
    `docker ${features.clientVersion ?? '?'} (engine ${features.serverVersion}), ${describeBuilder(builder)}; build order: ${order.map((o) => o.id).join(' → ')}`,
  );
  if (builder === 'classic') {
    const needing = order.filter((o) => needsBuildKit(dockerfiles[o.id] ?? ''));
    if (needing.length > 0)
      throw new LadingError(
        `the Dockerfile of ${needing.map((o) => `'${o.id}'`).join(', ')} uses BuildKit syntax (RUN --mount or a heredoc), and this docker client has neither buildx nor a built-in BuildKit`,
        'add docker/setup-buildx-action before lading (or install the buildx plugin)',
      );
  }
  for (const s of settings.secrets) if (s.from === 'value') reporter.secret(s.value);
  for (const s of settings.secrets) if (s.from === 'env') reporter.secret(env[s.value] ?? '');
  const labels = { ...tagPlan.labels, ...settings.extraLabels };
  const tmp = await mkdtemp(join(env.RUNNER_TEMP || tmpdir(), 'lading-build-'));
  const built = new Map<string, BuiltImage>();
  let secrets: BuildSecret[] = [];
  // Multi-platform buildx builds push from the build itself: log in first, as the push stage would.
  const pushing = order.filter(
    (o) =>
      builder === 'buildx' && settings.push && (o.platforms.length > 0 ? o.platforms : settings.platforms).length > 1,
  );
  let buildDocker = docker;
  try {
    secrets = await writeSecrets(settings.secrets, tmp, builder, env);
    const run = async () => {
      for (const image of order) {
        built.set(image.id, await reporter.group(`build ${image.id} (${image.name})`, () => buildOne(image)));
      }
    };
    if (pushing.length === 0) await run();
    else {
      const hosts = [...new Set(pushing.map((o) => registryHostOf(o.name)))];
      const creds = await registryCredentials(hosts, inputs.registry, env, reporter);
      await withDockerConfig(
        [...creds.values()],
        async (dir) => {
          buildDocker = docker.withConfig(dir, { BUILDX_CONFIG: buildxConfigDir(env) });
          await run();
        },
        { tmpDir: tmp },
      );
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  async function buildOne(image: PlannedImage): Promise<BuiltImage> {
    // An upstream this run does not rebuild (only:): build on its newest published image, the channel tag.
    for (const id of image.dependsOn) {
      if (built.has(id)) continue;
      const up = planned.find((p) => p.id === id)!;
      const existing = `${up.name}:${tagPlan.channel ?? 'latest'}`;
      const here = await docker.run(['image', 'inspect', '--format', '{{.Id}}', existing], 'inspect').then(
        () => true,
        () => false,
      );
      if (!here && (await docker.streamed(['pull', existing])).code !== 0) {
        throw new LadingError(
          `'${image.id}' is built on '${id}', which this run does not rebuild, and ${existing} is neither here nor pullable`,
          `rebuild '${id}' too (add it to only), or publish ${existing} first`,
        );
      }
      reporter.info(`${image.id} builds on ${existing} (not rebuilt in this run)`);
      for (const ref of [
        `${up.name}:${tagPlan.primary}`,
        ...image.upstreamAliases.filter((a) => a.id === id).map((a) => a.ref),
      ]) {
        await docker.tag(existing, ref);
      }
    }
    for (const alias of image.upstreamAliases) {
      const upstream = built.get(alias.id);
      if (upstream?.imageId) {
        reporter.info(`${image.id} builds FROM ${alias.ref}: pointing it at the image just built for ${alias.id}`);
        await docker.tag(upstream.imageId, alias.ref);
      }
    }
    const withArgs: PlannedImage = { ...image, resolvedArgs: { ...settings.extraArgs, ...image.resolvedArgs } };
    const imageLabels = { ...labels, ...(await baseLabels(image, withArgs.resolvedArgs)) };
    const refs = tagPlan.tags.map((t) => `${image.name}:${t}`);
    const iidfile = join(tmp, `${image.id}.iid`);
    let dockerfilePath: string | undefined;
    if (image.dockerfileInline !== undefined) {
      dockerfilePath = join(tmp, `${image.id}.Dockerfile`);
      await writeFile(dockerfilePath, image.dockerfileInline);
    }
    const cmd = buildCommand(withArgs, {
      ...(dockerfilePath ? { dockerfilePath } : {}),
      builder,
      sbom: settings.sbom,
      noCache: settings.noCache,
      secrets,
      ssh: settings.ssh,
      ulimits: settings.ulimits,
      push: settings.push,
      ...(settings.shmSize ? { shmSize: settings.shmSize } : {}),
      ...(settings.network ? { network: settings.network } : {}),
      refs,
      labels: imageLabels,
      iidfile,
      platforms: settings.platforms,
      cacheFrom: settings.cacheFrom,
      cacheTo: settings.cacheTo,
      provenance: settings.provenance,
      pull: settings.pull,
      metadataFile: join(tmp, `${image.id}.metadata.json`),
    });
    const res = await buildDocker.streamed(cmd.args, cmd.env);
    if (res.code !== 0) {
      throw new LadingError(
        `building '${image.id}' (${image.name}) failed (docker exit ${res.code}):\n${lastLines(res.tail, 12)}`,
        'see the build log above; nothing was pushed',
      );
    }
    const imageId = (await readFile(iidfile, 'utf8').catch(() => '')).trim() || undefined;
    reporter.info(`built ${image.id}: ${imageId ?? '(in the registry)'} as ${refs.join(', ')}`);
    const out: BuiltImage = {
      id: image.id,
      name: image.name,
      services: image.services,
      tags: tagPlan.tags,
      refs,
      platforms: image.platforms.length > 0 ? image.platforms : settings.platforms,
      pushedByBuild: cmd.pushes,
      dependsOn: image.dependsOn,
    };
    if (imageId) out.imageId = imageId;
    return out;
  }

  /**
   * Records the digest of each external base image (FROM lines that are not images of this run, not scratch) as
   * OCI base labels, so `lading stale` can tell when a base changed. Bases not in the local engine are left out.
   */
  async function baseLabels(image: PlannedImage, args: Record<string, string>): Promise<Record<string, string>> {
    const text = dockerfiles[image.id];
    if (text === undefined) return {};
    const ours = new Set(planned.map((p) => p.name));
    const bases: Array<{ name: string; digest: string }> = [];
    for (const base of dockerfileBases(text, args)) {
      const ref = stripTagAndDigest(base);
      if (base === 'scratch' || ours.has(ref.name.toLowerCase())) continue;
      if (ref.digest) {
        bases.push({ name: base, digest: ref.digest });
        continue;
      }
      const out = await docker
        .run(['image', 'inspect', '--format', '{{json .RepoDigests}}', base], 'inspect')
        .catch(() => '[]');
      const digests = (JSON.parse(out || '[]') as string[] | null) ?? [];
      const digest = digests.map((d) => d.split('@')[1]).find(Boolean);
      if (digest) bases.push({ name: base, digest });
    }
    return baseImageLabels(bases);
  }

  const result: BuildResult = {
    context,
    tags: tagPlan.tags,
    primary: tagPlan.primary,
    labels,
    images: order.map((o) => built.get(o.id)!),
    composeFiles: settings.composeFiles.map((f) => f.path),
  };
  if (tagPlan.channel) result.channel = tagPlan.channel;
  return result;
}
