import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig, RegistryHookConfig } from '../lib/agent-config.ts';
import { describeError } from '../lib/errors.ts';
import { parseImageName } from '../lib/image-ref.ts';
import { type Manifest, type ManifestImage, parseManifest, validateManifest } from '../lib/manifest.ts';
import type { ImagePush } from '../lib/registry-events.ts';
import { storeKeys } from '../lib/store-location.ts';
import { storeSignature } from '../io/manifest-source.ts';
import { agentRegistryClient, checkedManifest, storeFor } from './agent-source.ts';
import type { Reporter } from '../io/reporter.ts';

/**
 * What a registry's push means for this host: the manifest to deploy. Two ways, per configured endpoint:
 * - manifest: the manifest the build published for the pushed tag (the manifest store's by-tag entry), once it pins
 *   the pushed digest (or, for Docker Hub, whose payload names no digest, once it is newer than the push). A push
 *   usually arrives before the build's manifest step has published, so the entry is re-read for a while.
 * - pin: the release this host runs now, with only the pushed repository's image re-pinned to the pushed digest
 *   (resolved from the registry when the payload names only a tag).
 */

export interface ImageEventOptions {
  cfg: AgentConfig;
  reporter: Reporter;
  now?: () => Date;
  /** How long a manifest-mode push waits for the build to publish the manifest pinning it (default 120 s). */
  waitMs?: number;
  /** Between two reads of the by-tag entry (default 3 s). */
  intervalMs?: number;
  /** manifest.secret-*: a published manifest must carry a matching `<key>.sig`. */
  manifestSecret?: string;
  /** Resolves repository:tag to a digest (default: the registry, with the agent's login). */
  resolveDigest?: (host: string, repository: string, tag: string) => Promise<string>;
}

/** The image of `manifest` a push is about: same repository (the registry host too, when the push names one). */
export function imageForPush(manifest: Manifest, push: ImagePush): ManifestImage[] {
  return manifest.images.filter((img) => {
    let host: string | undefined;
    let path: string;
    try {
      const n = parseImageName(img.name);
      host = n.registry;
      path = n.path;
    } catch {
      return false;
    }
    const repo = push.repository.toLowerCase();
    const same = path.toLowerCase() === repo || (!host && `library/${path}` === repo);
    if (!same) return false;
    if (!push.host || !host) return true;
    const h = host.toLowerCase();
    const dockerHub = (x: string) => ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(x);
    return h === push.host || (dockerHub(h) && dockerHub(push.host));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** manifest mode: the by-tag entry, once it pins this push. Resolves to the manifest, or a reason not to deploy. */
async function publishedManifest(push: ImagePush, o: ImageEventOptions): Promise<Manifest | string> {
  const folder = o.cfg.manifest.store!;
  const store = await storeFor({ kind: folder.kind, bucket: folder.bucket, key: '' }, o.cfg);
  const key = push.tag
    ? storeKeys.manifestByTag(folder.prefix, push.tag)
    : storeKeys.manifestChannel(folder.prefix, o.cfg.channel);
  const deadline = Date.now() + (o.waitMs ?? 120_000);
  let why = '';
  for (;;) {
    const found = await store.head(key).catch(() => undefined);
    if (found) {
      try {
        const text = (await store.getText(key)).text;
        const signature = o.manifestSecret ? await storeSignature(store, key) : undefined;
        const manifest = checkedManifest(text, signature, store.url(key), o.manifestSecret);
        const images = imageForPush(manifest, push);
        if (images.length === 0) return `${store.url(key)} has no image of ${push.repository}`;
        if (push.digest) {
          if (images.some((i) => i.digest === push.digest)) return manifest;
          why = `${store.url(key)} pins ${images[0]!.digest.slice(0, 19)}…, not the pushed ${push.digest.slice(0, 19)}…`;
        } else if (push.pushedAt === undefined || Date.parse(manifest.source.created) / 1000 >= push.pushedAt - 5) {
          return manifest;
        } else why = `${store.url(key)} was written before the push`;
      } catch (err) {
        why = describeError(err);
      }
    } else why = `${store.url(key)} does not exist (yet)`;
    if (Date.now() >= deadline) return `no published manifest pins it: ${why}`;
    await sleep(o.intervalMs ?? 3000);
  }
}

/** pin mode: the current release with the pushed repository's image re-pinned. */
async function repinned(push: ImagePush, o: ImageEventOptions): Promise<Manifest | string> {
  const project = o.cfg.deploy.project!;
  const file = join(o.cfg.deploy.root, project, 'current', 'manifest.json');
  let current: Manifest;
  try {
    current = parseManifest(await readFile(file, 'utf8'), file);
  } catch (err) {
    return `no current release to re-pin (${describeError(err).split('\n')[0]})`;
  }
  const images = imageForPush(current, push);
  if (images.length === 0) return `the current release has no image of ${push.repository}`;
  const notRegistry = images.find((i) => i.transport.kind !== 'registry');
  if (notRegistry)
    return `${notRegistry.name} is not pulled from a registry (it travels as a ${notRegistry.transport.kind} archive)`;
  let digest = push.digest;
  if (!digest) {
    const { registry, path } = parseImageName(images[0]!.name);
    const host = registry ?? 'docker.io';
    try {
      digest = o.resolveDigest
        ? await o.resolveDigest(host, path, push.tag!)
        : (await (await agentRegistryClient(o.cfg, host, o.reporter)).manifestDigest(path, push.tag!)).digest;
    } catch (err) {
      return `cannot resolve ${host}/${path}:${push.tag} to a digest: ${describeError(err)}`;
    }
  }
  if (images.every((i) => i.digest === digest)) return `the current release already pins ${digest}`;
  const next = structuredClone(current) as Manifest;
  for (const img of next.images) {
    if (!images.some((i) => i.id === img.id)) continue;
    img.digest = digest;
    img.ref = `${img.name}@${digest}`;
  }
  next.source = { ...next.source, created: (o.now ?? (() => new Date()))().toISOString() };
  return validateManifest(JSON.parse(JSON.stringify(next)), `${current.primary} re-pinned`);
}

/** The manifest one selected push deploys, or the reason it deploys nothing. */
export async function manifestForPush(
  hook: RegistryHookConfig,
  push: ImagePush,
  o: ImageEventOptions,
): Promise<Manifest | string> {
  return hook.update === 'pin' ? repinned(push, o) : publishedManifest(push, o);
}
