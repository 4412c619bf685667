import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { credentialFor } from '../../io/registry-auth.ts';
import { RegistryClient } from '../../io/registry-client.ts';
import { storeFor } from '../../io/image-load.ts';
import { openObjectLocation, type ObjectStore } from '../../io/store.ts';
import { InputError, LadingError } from '../../lib/errors.ts';
import {
  findManifestImage,
  formatPlatform,
  type ImageReference,
  type IndexEntry,
  isIndex,
  parseImageManifest,
  parseImageReference,
  type Platform,
  selectPlatform,
} from '../../lib/extract-plan.ts';
import { parseLayerIndex } from '../../lib/layer-index.ts';
import type { ManifestImage } from '../../lib/manifest.ts';
import { detectProvider } from '../../lib/registry.ts';
import { parseObjectLocation, shownUrl } from '../../lib/store-location.ts';
import { openUrl } from '../../io/manifest-fetch.ts';
import { readManifestFrom } from '../../io/manifest-source.ts';
import type { Reporter } from '../../io/reporter.ts';
import { type BlobCache, tap } from './blob-cache.ts';
import type { ExtractSettings } from './settings.ts';
import { decompressed, drain, forEachTarEntry } from './tar-entries.ts';

// ---------------------------------------------------------------------------------------------------------------
// Image sources: each resolves to an ordered list of layer blobs (bottom → top) the cache can provide.

export interface LayerRef {
  /** sha256 of the bytes as stored/transferred (the cache key). */
  digest: string;
  size?: number;
  fetch: () => Promise<Readable>;
}

export interface ResolvedImage {
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
    // A manifest names the host: credentials only for the registry they were given for.
    hostsFromManifest: pinned !== undefined,
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

class IdleTimeout extends Error {}

function idleError(raw: string, idleMs: number): LadingError {
  return new LadingError(
    `the source at ${shownUrl(raw)} sent nothing for ${idleMs / 1000}s`,
    'check the URL and the network, or raise source-idle-timeout for a slow server',
  );
}

function sourceTooLarge(where: string, maxBytes: number): LadingError {
  return new LadingError(
    `the source at ${where} is larger than source-max-size (${maxBytes} bytes): nothing was extracted`,
    'raise source-max-size if the archive really is this big',
  );
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
        // Bounded like everything lading fetches: source-max-size (checked on the declared length and while
        // reading, so an endless body is cut off, never buffered) and source-idle-timeout (no byte for that long).
        const { maxBytes, idleMs } = settings.sourceLimits;
        const idle = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(timer);
          timer = setTimeout(() => idle.abort(new IdleTimeout()), idleMs);
          timer.unref();
        };
        arm();
        const { res, url } = await openUrl(raw, { what: 'the source URL', signal: idle.signal }).catch((err) => {
          clearTimeout(timer);
          throw idle.signal.aborted ? idleError(raw, idleMs) : err;
        });
        if (!res.ok || !res.body) {
          clearTimeout(timer);
          await res.body?.cancel();
          throw new LadingError(
            `fetching the source answered HTTP ${res.status}`,
            'the URL may have expired: sign a new one',
          );
        }
        const declared = Number(res.headers.get('content-length') ?? NaN);
        if (declared > maxBytes) {
          clearTimeout(timer);
          await res.body.cancel();
          throw sourceTooLarge(shownUrl(url), maxBytes);
        }
        let seen = 0;
        const body = Readable.fromWeb(res.body as never);
        const bounded = body.pipe(
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              arm();
              seen += chunk.length;
              if (seen > maxBytes) return done(sourceTooLarge(shownUrl(url), maxBytes));
              done(null, chunk);
            },
            flush(done) {
              clearTimeout(timer);
              done();
            },
          }),
        );
        const stop = (err: Error) => {
          clearTimeout(timer);
          body.destroy();
          bounded.destroy(err);
        };
        body.on('error', (err) => stop(idle.signal.aborted ? idleError(raw, idleMs) : err));
        bounded.on('error', () => (clearTimeout(timer), body.destroy()));
        return bounded;
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
/** The image the settings name: a manifest entry, an exported object, or a registry image. */
export async function resolveImage(
  settings: ExtractSettings,
  reporter: Reporter,
  cache: BlobCache,
  cwd: string,
): Promise<ResolvedImage> {
  if (settings.manifest) {
    const manifest = await readManifestFrom('manifest', settings.manifest, {
      storeOptions: settings.store,
      cwd,
      ...settings.manifestLimits,
    });
    const entry = findManifestImage(manifest.images, settings.image ?? '');
    return fromManifestEntry(entry, settings, reporter, cache);
  }
  if (settings.source) return fromSource(settings.source, settings, reporter, cache);
  return fromRegistry(parseImageReference(settings.image!), settings, reporter, cache);
}
