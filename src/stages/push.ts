import { type AuthSettings, ensureEcrRepository } from '../io/registry-auth.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { withDockerConfig } from '../io/docker-config.ts';
import { Docker, lastLines } from '../io/docker.ts';
import type { Env } from '../lib/context.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import { detectProvider, type RegistryProvider, registryHostOf, repositoryOf } from '../lib/registry.ts';
import { retry } from '../lib/retry.ts';
import type { BuildResult, BuiltImage } from './build.ts';
import { registryCredentials, type RegistrySettings } from './registry-login.ts';
import type { Reporter } from '../io/reporter.ts';

export interface PublishedImage extends BuiltImage {
  /** The manifest digest the registry serves for these tags (read back from the registry, not from CLI output). */
  digest: string;
  /** name@digest: what deploys pin to. */
  ref: string;
  registry: string;
  provider: RegistryProvider;
  mediaType: string;
  /** Compressed size of config + layers (single-platform manifests). */
  size?: number;
}

export interface PushResult extends Omit<BuildResult, 'images'> {
  images: PublishedImage[];
}

/** The push's typed settings, parsed at the edge (src/settings/push.ts). */
export interface PushSettings extends RegistrySettings {
  insecure: string[];
  tries: number;
}

const TRANSIENT =
  /timeout|timed out|connection (reset|refused)|EOF|broken pipe|no such host|i\/o timeout|TLS handshake|50[0-4]|Service Unavailable|Bad Gateway|too many requests|429/i;
const REFUSED = /unauthorized|authentication required|denied|no basic auth credentials|forbidden|403|401/i;

class PushFailure extends Error {
  constructor(
    readonly output: string,
    readonly transient: boolean,
  ) {
    super(output);
  }
}

function refusedHint(provider: RegistryProvider): string {
  switch (provider) {
    case 'google':
      return 'the Google credentials lack push rights (roles/artifactregistry.writer) on this repository';
    case 'ecr':
    case 'ecr-public':
      return 'the AWS credentials lack ecr:*Layer*/PutImage rights, or the repository does not exist (set ecr-create-repository: true)';
    case 'ghcr':
      return 'give the job `permissions: packages: write` (GITHUB_TOKEN), and link the package to this repository if it was created elsewhere';
    case 'dockerhub':
      return 'give username and password (a Docker Hub access token with Read & Write), or log in with docker/login-action first';
    default:
      return 'give username and password for this registry (or check them)';
  }
}

/**
 * Pushes every built image with all its tags, with short-lived credentials in a private docker config, retrying
 * transient failures; then reads each image's true digest back from the registry and checks every tag serves it.
 */
export async function runPushStage(opts: {
  settings: PushSettings;
  /** What the build stage built (its result in this process, or the build-json input). */
  build: BuildResult;
  env: Env;
  reporter: Reporter;
  docker?: Docker;
}): Promise<PushResult> {
  const { reporter, settings } = opts;
  const images = opts.build.images;
  const hosts = [...new Set(images.map((i) => registryHostOf(i.name)))];
  const providers = new Map(hosts.map((h) => [h, detectProvider(h, settings.overrides)]));
  for (const image of images) {
    if (!image.imageId && !image.pushedByBuild) {
      throw new InputError(
        'build-json',
        `'${image.id}' has no local image id`,
        'run the build step first, on this runner',
      );
    }
  }
  const authSettings: AuthSettings = {
    ...settings.auth,
    mask: (s) => reporter.secret(s),
    log: (l) => reporter.info(l),
  };
  const creds = await registryCredentials(hosts, settings, opts.env, reporter);
  if (settings.auth.ecrCreateRepositories) {
    for (const image of images) {
      const host = registryHostOf(image.name);
      if (providers.get(host) === 'ecr') await ensureEcrRepository(host, repositoryOf(image.name), authSettings);
    }
  }
  const docker = opts.docker ?? new Docker({ log: reporter.info });
  const pushed: string[] = [];
  await withDockerConfig([...creds.values()], async (configDir) => {
    const d = docker.withConfig(configDir);
    for (const image of images) {
      if (image.pushedByBuild) continue;
      const host = registryHostOf(image.name);
      await reporter.group(`push ${image.id} → ${image.name}`, async () => {
        for (const ref of image.refs) {
          try {
            await retry(
              async () => {
                const res = await d.streamed(['push', ref]);
                if (res.code !== 0)
                  throw new PushFailure(res.tail, TRANSIENT.test(res.tail) && !REFUSED.test(res.tail));
              },
              {
                tries: settings.tries,
                baseMs: 1000,
                isRetryable: (e) => e instanceof PushFailure && e.transient,
                onRetry: (_e, attempt, ms) =>
                  reporter.warning(`push of ${ref} failed (attempt ${attempt}); retrying in ${ms} ms`),
              },
            );
          } catch (err) {
            const out = err instanceof PushFailure ? err.output : String(err);
            const done = pushed.length > 0 ? ` Already pushed: ${pushed.join(', ')}.` : ' Nothing was pushed.';
            if (REFUSED.test(out)) {
              throw new LadingError(
                `the registry ${host} refused the push of ${ref}: ${lastLines(out, 3)}.${done}`,
                refusedHint(providers.get(host)!),
              );
            }
            throw new LadingError(
              `pushing ${ref} failed${err instanceof PushFailure && err.transient ? ` after ${settings.tries} tries` : ''}: ${lastLines(out, 4)}.${done}`,
              `check that ${host} is up and reachable from this runner, then re-run`,
            );
          }
          pushed.push(ref);
        }
      });
    }
  });

  const published: PublishedImage[] = [];
  for (const image of images) {
    const host = registryHostOf(image.name);
    const client = new RegistryClient(host, { credential: creds.get(host), insecure: settings.insecure });
    const repository = repositoryOf(image.name);
    const primary = await client.manifestDigest(repository, opts.build.primary);
    for (const tag of image.tags) {
      if (tag === opts.build.primary) continue;
      const other = await client.manifestDigest(repository, tag);
      if (other.digest !== primary.digest) {
        throw new LadingError(
          `${image.name}:${tag} serves ${other.digest}, not ${primary.digest} like :${opts.build.primary}`,
          'another push raced this one; re-run the build',
        );
      }
    }
    let size: number | undefined;
    try {
      const m = (await client.manifest(repository, primary.digest)).manifest as {
        config?: { size?: number };
        layers?: Array<{ size?: number }>;
      };
      if (m.layers) size = (m.config?.size ?? 0) + m.layers.reduce((a, l) => a + (l.size ?? 0), 0);
    } catch {
      size = undefined; // size is informative only
    }
    const p: PublishedImage = {
      ...image,
      digest: primary.digest,
      ref: `${image.name}@${primary.digest}`,
      registry: host,
      provider: providers.get(host)!,
      mediaType: primary.mediaType,
    };
    if (size !== undefined) p.size = size;
    reporter.info(`${image.id}: ${p.ref}`);
    published.push(p);
  }
  return { ...opts.build, images: published };
}
