import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { decompressStream, sniffCompression } from '../io/compress.ts';
import { credentialFor } from '../io/registry-auth.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { storeFor } from '../io/image-load.ts';
import { openObjectLocation, type ObjectStore, type StoreOptions } from '../io/store.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import {
  type EntryKind,
  findManifestImage,
  formatPlatform,
  hardLinkTarget,
  type ImageReference,
  type IndexEntry,
  isIndex,
  LayerWalk,
  normalizeEntryPath,
  normalizeRequests,
  parseImageManifest,
  parseImageReference,
  parsePlatform,
  type Platform,
  safeJoin,
  safeLinkTarget,
  selectPlatform,
} from '../lib/extract-plan.ts';
import { parseList } from '../lib/inputs.ts';
import { parseLayerIndex } from '../lib/layer-index.ts';
import type { ManifestImage } from '../lib/manifest.ts';
import { detectProvider, parseProviderOverrides } from '../lib/registry.ts';
import { parseObjectLocation } from '../lib/store-location.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { readManifestFrom } from './manifest-source.ts';
import { readRegistryAuth } from './registry-inputs.ts';
import type { Reporter } from './reporter.ts';
import { readStoreOptions } from './store-inputs.ts';

/**
 * `lading extract`: copies paths out of an image without a Docker engine — from a registry (v2 API), from an object a
 * `lading export` wrote (a `docker save` archive, or a layers-mode index), or from a manifest entry. Layers are read
 * top-down with whiteouts applied, so what lands in the destination is the image's final filesystem for the paths
 * asked for. Every blob is cached by digest: a second extract of the same image downloads no blob.
 */

export interface ExtractedEntry {
  /** Image path, with a leading slash. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Octal, like 0644. */
  mode: string;
  size?: number;
  sha256?: string;
  /** Symlinks: the target as written (absolute targets made relative, see safeLinkTarget). */
  target?: string;
}

export interface ExtractResult {
  /** What was read, as the user named it. */
  source: string;
  /** The digest that names the image: the registry manifest (or index) digest, or the manifest entry's digest. */
  digest: string;
  /** The config digest (docker's image ID). */
  imageId: string;
  platform?: string;
  destination: string;
  files: ExtractedEntry[];
  layers: { total: number; read: number; downloaded: number; cached: number; bytesDownloaded: number };
  /** Entries that are not files, directories or links (devices, fifos): not extracted. */
  skipped: string[];
}

interface ExtractSettings {
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
}

/** S3/GCS connection inputs, named as the export action names them. */

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
    store: readStoreOptions(read),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The blob cache: <cache-dir>/blobs/sha256/<hex>, written via a temp file and a rename, verified before the rename.

const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

interface Stats {
  downloaded: number;
  cached: number;
  bytesDownloaded: number;
}

class BlobCache {
  readonly stats: Stats = { downloaded: 0, cached: 0, bytesDownloaded: 0 };
  constructor(
    readonly dir: string,
    private readonly reporter: Reporter,
  ) {}

  path(digest: string): string {
    if (!/^sha256:[a-f0-9]{64}$/.test(digest))
      throw new LadingError(`'${digest}' is not a sha256 digest lading can cache`);
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  async has(digest: string, size?: number): Promise<boolean> {
    const s = await stat(this.path(digest)).catch(() => undefined);
    return !!s && s.isFile() && (size === undefined || s.size === size);
  }

  private async tmp(): Promise<string> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    return join(this.dir, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** Writes a stream into the cache under the sha256 of its bytes; returns the digest. */
  async putComputed(body: Readable): Promise<{ digest: string; size: number }> {
    const tmp = await this.tmp();
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        tap((c) => (hash.update(c), (size += c.length))),
        createWriteStream(tmp),
      );
      const digest = `sha256:${hash.digest('hex')}`;
      await rename(tmp, this.path(digest));
      return { digest, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The cached blob, downloading it (verified against digest and size) when it is missing. */
  async ensure(
    digest: string,
    size: number | undefined,
    what: string,
    fetch: () => Promise<Readable>,
  ): Promise<string> {
    const path = this.path(digest);
    if (await this.has(digest, size)) {
      this.stats.cached++;
      return path;
    }
    const tmp = await this.tmp();
    const hash = createHash('sha256');
    let bytes = 0;
    const started = Date.now();
    let lastLog = started;
    try {
      await pipeline(
        await fetch(),
        tap((c) => {
          hash.update(c);
          bytes += c.length;
          const now = Date.now();
          if (now - lastLog > 5000) {
            lastLog = now;
            this.reporter.info(
              `${what}: ${mib(bytes)}${size ? ` of ${mib(size)}` : ''} (${mib((bytes * 1000) / (now - started))}/s)`,
            );
          }
        }),
        createWriteStream(tmp),
      );
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) {
        throw new LadingError(
          `${what} arrived with sha256 ${got}, expected ${digest}`,
          'the stored object is corrupted or was replaced: export or push the image again',
        );
      }
      if (size !== undefined && bytes !== size) {
        throw new LadingError(
          `${what} is ${bytes} bytes, expected ${size}`,
          'the stored object was truncated or replaced: export or push the image again',
        );
      }
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
    this.stats.downloaded++;
    this.stats.bytesDownloaded += bytes;
    this.reporter.info(`${what}: downloaded ${mib(bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return path;
  }

  async readJson<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, name), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    const tmp = await this.tmp();
    await writeFile(tmp, JSON.stringify(value));
    await mkdir(dirname(join(this.dir, name)), { recursive: true });
    await rename(tmp, join(this.dir, name));
  }
}

function tap(fn: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      fn(chunk);
      cb(null, chunk);
    },
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------------------------------------------
// Image sources: each resolves to an ordered list of layer blobs (bottom → top) the cache can provide.

interface LayerRef {
  /** sha256 of the bytes as stored/transferred (the cache key). */
  digest: string;
  size?: number;
  fetch: () => Promise<Readable>;
}

interface ResolvedImage {
  display: string;
  digest: string;
  imageId: string;
  platform?: string;
  layers: LayerRef[];
}

async function fromRegistry(
  ref: ImageReference,
  settings: ExtractSettings,
  reporter: Reporter,
  cache: BlobCache,
  pinned?: string,
): Promise<ResolvedImage> {
  const provider = detectProvider(ref.host, settings.overrides);
  const credential = await credentialFor(ref.host, provider, {
    ...settings.auth,
    mask: (s) => reporter.secret(s),
    log: (l) => reporter.info(l),
  });
  const client = new RegistryClient(ref.host, {
    ...(credential && { credential }),
    insecure: settings.insecure,
    log: (l) => reporter.info(l),
  });
  let doc = await client.manifest(ref.repository, ref.reference);
  const digest = doc.digest;
  if (pinned && pinned !== digest) {
    throw new LadingError(
      `${ref.display} resolved to ${digest}, the manifest pins ${pinned}`,
      'the registry serves another image than was deployed',
    );
  }
  let platform: string | undefined;
  if (isIndex(doc.mediaType, doc.manifest)) {
    const entries = (doc.manifest.manifests ?? []) as IndexEntry[];
    const entry = selectPlatform(entries, settings.platform);
    platform = formatPlatform(entry.platform ?? {});
    reporter.info(`${ref.display}: index ${digest}, ${platform} → ${entry.digest}`);
    doc = await client.manifest(ref.repository, entry.digest);
  }
  const m = parseImageManifest(doc.mediaType, doc.manifest);
  const configPath = await cache.ensure(m.config.digest, m.config.size, `config ${m.config.digest.slice(0, 19)}`, () =>
    client.blob(ref.repository, m.config.digest, { size: m.config.size }),
  );
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Partial<Platform>;
  const actual = formatPlatform(config);
  platform ??= actual;
  if (
    settings.platformGiven &&
    config.os &&
    !actual.startsWith(`${settings.platform.os}/${settings.platform.architecture}`)
  ) {
    reporter.warning(
      `${ref.display} is a single-platform image for ${actual}, not ${formatPlatform(settings.platform)}`,
    );
  }
  return {
    display: ref.display,
    digest,
    imageId: m.config.digest,
    platform,
    layers: m.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      fetch: () => client.blob(ref.repository, l.digest, { size: l.size }),
    })),
  };
}

/** A layers-mode index (lading export, mode: layers): layer blobs keyed by diffId, verified by their stored sha256. */
async function fromLayerIndex(
  store: ObjectStore,
  key: string,
  sha256: string | undefined,
  display: string,
  cache: BlobCache,
): Promise<ResolvedImage> {
  const { text } = await store.getText(key);
  const got = createHash('sha256').update(text).digest('hex');
  if (sha256 && got !== sha256) {
    throw new LadingError(
      `the layer index ${store.url(key)} has sha256 ${got}, expected ${sha256}`,
      'the index was replaced; export the image again',
    );
  }
  const index = parseLayerIndex(text);
  const configPath = await cache.ensure(`sha256:${index.config.sha256}`, index.config.size, 'config', () =>
    store.get(index.config.key),
  );
  const configDigest = `sha256:${createHash('sha256')
    .update(await readFile(configPath))
    .digest('hex')}`;
  if (configDigest !== index.imageId) {
    throw new LadingError(
      `the config of ${display} hashes to ${configDigest}, the index says ${index.imageId}`,
      'export the image again',
    );
  }
  return {
    display,
    digest: index.imageId,
    imageId: index.imageId,
    layers: index.layers.map((l) => ({ digest: `sha256:${l.sha256}`, size: l.size, fetch: () => store.get(l.key) })),
  };
}

interface ArchiveRecord {
  imageId: string;
  config: string;
  layers: string[];
  repoTags: string[];
}

const METADATA = /(^|\/)(manifest\.json|index\.json|oci-layout|repositories|json|VERSION)$|\.json$/;

/**
 * A `docker save` archive (plain, gzip or zstd; classic or OCI layout): streamed once, its blobs go into the cache
 * by digest (its manifest.json comes last, so the layer order is known only at the end). `cacheKey` names the
 * archive (its sha256, or its URL + version): a second extract of it reads only the cache.
 */
async function fromArchive(opts: {
  open: () => Promise<Readable>;
  display: string;
  sha256?: string;
  size?: number;
  cacheKey?: string;
  wanted?: string;
  digest?: string;
  cache: BlobCache;
  reporter: Reporter;
}): Promise<ResolvedImage> {
  const { cache } = opts;
  const recordName = opts.cacheKey ? `archives/${opts.cacheKey}.json` : undefined;
  const known = recordName ? await cache.readJson<ArchiveRecord>(recordName) : undefined;
  const cachedLayer = (digest: string): LayerRef => ({
    digest,
    fetch: () =>
      Promise.reject(
        new LadingError(`the cached layer ${digest} disappeared`, 'retry (the cache was pruned meanwhile)'),
      ),
  });
  if (known && (await Promise.all([known.config, ...known.layers].map((d) => cache.has(d)))).every(Boolean)) {
    return {
      display: opts.display,
      digest: opts.digest ?? known.imageId,
      imageId: known.imageId,
      layers: known.layers.map(cachedLayer),
    };
  }
  opts.reporter.info(`${opts.display}: reading the archive`);
  const raw = await opts.open();
  const hash = createHash('sha256');
  let bytes = 0;
  const counted = raw.pipe(tap((c) => (hash.update(c), (bytes += c.length))));
  raw.on('error', (e) => counted.destroy(e));
  const small = new Map<string, Buffer>();
  const blobs = new Map<string, string>();
  await forEachTarEntry(await decompressed(counted), async (entry) => {
    const name = entry.header.name.replace(/^\.\//, '');
    if (entry.header.type !== 'file') return drain(entry);
    if (METADATA.test(name) && (entry.header.size ?? 0) < 16 * 1024 * 1024) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      small.set(name, Buffer.concat(chunks));
      return;
    }
    const { digest } = await cache.putComputed(entry);
    blobs.set(name, digest);
  });
  const got = hash.digest('hex');
  if (opts.sha256 && got !== opts.sha256) {
    throw new LadingError(
      `${opts.display} has sha256 ${got}, expected ${opts.sha256}`,
      'the object is corrupted or was replaced: export the image again',
    );
  }
  if (opts.size !== undefined && bytes !== opts.size) {
    throw new LadingError(
      `${opts.display} is ${bytes} bytes, expected ${opts.size}`,
      'the object was truncated: export the image again',
    );
  }
  cache.stats.downloaded++;
  cache.stats.bytesDownloaded += bytes;
  const manifestJson = small.get('manifest.json');
  if (!manifestJson)
    throw new LadingError(
      `${opts.display} is not a docker save archive (no manifest.json)`,
      'give an object written by lading export or docker save',
    );
  const images = JSON.parse(manifestJson.toString('utf8')) as Array<{
    Config: string;
    RepoTags?: string[] | null;
    Layers: string[];
  }>;
  let image = images[0];
  if (images.length > 1) {
    image = images.find(
      (i) => opts.wanted && (i.RepoTags ?? []).some((t) => t === opts.wanted || t.startsWith(`${opts.wanted}:`)),
    );
    if (!image) {
      throw new InputError(
        'image',
        `${opts.display} holds ${images.length} images`,
        `name one with image: ${images.flatMap((i) => i.RepoTags ?? []).join(', ')}`,
      );
    }
  }
  if (!image) throw new LadingError(`${opts.display} holds no image`);
  const configBytes =
    small.get(image.Config) ??
    (blobs.has(image.Config) ? await readFile(cache.path(blobs.get(image.Config)!)) : undefined);
  if (!configBytes)
    throw new LadingError(
      `${opts.display} lacks its config ${image.Config}`,
      'the archive is incomplete: export the image again',
    );
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  if (!(await cache.has(configDigest))) await cache.putComputed(Readable.from([configBytes]));
  const layers = image.Layers.map((l) => {
    const d = blobs.get(l);
    if (!d)
      throw new LadingError(
        `${opts.display} lacks the layer ${l}`,
        'the archive is incomplete: export the image again',
      );
    return d;
  });
  const record: ArchiveRecord = { imageId: configDigest, config: configDigest, layers, repoTags: image.RepoTags ?? [] };
  if (recordName) await cache.writeJson(recordName, record);
  return {
    display: opts.display,
    digest: opts.digest ?? configDigest,
    imageId: configDigest,
    layers: layers.map(cachedLayer),
  };
}

/** Sniffs the compression from the first bytes and decompresses. */
async function decompressed(src: Readable): Promise<Readable> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let n = 0;
  while (n < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    n += r.value.length;
  }
  const first = Buffer.concat(head);
  const rest = Readable.from(
    (async function* () {
      yield first;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
  );
  const d = decompressStream(sniffCompression(first));
  rest.on('error', (e) => d.destroy(e));
  rest.pipe(d);
  return d;
}

async function drain(entry: Readable): Promise<void> {
  for await (const _ of entry) void _;
}

type TarEntry = Readable & { header: tar.Header };

/** Runs fn over every entry of a tar stream, in order; an error anywhere stops the stream and rejects. */
async function forEachTarEntry(src: Readable, fn: (entry: TarEntry) => Promise<void>): Promise<void> {
  const ex = tar.extract();
  src.on('error', (e) => ex.destroy(e));
  src.pipe(ex);
  try {
    for await (const e of ex) {
      const entry = e as unknown as TarEntry;
      await fn(entry);
      if (!entry.readableEnded) await drain(entry);
    }
  } catch (err) {
    src.destroy();
    throw err;
  }
}

async function fromManifestEntry(
  img: ManifestImage,
  settings: ExtractSettings,
  reporter: Reporter,
  cache: BlobCache,
): Promise<ResolvedImage> {
  const t = img.transport;
  if (t.kind === 'registry')
    return fromRegistry(parseImageReference(img.ref, 'manifest'), settings, reporter, cache, img.digest);
  const { store, key } = await storeFor(t, settings.store);
  const display = `${img.id} (${store.url(key)})`;
  if (t.mode === 'layers') {
    const r = await fromLayerIndex(store, t.index ?? key, t.sha256, display, cache);
    return { ...r, digest: img.digest };
  }
  return fromArchive({
    open: () => store.get(key),
    display,
    sha256: t.sha256,
    size: t.size,
    cacheKey: `sha256-${t.sha256}`,
    digest: img.digest,
    cache,
    reporter,
  });
}

async function fromSource(
  raw: string,
  settings: ExtractSettings,
  reporter: Reporter,
  cache: BlobCache,
): Promise<ResolvedImage> {
  const loc = parseObjectLocation('source', raw);
  if (loc.kind === 'https') {
    return fromArchive({
      open: async () => {
        const res = await fetch(raw).catch((e: Error) => {
          throw new LadingError(`cannot fetch ${loc.bucket}: ${e.message}`);
        });
        if (!res.ok || !res.body)
          throw new LadingError(
            `fetching the source answered HTTP ${res.status}`,
            'the URL may have expired: sign a new one',
          );
        return Readable.fromWeb(res.body as never);
      },
      display: loc.bucket,
      ...(settings.sha256 && { sha256: settings.sha256, cacheKey: `sha256-${settings.sha256}` }),
      cache,
      reporter,
    });
  }
  const { store, key } = await openObjectLocation(loc, settings.store);
  const display = store.url(key);
  if (key.endsWith('.index.json')) return fromLayerIndex(store, key, settings.sha256, display, cache);
  const info = await store.head(key);
  if (!info) throw new LadingError(`${display} does not exist`, 'check the location (and that the export ran)');
  const versionKey = createHash('sha256')
    .update(`${display}\n${info.version ?? ''}\n${info.size}`)
    .digest('hex');
  return fromArchive({
    open: () => store.get(key),
    display,
    ...(settings.sha256 && { sha256: settings.sha256 }),
    size: info.size,
    cacheKey: settings.sha256 ? `sha256-${settings.sha256}` : `object-${versionKey}`,
    cache,
    reporter,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Writing a layer's entries into the staging directory

interface Written {
  layer: number;
  type: 'file' | 'directory' | 'symlink';
  implicit?: boolean;
  mode?: number;
  mtime?: Date;
  size?: number;
  sha256?: string;
  target?: string;
}

function kindOf(type: tar.Header['type']): EntryKind {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

class Extraction {
  readonly written = new Map<string, Written>();
  readonly skipped: string[] = [];
  private layer = 0;
  private deferred: Array<{ path: string; target: string; mode: number; mtime?: Date }> = [];

  constructor(
    readonly staging: string,
    readonly walk: LayerWalk,
  ) {}

  private at(path: string): string {
    return safeJoin(this.staging, path);
  }

  /** Creates the parent directories of `path`, refusing to go through anything that is not a real directory. */
  private async parents(path: string): Promise<void> {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const w = this.written.get(p);
      if (w?.type === 'directory') continue;
      const s = await lstat(this.at(p)).catch(() => undefined);
      if (!s) {
        await mkdir(this.at(p), { mode: 0o755 });
        this.written.set(p, { layer: this.layer, type: 'directory', implicit: true });
      } else if (!s.isDirectory()) {
        throw new LadingError(
          `the image path /${path} goes through /${p}, which is not a directory`,
          'the image is malformed',
        );
      }
    }
  }

  /** False when an upper layer already put something at `path` (then this entry is hidden). */
  private async clear(path: string, dir: boolean): Promise<boolean> {
    const w = this.written.get(path);
    if (!w) return true;
    if (w.layer !== this.layer) return dir && w.type === 'directory';
    if (dir && w.type === 'directory') return true;
    await rm(this.at(path), { recursive: true, force: true });
    this.written.delete(path);
    return true;
  }

  async layerEntries(src: Readable, layerNo: number, where: string): Promise<void> {
    this.layer = layerNo;
    this.deferred = [];
    this.walk.beginLayer();
    await forEachTarEntry(src, async (entry) => {
      const h = entry.header;
      const path = normalizeEntryPath(h.name, where);
      if (path === undefined) return;
      const kind = kindOf(h.type);
      if (this.walk.decide(path, kind) !== 'write') return;
      await this.entry(path, kind, h, entry);
    });
    this.walk.endLayer();
  }

  private async entry(path: string, kind: EntryKind, h: tar.Header, body: Readable): Promise<void> {
    const mode = (h.mode ?? (kind === 'directory' ? 0o755 : 0o644)) & 0o777;
    const mtime = h.mtime;
    if (kind === 'other') {
      this.skipped.push(`/${path} (${h.type})`);
      return;
    }
    await this.parents(path);
    if (!(await this.clear(path, kind === 'directory'))) return;
    const full = this.at(path);
    if (kind === 'directory') {
      const w = this.written.get(path);
      if (!w) await mkdir(full, { mode: 0o755 });
      if (!w || w.implicit || w.layer === this.layer) {
        this.written.set(path, { layer: this.layer, type: 'directory', mode, ...(mtime && { mtime }) });
      }
      return;
    }
    if (kind === 'symlink') {
      const target = safeLinkTarget(path, h.linkname ?? '');
      await symlink(target, full);
      if (mtime) await lutimes(full, mtime, mtime).catch(() => {});
      this.written.set(path, { layer: this.layer, type: 'symlink', mode: 0o777, target });
      return;
    }
    if (kind === 'link') {
      const target = hardLinkTarget(path, h.linkname ?? '');
      const t = this.written.get(target);
      if (t && t.layer === this.layer && t.type === 'file') {
        await copyFile(this.at(target), full, fsConstants.COPYFILE_EXCL);
        await chmod(full, t.mode ?? mode);
        if (t.mtime) await utimes(full, t.mtime, t.mtime);
        this.written.set(path, { ...t });
      } else {
        this.deferred.push({ path, target, mode, ...(mtime && { mtime }) });
      }
      return;
    }
    await this.writeFile(path, body, mode, mtime);
  }

  private async writeFile(path: string, body: Readable, mode: number, mtime?: Date): Promise<void> {
    const full = this.at(path);
    const hash = createHash('sha256');
    let size = 0;
    // 'wx': O_CREAT|O_EXCL never follows a link at the final component.
    await pipeline(
      body,
      tap((c) => (hash.update(c), (size += c.length))),
      createWriteStream(full, { flags: 'wx', mode: 0o600 }),
    );
    await chmod(full, mode);
    if (mtime) await utimes(full, mtime, mtime);
    this.written.set(path, {
      layer: this.layer,
      type: 'file',
      mode,
      size,
      sha256: hash.digest('hex'),
      ...(mtime && { mtime }),
    });
  }

  /** Hard links whose target this layer did not give us yet: one more pass over the (cached) layer for the targets. */
  async resolveDeferred(reopen: () => Promise<Readable>, where: string): Promise<void> {
    if (this.deferred.length === 0) return;
    const byTarget = new Map<string, typeof this.deferred>();
    for (const d of this.deferred) byTarget.set(d.target, [...(byTarget.get(d.target) ?? []), d]);
    await forEachTarEntry(await reopen(), async (entry) => {
      const path = normalizeEntryPath(entry.header.name, where);
      const links = path === undefined ? undefined : byTarget.get(path);
      if (!links || kindOf(entry.header.type) !== 'file') return;
      byTarget.delete(path!);
      const [first, ...others] = links;
      await this.writeFile(first!.path, entry, first!.mode, first!.mtime);
      for (const o of others) {
        await copyFile(this.at(first!.path), this.at(o.path), fsConstants.COPYFILE_EXCL);
        await chmod(this.at(o.path), o.mode);
        this.written.set(o.path, { ...this.written.get(first!.path)!, mode: o.mode });
      }
    });
    const left = [...byTarget.keys()];
    if (left.length) {
      throw new LadingError(
        `${where} has hard links to files it does not contain (${left.map((l) => `/${l}`).join(', ')})`,
        'the image is malformed',
      );
    }
    this.deferred = [];
  }
}

async function openLayerFile(file: string): Promise<Readable> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const d = decompressStream(sniffCompression(head));
  const src = createReadStream(file);
  src.on('error', (e) => d.destroy(e));
  src.pipe(d);
  return d;
}

/** Moves the staged tree into the destination: new paths are renamed in, directories merged, others replaced. */
async function mergeInto(src: string, dst: string): Promise<void> {
  for (const name of await readdir(src)) {
    const s = join(src, name);
    const d = join(dst, name);
    const ds = await lstat(d).catch(() => undefined);
    if (ds) {
      const ss = await lstat(s);
      if (ss.isDirectory() && ds.isDirectory()) {
        await mergeInto(s, d);
        await rmdir(s);
        continue;
      }
      await rm(d, { recursive: true, force: true });
    }
    await rename(s, d);
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function runExtractStage(opts: {
  read: InputReader;
  reporter: Reporter;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): Promise<ExtractResult> {
  const { reporter } = opts;
  const cwd = opts.cwd ?? process.cwd();
  const settings = readExtractSettings(opts.read, opts.env ?? process.env, cwd);
  const cache = new BlobCache(settings.cacheDir, reporter);
  const image = await reporter.group('extract: resolve the image', async () => {
    if (settings.manifest) {
      const manifest = await readManifestFrom('manifest', settings.manifest, { storeOptions: settings.store, cwd });
      const entry = findManifestImage(manifest.images, settings.image ?? '');
      return fromManifestEntry(entry, settings, reporter, cache);
    }
    if (settings.source) return fromSource(settings.source, settings, reporter, cache);
    return fromRegistry(parseImageReference(settings.image!), settings, reporter, cache);
  });
  reporter.info(`${image.display}: ${image.digest} (image ${image.imageId}), ${image.layers.length} layers`);

  await mkdir(settings.destination, { recursive: true });
  const staging = join(settings.destination, `.lading-extract-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { mode: 0o700 });
  const walk = new LayerWalk(settings.requests);
  const ex = new Extraction(staging, walk);
  let read = 0;
  try {
    await reporter.group(`extract: ${settings.requests.map((r) => `/${r}`).join(', ')}`, async () => {
      for (let i = image.layers.length - 1; i >= 0; i--) {
        if (walk.settled()) {
          reporter.info(`every path is settled: the ${i + 1} lower layer(s) are not needed`);
          break;
        }
        const l = image.layers[i]!;
        const where = `layer ${i + 1}/${image.layers.length} (${l.digest.slice(0, 19)})`;
        const file = await cache.ensure(l.digest, l.size, where, l.fetch);
        await ex.layerEntries(await openLayerFile(file), i, where);
        await ex.resolveDeferred(() => openLayerFile(file), where);
        read++;
      }
    });
    const missing = walk.missing();
    if (missing.length) {
      throw new LadingError(
        `not in ${image.display}: ${missing.map((m) => `/${m.path} (${m.reason})`).join('; ')}`,
        'check the paths (they are absolute paths inside the image; symlinks in them are not followed); nothing was written',
      );
    }
    await mergeInto(staging, settings.destination);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  // Directory modes and times last, deepest first (a read-only directory must not block its own contents).
  const dirs = [...ex.written.entries()].filter(([, w]) => w.type === 'directory' && !w.implicit);
  dirs.sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [p, w] of dirs) {
    const full = safeJoin(settings.destination, p);
    if (w.mode !== undefined) await chmod(full, w.mode);
    if (w.mtime) await utimes(full, w.mtime, w.mtime);
  }
  for (const s of ex.skipped) reporter.warning(`not extracted (not a file, directory or link): ${s}`);
  const files: ExtractedEntry[] = [...ex.written.entries()]
    .filter(([, w]) => !w.implicit)
    .map(([p, w]) => ({
      path: `/${p}`,
      type: w.type,
      mode: (w.mode ?? 0).toString(8).padStart(4, '0'),
      ...(w.size !== undefined && { size: w.size }),
      ...(w.sha256 && { sha256: w.sha256 }),
      ...(w.target !== undefined && { target: w.target }),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  const result: ExtractResult = {
    source: image.display,
    digest: image.digest,
    imageId: image.imageId,
    ...(image.platform && { platform: image.platform }),
    destination: settings.destination,
    files,
    layers: { total: image.layers.length, read, ...cache.stats },
    skipped: ex.skipped,
  };
  const n = files.filter((f) => f.type !== 'directory').length;
  reporter.info(
    `extracted ${n} file(s) into ${settings.destination}; layers read ${read}/${image.layers.length}, ` +
      `blobs downloaded ${cache.stats.downloaded} (${mib(cache.stats.bytesDownloaded)}), from cache ${cache.stats.cached}`,
  );
  return result;
}
