import { readFile, writeFile } from 'node:fs/promises';
import { sendNotification } from '../io/notify.ts';
import { openStore, type StoreOptions } from '../io/store.ts';
import { isAbsolute, join, relative } from 'node:path';
import { InputError, LadingError } from '../lib/errors.ts';
import { collectAssets, type ComposeResolver, loadComposeProject } from '../io/compose.ts';
import { checkBundleSize, planAssets } from '../lib/compose-assets.ts';
import { bundleComposeFiles, checkComposePolicy, type PolicyAllow, type PolicyMode } from '../lib/compose-policy.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { existingCredential } from '../io/docker-config.ts';
import { DOCKER_HUB, detectProvider } from '../lib/registry.ts';
import { stripTagAndDigest } from '../lib/build-plan.ts';
import { envMasks } from '../lib/deploy-plan.ts';
import { parseImageName } from '../lib/image-ref.ts';
import { SIGNATURE_SUFFIX, signManifest } from '../lib/manifest-signature.ts';
import {
  type ComposeBundle,
  composeFile,
  createManifest,
  type Manifest,
  type ManifestImage,
  serializeManifest,
  type Transport,
} from '../lib/manifest.ts';
import { type StoreLocation, storeKeys } from '../lib/store-location.ts';
import type { Env } from '../lib/context.ts';
import type { ExportResult } from './export.ts';
import type { PushResult } from './push.ts';
import type { Reporter } from '../io/reporter.ts';

/** LADING_IMAGE_<ID>: the env var holding an image's pinned reference (web-api → LADING_IMAGE_WEB_API). */
export function imageEnvName(id: string): string {
  return `LADING_IMAGE_${id.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

export interface ManifestResult {
  path: string;
  /** Where the manifest was published by sha (manifest-store), for deploys and agents to read. */
  location?: string;
  manifest: Manifest;
  text: string;
}

/** The manifest's typed inputs, parsed at the edge (src/settings/manifest.ts). */
export interface ManifestInputs {
  /** Compose files to ship; undefined = the ones the build read. */
  composeFiles?: string[];
  project?: string;
  /**
   * compose-env: variables the deploy supplies (names checked). Only the names enter the manifest (compose.envNames);
   * a value given here only reads the project (interpolation while collecting its files) and is never written.
   */
  composeEnv: Array<[string, string | undefined]>;
  /** compose's --env-file: env files for interpolation instead of the project .env. */
  composeEnvFiles: string[];
  composeResolver: ComposeResolver;
  /** The most the release's local files may weigh, in bytes. */
  bundleSizeLimit: number;
  /** Resolve third-party images (services lading does not build) to their registry digest. */
  pinExternal: boolean;
  /** Where to write it; undefined = $RUNNER_TEMP (or the workspace)/lading-manifest.json. */
  path?: string;
  /** manifest-secret: sign the manifest (<manifest>.sig). */
  secret?: string;
  /** manifest-store: also publish it there. */
  publishTo?: StoreLocation;
  storeOptions: StoreOptions;
  notify?: NotifySettings;
  /** compose-policy: refuse privileged services, host namespaces and host-root bind mounts here already (CI). */
  composePolicy?: { mode: PolicyMode; allow: ReadonlySet<PolicyAllow> };
}

/**
 * Writes the manifest from the push step's result: the source, the tags, every image pinned by digest with its
 * transport, and the compose files (their content, so the deploy needs no checkout) with the env they expect.
 */
export async function runManifestStage(opts: {
  inputs: ManifestInputs;
  /** The push (or export) stage's result (in this process, or the push-json input). */
  pushed: PushResult | ExportResult;
  env: Env;
  cwd: string;
  reporter: Reporter;
  now?: Date;
}): Promise<ManifestResult> {
  const { inputs, cwd } = opts;
  const { publishTo, notify } = inputs;
  if (notify) opts.reporter.secret(notify.secret);
  // Exported images carry a transport instead of a registry; the manifest takes either.
  const pushed = opts.pushed as PushResult;
  const composePaths = inputs.composeFiles ?? pushed.composeFiles;
  const project = inputs.project;
  const env: Record<string, string> = { DOCKER_TAG: pushed.primary };
  for (const image of pushed.images) env[imageEnvName(image.id)] = image.ref;
  const envNames = [...new Set(inputs.composeEnv.map(([k]) => k))];
  /** What compose reads the project with here: lading's variables and the values given for compose-env. */
  const readingEnv: Record<string, string> = { ...env };
  const given: Record<string, string> = {};
  for (const [k, v] of inputs.composeEnv) if (v !== undefined) given[k] = v;
  for (const v of envMasks(given)) opts.reporter.secret(v);
  Object.assign(readingEnv, given);
  /** Registry clients per host; each gets only the login the runner's docker config files under that host. */
  const clients = new Map<string, Promise<RegistryClient>>();
  const clientFor = (host: string): Promise<RegistryClient> => {
    let c = clients.get(host);
    if (!c) {
      c = (async () => {
        const credential = await existingCredential(host, detectProvider(host), {
          env: opts.env,
          log: (l) => opts.reporter.info(l),
          mask: (s) => opts.reporter.secret(s),
        });
        return new RegistryClient(host, credential ? { credential } : {});
      })();
      clients.set(host, c);
    }
    return c;
  };

  let compose: ComposeBundle | undefined;
  if (composePaths.length > 0 || project) {
    const files = [];
    for (const path of composePaths) {
      const abs = isAbsolute(path) ? path : join(cwd, path);
      const text = await readFile(abs, 'utf8').catch(() => {
        throw new InputError('compose-files', `${path} does not exist (relative to ${cwd})`);
      });
      files.push(composeFile(isAbsolute(path) ? relative(cwd, path) : path, text));
    }
    compose = { files, env };
    if (envNames.length > 0) compose.envNames = envNames;
    if (project) compose.project = project;
    if (composePaths.length > 0) await addAssets(compose, composePaths);
  }

  /**
   * name[:tag][@digest] → name@digest from its registry: anonymous, or with the login the runner's docker config
   * holds for that very registry (docker/login-action, `docker login`, a credential helper) — never another's.
   */
  async function pinImage(image: string, service: string): Promise<string> {
    const ref = stripTagAndDigest(image);
    if (ref.digest) return `${ref.name}@${ref.digest}`;
    const { registry, path } = parseImageName(ref.name, `compose-files (service ${service})`);
    const host = registry || DOCKER_HUB;
    const repo = registry ? path : path.includes('/') ? path : `library/${path}`;
    try {
      const { digest } = await (await clientFor(host)).manifestDigest(repo, ref.tag ?? 'latest');
      opts.reporter.info(`pin-external: ${service} runs ${image} = ${ref.name}@${digest}`);
      return `${ref.name}@${digest}`;
    } catch (err) {
      const message = (err as Error).message;
      const denied = /\b401\b|unauthori[sz]ed|authentication required|denied|needs a login/i.test(message);
      throw new LadingError(
        `pin-external: cannot resolve ${image} (service ${service}) to a digest: ${message}`,
        denied
          ? `${host} needs credentials: log in to it before this step (docker/login-action with registry: ${host}, or docker login ${host}), or turn pin-external off`
          : 'check that the image exists and the registry is reachable from here, or turn pin-external off',
      );
    }
  }

  /** The project's local files (v2 manifest): read as compose reads the project, limited in size. */
  async function addAssets(bundle: ComposeBundle, paths: string[]): Promise<void> {
    const composeEnv = { ...opts.env, ...readingEnv };
    const loaded = await loadComposeProject({
      cwd,
      files: paths,
      envFiles: inputs.composeEnvFiles.length > 0 ? inputs.composeEnvFiles : undefined,
      env: composeEnv,
      resolver: inputs.composeResolver,
    });
    const plan = planAssets(loaded.model, loaded.envFiles, loaded.otherFiles);
    const assets = await collectAssets(plan);
    checkBundleSize(assets, inputs.bundleSizeLimit);
    if (assets.length > 0) bundle.assets = assets;
    // compose-policy over every compose file the release carries (included and extended ones too), as the deploy
    // checks it, before any registry is asked for a pin
    if (inputs.composePolicy) {
      const { mode, allow } = inputs.composePolicy;
      checkComposePolicy(mode, bundleComposeFiles(bundle), composeEnv, allow);
    }
    if (inputs.pinExternal) {
      const built = new Set(pushed.images.flatMap((i) => i.services));
      const pins: Record<string, string> = {};
      for (const svc of Object.values(loaded.model.services)) {
        if (!svc.image || built.has(svc.name) || svc.build) continue;
        pins[svc.name] = await pinImage(svc.image, svc.name);
      }
      if (Object.keys(pins).length > 0) bundle.pins = pins;
    }
    if (plan.external.length > 0) bundle.external = plan.external;
    if (assets.length > 0 || plan.external.length > 0) {
      bundle.projectDir = relative(cwd, loaded.model.projectDir) || '.';
      const size = assets.reduce((n, a) => n + a.size, 0);
      opts.reporter.info(
        `ships ${assets.filter((a) => a.kind !== 'dir').length} local file(s) with the release (${size} bytes)` +
          (plan.external.length > 0 ? `; hosts must have ${plan.external.map((e) => e.path).join(', ')}` : ''),
      );
    }
  }
  const ctx = pushed.context;
  const images: ManifestImage[] = pushed.images.map((i) => {
    const img: ManifestImage = {
      id: i.id,
      services: i.services,
      name: i.name,
      tags: i.tags,
      digest: i.digest,
      ref: i.ref,
      // Registry-less images (lading export) carry their store transport; pushed ones name their registry.
      transport: (i as { transport?: Transport }).transport ?? {
        kind: 'registry',
        registry: i.registry,
        provider: i.provider,
      },
    };
    if (i.imageId) img.imageId = i.imageId;
    if (i.platforms.length > 0) img.platforms = i.platforms;
    if (i.size !== undefined) img.size = i.size;
    if (i.dependsOn.length > 0) img.dependsOn = i.dependsOn;
    return img;
  });
  const source: Manifest['source'] = {
    repository: ctx.repository,
    ref: ctx.ref,
    sha: ctx.sha,
    created: (opts.now ?? new Date()).toISOString(),
  };
  if (ctx.repositoryUrl) source.repositoryUrl = ctx.repositoryUrl;
  if (ctx.branch) source.branch = ctx.branch;
  if (ctx.tag) source.tag = ctx.tag;
  if (ctx.pr) source.pr = ctx.pr;
  if (ctx.runUrl) source.run = ctx.runUrl;
  if (ctx.runId) source.runId = ctx.runId;
  if (ctx.actor) source.actor = ctx.actor;
  if (ctx.commitTime) source.commitTime = ctx.commitTime;
  const manifest = createManifest({
    source,
    tags: pushed.tags,
    primary: pushed.primary,
    channel: pushed.channel,
    images,
    compose,
  });
  const text = serializeManifest(manifest);
  const out = inputs.path ?? join(opts.env.RUNNER_TEMP || cwd, 'lading-manifest.json');
  const path = isAbsolute(out) ? out : join(cwd, out);
  await writeFile(path, text, { mode: 0o644 });
  const secret = inputs.secret;
  const signature = secret ? signManifest(text, secret) : undefined;
  if (secret) opts.reporter.secret(secret);
  if (signature) await writeFile(`${path}${SIGNATURE_SUFFIX}`, `${signature}\n`, { mode: 0o644 });
  opts.reporter.info(
    `manifest written to ${path} (${images.length} image(s), ${compose?.files.length ?? 0} compose file(s))`,
  );
  const location = publishTo
    ? await publishManifest(publishTo, manifest, text, signature, inputs.storeOptions, opts.reporter)
    : undefined;
  if (notify) await notifyAgents(notify, manifest, location, signature, opts.reporter);
  return { path, manifest, text, ...(location ? { location } : {}) };
}

/**
 * Publishes the manifest to a store under manifests/by-sha/<sha>.json (the permanent record), by-tag/<tag>.json
 * for each tag, and channels/<channel>.json (what pull-mode agents and manual deploys follow). Returns the by-sha URL.
 */
async function publishManifest(
  loc: StoreLocation,
  manifest: Manifest,
  text: string,
  signature: string | undefined,
  storeOptions: StoreOptions,
  reporter: Reporter,
): Promise<string> {
  const store = await openStore(loc, storeOptions);
  const bySha = storeKeys.manifestBySha(loc.prefix, manifest.source.sha);
  const keys = [bySha, ...manifest.tags.map((t) => storeKeys.manifestByTag(loc.prefix, t))];
  if (manifest.channel) keys.push(storeKeys.manifestChannel(loc.prefix, manifest.channel));
  for (const key of keys) {
    // The signature first: a reader between the two puts sees a mismatch and retries, never an unsigned manifest.
    if (signature) await store.put(`${key}${SIGNATURE_SUFFIX}`, `${signature}\n`, { contentType: 'text/plain' });
    await store.put(key, text, { contentType: 'application/json' });
  }
  reporter.info(`manifest published to ${keys.map((k) => store.url(k)).join(', ')}`);
  return store.url(bySha);
}

/** notify-url / notify-secret / notify-format / notify-ca: pull-mode agents to tell about this manifest. */
export interface NotifySettings {
  urls: URL[];
  secret: string;
  format: 'lading' | 'github';
  /** Extra certificates (PEM) to trust for the agents' TLS. */
  ca?: string;
}

/**
 * POSTs the signed webhook to each agent: the manifest's location when it was published to a store (the agent
 * reads it from there), else the manifest itself. An agent that does not accept it fails the step, naming it.
 */
async function notifyAgents(
  n: NotifySettings,
  manifest: Manifest,
  location: string | undefined,
  signature: string | undefined,
  reporter: Reporter,
): Promise<void> {
  const failed: string[] = [];
  for (const url of n.urls) {
    const res = await sendNotification({
      url: url.href,
      secret: n.secret,
      ...(location ? { location } : { manifest, ...(signature ? { signature } : {}) }),
      ...(manifest.channel ? { channel: manifest.channel } : {}),
      format: n.format,
      ...(n.ca ? { ca: n.ca } : {}),
    }).catch((err: unknown) => ({ status: 0, body: err instanceof Error ? err.message : String(err) }));
    const line = `${url.origin}${url.pathname}: ${res.status || 'unreachable'} ${res.body.trim().slice(0, 300)}`;
    if (res.status >= 200 && res.status < 300) reporter.info(`notified ${line}`);
    else failed.push(line);
  }
  if (failed.length > 0) {
    throw new LadingError(
      `the manifest is written${location ? ' and published' : ''}, but ${failed.length} agent(s) did not take the notification:\n${failed.join('\n')}`,
      'check notify-url and notify-secret, and notify-ca for an agent with a self-signed certificate (agents that poll will still pick the manifest up)',
    );
  }
}
