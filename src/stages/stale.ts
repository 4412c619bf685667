import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { capture } from '../io/exec.ts';
import { type AuthSettings, credentialFor } from '../io/registry-auth.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { dockerfileBases, planBuilds, stripTagAndDigest } from '../lib/build-plan.ts';
import { describeError, InputError, LadingError } from '../lib/errors.ts';
import { detectProvider, type RegistryProvider, registryHostOf, repositoryOf } from '../lib/registry.ts';
import {
  decideStale,
  newestTimestampTag,
  recordedBases,
  type StaleDecision,
  type StaleImageInput,
} from '../lib/stale.ts';
import { type BuildInputs, readBuildSettings } from './build.ts';
import type { Reporter } from '../io/reporter.ts';

/** Registry access (parsed at the edge by src/settings/common.ts). */
export interface RegistryAccess {
  auth: Omit<AuthSettings, 'mask' | 'log'>;
  overrides: Record<string, RegistryProvider>;
  insecure: string[];
}

/**
 * `lading stale`: for the images a build would build (the build's own `images` / `compose-files` inputs, in chain
 * order), decides which must be rebuilt now and why (see src/lib/stale.ts for the rules). Reads git (commit time of
 * each build context) and the registries (tags, base digests, the labels of the newest image); changes nothing.
 */

type Env = Record<string, string | undefined>;

export interface StaleResult {
  images: StaleDecision[];
  /** Ids of the images to rebuild, in chain order. */
  rebuild: string[];
}

/** Registry clients per host, with credentials minted once (the deploy's and push's auth inputs). */
class Registries {
  private readonly clients = new Map<string, Promise<RegistryClient>>();
  constructor(
    private readonly auth: Omit<AuthSettings, 'mask' | 'log'>,
    private readonly overrides: Record<string, RegistryProvider>,
    private readonly insecure: string[],
    private readonly reporter: Reporter,
  ) {}

  for(host: string): Promise<RegistryClient> {
    let c = this.clients.get(host);
    if (!c) {
      c = (async () => {
        const provider = this.overrides[host.toLowerCase()] ?? detectProvider(host, this.overrides);
        const credential = await credentialFor(host, provider, {
          ...this.auth,
          mask: this.reporter.secret,
          log: this.reporter.info,
        });
        return new RegistryClient(host, {
          ...(credential ? { credential } : {}),
          insecure: this.insecure,
          log: this.reporter.info,
        });
      })();
      this.clients.set(host, c);
    }
    return c;
  }
}

/** Time of the last commit touching `path` (the whole repository when path is '.'), or undefined outside git. */
async function commitTime(cwd: string, paths: string[]): Promise<Date | undefined> {
  const res = await capture('git', ['log', '-1', '--format=%cI', '--', ...paths], { cwd });
  const text = res.stdout.trim();
  if (res.code !== 0 || !text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

async function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

/** The labels of `name:tag` from its image config (for an index: its first linux/amd64, else first, image). */
export async function imageLabels(
  client: RegistryClient,
  repository: string,
  tag: string,
): Promise<Record<string, string>> {
  let doc = await client.manifest(repository, tag);
  const list = doc.manifest.manifests as
    Array<{ digest: string; platform?: { os?: string; architecture?: string } }> | undefined;
  if (Array.isArray(list) && list.length > 0) {
    const pick = list.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? list[0]!;
    doc = await client.manifest(repository, pick.digest);
  }
  const config = doc.manifest.config as { digest?: string; size?: number } | undefined;
  if (!config?.digest) return {};
  const body = await readStream(await client.blob(repository, config.digest, config.size ? { size: config.size } : {}));
  const json = JSON.parse(body.toString('utf8')) as { config?: { Labels?: Record<string, string> | null } };
  return json.config?.Labels ?? {};
}

/** The digest a base reference (`name:tag`, `name`, `name@digest`) has in its registry now. */
async function currentDigest(registries: Registries, base: string): Promise<string> {
  const { name, tag, digest } = stripTagAndDigest(base);
  if (digest) return digest;
  const client = await registries.for(registryHostOf(name));
  return (await client.manifestDigest(repositoryOf(name), tag ?? 'latest')).digest;
}

export async function runStaleStage(opts: {
  /** The images a build would build (only the image list and compose files matter here). */
  build: BuildInputs;
  registry: RegistryAccess;
  env: Env;
  cwd: string;
  reporter: Reporter;
}): Promise<StaleResult> {
  const { env, cwd, reporter } = opts;
  const settings = await readBuildSettings(opts.build, cwd, env);
  const dockerfiles: Record<string, string | undefined> = {};
  const contexts: Record<string, string> = {};
  for (const s of settings.specs) {
    const dir = isAbsolute(s.context) ? s.context : join(cwd, s.context);
    contexts[s.id] = dir;
    dockerfiles[s.id] = await readFile(join(dir, s.dockerfile ?? 'Dockerfile'), 'utf8').catch(() => undefined);
  }
  const order = planBuilds(settings.specs, dockerfiles, 'lading-stale');
  const chainNames = new Set(order.map((o) => o.name));
  const registries = new Registries(opts.registry.auth, opts.registry.overrides, opts.registry.insecure, reporter);
  const inputs: StaleImageInput[] = [];
  for (const img of order) {
    const client = await registries.for(registryHostOf(img.name));
    const repository = repositoryOf(img.name);
    const tags = await client.tags(repository);
    const input: StaleImageInput = { id: img.id, name: img.name, dependsOn: img.dependsOn, tags, bases: [] };
    const time = await commitTime(contexts[img.id]!, ['.', ...(img.dockerfile ? [img.dockerfile] : [])]);
    if (time) input.commitTime = time;
    const newest = newestTimestampTag(tags);
    const bases = dockerfileBases(dockerfiles[img.id] ?? '', img.resolvedArgs).filter(
      (b) => !chainNames.has(stripTagAndDigest(b).name.toLowerCase()),
    );
    let recorded: Record<string, string> = {};
    if (newest && bases.length > 0) {
      try {
        recorded = recordedBases(await imageLabels(client, repository, newest));
      } catch (err) {
        reporter.warning(`${img.id}: cannot read the labels of ${img.name}:${newest}: ${describeError(err)}`);
      }
    }
    for (const base of bases) {
      const entry: StaleImageInput['bases'][number] = { name: base };
      if (recorded[base]) entry.recorded = recorded[base];
      if (entry.recorded) {
        try {
          entry.current = await currentDigest(registries, base);
        } catch (err) {
          reporter.warning(`${img.id}: cannot resolve base ${base}: ${describeError(err)}`);
        }
      }
      input.bases.push(entry);
    }
    inputs.push(input);
  }
  const images = decideStale(inputs);
  for (const d of images) {
    reporter.info(
      `${d.id} (${d.name}): ${d.stale ? 'REBUILD' : 'up to date'}${d.newestTag ? `, newest tag ${d.newestTag}` : ''}`,
    );
    for (const r of d.reasons) reporter.info(`  because ${r}`);
    for (const n of d.notes) reporter.info(`  note: ${n}`);
  }
  return { images, rebuild: images.filter((d) => d.stale).map((d) => d.id) };
}

/** "Launch the newest": the newest sortable timestamp tag of an image, with its digest. */
export async function runNewestStage(opts: {
  image: string | undefined;
  registry: RegistryAccess;
  reporter: Reporter;
}): Promise<{ ref: string; tag: string; digest: string }> {
  const raw = opts.image;
  if (!raw) throw new InputError('image', 'is empty', 'name the image, e.g. registry.example.com/acme/web');
  const { name, tag, digest } = stripTagAndDigest(raw);
  if (tag || digest) throw new InputError('image', `'${raw}' has a tag or digest`, 'give the name only');
  const registries = new Registries(opts.registry.auth, opts.registry.overrides, opts.registry.insecure, opts.reporter);
  const client = await registries.for(registryHostOf(name));
  const repository = repositoryOf(name);
  const newest = newestTimestampTag(await client.tags(repository));
  if (!newest) {
    throw new LadingError(
      `${name} has no timestamp tag (like 20180923T082316Z)`,
      'build with timestamp: commit or build in the tag policy',
    );
  }
  const info = await client.manifestDigest(repository, newest);
  return { ref: `${name}:${newest}`, tag: newest, digest: info.digest };
}
