import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { Digester, dockerSave, formatBytes, progressLogger } from '../io/archive.ts';
import { compressorProgram, compressStream, effectiveCompression } from '../io/compress.ts';
import { capture } from '../io/exec.ts';
import { openStore, type ObjectStore, type StoreOptions } from '../io/store.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import { LAYER_INDEX_SCHEMA, type LayerEntry, type LayerIndex, type StoredBlob } from '../lib/layer-index.ts';
import type { StoreMode, Transport } from '../lib/manifest.ts';
import { type ArchiveCompression, type StoreLocation, storeKeys } from '../lib/store-location.ts';
import { TAG_RE } from '../lib/image-ref.ts';
import type { BuildResult, BuiltImage } from './build.ts';
import type { Reporter } from '../io/reporter.ts';

export interface ExportedImage extends BuiltImage {
  /** The image ID (sha256 of the config): registry-less images are pinned by it. */
  digest: string;
  ref: string;
  transport: Transport;
  size: number;
  /** Bytes this run uploaded for the image (0 when the store already had everything). */
  uploaded: number;
}

export interface ExportResult extends Omit<BuildResult, 'images'> {
  images: ExportedImage[];
  store: string;
}

export interface ExportSettings {
  build: BuildResult;
  location: StoreLocation;
  storeOptions: StoreOptions;
  mode: StoreMode;
  compression: ArchiveCompression;
  level: number;
  aliases: string[];
}

/** The export's typed inputs, parsed at the edge (src/settings/export.ts). */
export interface ExportInputs {
  location: StoreLocation;
  storeOptions: StoreOptions;
  mode: StoreMode;
  compression: ArchiveCompression;
  level: number;
  /** The aliases input as given ('tags' = every tag, 'none' = none); undefined = the build's channel. */
  aliases?: string[];
}

/** The export inputs with what the build produced: the aliases resolved, every image checked to be local. */
export function resolveExportSettings(inputs: ExportInputs, build: BuildResult): ExportSettings {
  const aliases =
    inputs.aliases === undefined
      ? build.channel
        ? [build.channel]
        : []
      : inputs.aliases.flatMap((a) => (a === 'tags' ? build.tags : a === 'none' ? [] : [a]));
  for (const a of aliases) {
    if (!TAG_RE.test(a))
      throw new InputError(
        'aliases',
        `'${a}' is not a valid alias`,
        'aliases follow docker tag rules: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
      );
  }
  for (const image of build.images) {
    if (!image.imageId)
      throw new InputError(
        'build-json',
        `'${image.id}' has no local image id`,
        'run the build step first, on this runner (registry-less export needs the image in the local engine)',
      );
  }
  return { ...inputs, build, aliases: [...new Set(aliases)] };
}

function transportFor(
  store: ObjectStore,
  loc: StoreLocation,
  opts: StoreOptions,
  key: string,
  stored: { sha256: string; size: number },
  c: ArchiveCompression,
  mode: StoreMode,
  aliases: string[],
): Transport {
  // In layers mode the object is the image's index, which names its blobs.
  const base = {
    sha256: stored.sha256,
    size: stored.size,
    compression: c,
    mode,
    ...(mode === 'layers' ? { index: key } : {}),
  };
  switch (store.kind) {
    case 's3':
      return {
        kind: 's3',
        bucket: loc.bucket,
        key,
        ...base,
        ...(opts.region ? { region: opts.region } : {}),
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        ...(aliases.length ? { aliases } : {}),
      };
    case 'gcs':
      return { kind: 'gcs', bucket: loc.bucket, object: key, ...base, ...(aliases.length ? { aliases } : {}) };
    case 'file':
      return { kind: 'file', path: store.url(key), ...base };
  }
}

interface Sidecar {
  sha256: string;
  size: number;
  compression: ArchiveCompression;
  imageId?: string;
  diffId?: string;
  uncompressedSize?: number;
}

/**
 * The sidecar of a stored object, or undefined when there is none. A sidecar is written only after its object and
 * deleted before it (retention), so a sidecar means the object is there: one request answers both questions.
 */
async function readSidecar(store: ObjectStore, key: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse((await store.getText(storeKeys.sidecar(key))).text) as Sidecar;
  } catch (err) {
    if ((err as { notFound?: boolean }).notFound || err instanceof SyntaxError) return undefined;
    throw err; // a missing bucket or no permission is not "not exported yet"
  }
}

/** Streams `body` through a digester into the store under a create-only key; returns what was stored. */
async function putCounted(
  store: ObjectStore,
  key: string,
  body: Readable,
  opts: { sizeHint?: number; label: string; log: (l: string) => void },
): Promise<{ sha256: string; size: number; created: boolean }> {
  const d = new Digester();
  const progress = progressLogger(opts.label, opts.log);
  const counted = body.pipe(d);
  body.on('error', (e) => d.destroy(e));
  const r = await store.put(key, counted, { ifAbsent: true, sizeHint: opts.sizeHint, onProgress: progress });
  return { sha256: d.digest(), size: d.bytes, created: r.created };
}

async function imageFacts(imageId: string, env: NodeJS.ProcessEnv): Promise<{ diffIds: string[]; size: number }> {
  const r = await capture('docker', ['image', 'inspect', '--format', '{{json .RootFS.Layers}}|{{.Size}}', imageId], {
    env: env as Record<string, string>,
  });
  if (r.code !== 0)
    throw new LadingError(
      `image ${imageId} is not in the local engine: ${r.stderr.trim()}`,
      'run the build step first, on this runner',
    );
  const [layers, size] = r.stdout.trim().split('|');
  return { diffIds: (JSON.parse(layers!) as string[] | null) ?? [], size: Number(size) || 0 };
}

/** `source` through a compressor, errors of either side ending the result. */
function pipeCompressed(source: Readable, c: ArchiveCompression, level: number): Readable {
  const z = compressStream(c, level);
  source.on('error', (e) => z.destroy(e));
  return source.pipe(z);
}

/** Archive mode: one `docker save` of the image (all its tags), compressed, under a key named by the image ID. */
async function exportArchive(
  store: ObjectStore,
  s: ExportSettings,
  image: BuiltImage,
  c: ArchiveCompression,
  reporter: Reporter,
  env: NodeJS.ProcessEnv,
): Promise<{ key: string; stored: { sha256: string; size: number }; uploaded: number }> {
  const key = storeKeys.archive(s.location.prefix, image.name, image.imageId!, c);
  const known = await readSidecar(store, key);
  if (known) {
    reporter.info(`${store.url(key)} already holds ${image.id} (${formatBytes(known.size)}): nothing to upload`);
    return { key, stored: known, uploaded: 0 };
  }
  const facts = await imageFacts(image.imageId!, env);
  const refs = image.refs.length ? image.refs : [image.imageId!];
  const started = Date.now();
  // docker save | zstd as an OS pipe where the zstd program exists; else compressed in node.
  const program = compressorProgram(c, s.level);
  const body = program
    ? dockerSave(refs, { env, compressor: program })
    : pipeCompressed(dockerSave(refs, { env }), c, s.level);
  const r = await putCounted(store, key, body, {
    sizeHint: facts.size,
    label: `export ${image.id}`,
    log: reporter.info,
  });
  let stored = { sha256: r.sha256, size: r.size };
  if (!r.created) {
    // Someone else wrote the same content meanwhile: keep theirs, describe theirs.
    stored = (await readSidecar(store, key)) ?? stored;
  }
  await store.put(
    storeKeys.sidecar(key),
    JSON.stringify({ ...stored, compression: c, imageId: image.imageId } satisfies Sidecar),
    { contentType: 'application/json' },
  );
  const secs = (Date.now() - started) / 1000;
  reporter.info(
    `${image.id}: ${formatBytes(facts.size)} image → ${formatBytes(r.size)} ${c} in ${secs.toFixed(1)} s (${formatBytes(r.size / Math.max(secs, 0.001))}/s) → ${store.url(key)}`,
  );
  return { key, stored, uploaded: r.created ? r.size : 0 };
}

/**
 * Layers mode: each layer once under its diffID, the config under the image ID, and a small index per image. Only the
 * layers the store lacks are compressed and uploaded; when it has them all, `docker save` does not even run.
 */
async function exportLayers(
  store: ObjectStore,
  s: ExportSettings,
  image: BuiltImage,
  c: ArchiveCompression,
  reporter: Reporter,
  env: NodeJS.ProcessEnv,
): Promise<{ key: string; stored: { sha256: string; size: number }; uploaded: number }> {
  const prefix = s.location.prefix;
  const imageId = image.imageId!;
  const indexKey = storeKeys.index(prefix, image.name, imageId);
  const facts = await imageFacts(imageId, env);
  const suffix = c === 'zstd' ? '.zst' : c === 'gzip' ? '.gz' : '';
  const blobKey = (diffId: string) => `${storeKeys.blob(prefix, diffId)}${suffix}`;
  const existingIndex = await store.head(indexKey);
  if (existingIndex) {
    const text = (await store.getText(indexKey)).text;
    const index = JSON.parse(text) as LayerIndex;
    reporter.info(`${store.url(indexKey)} already holds ${image.id}: nothing to upload`);
    return {
      key: indexKey,
      stored: {
        sha256: createHash('sha256').update(text).digest('hex'),
        size: index.layers.reduce((a, l) => a + l.size, index.config.size),
      },
      uploaded: 0,
    };
  }
  const layers = new Map<string, LayerEntry>();
  for (const diffId of facts.diffIds) {
    const sc = await readSidecar(store, blobKey(diffId));
    if (sc)
      layers.set(diffId, {
        key: blobKey(diffId),
        sha256: sc.sha256,
        size: sc.size,
        compression: c,
        diffId,
        uncompressedSize: sc.uncompressedSize ?? 0,
      });
  }
  const configKey = storeKeys.blob(prefix, imageId);
  let config: StoredBlob | undefined;
  const cfgSidecar = await readSidecar(store, configKey);
  if (cfgSidecar) config = { key: configKey, sha256: cfgSidecar.sha256, size: cfgSidecar.size, compression: 'none' };
  const missing = facts.diffIds.filter((d) => !layers.has(d));
  let uploaded = 0;
  if (missing.length > 0 || !config) {
    reporter.info(`${image.id}: ${missing.length} of ${facts.diffIds.length} layer(s) missing from the store`);
    const tmp = await mkdtemp(join(process.env.RUNNER_TEMP || tmpdir(), 'lading-layers-'));
    try {
      const extract = tar.extract();
      const wanted = new Set(missing);
      const done = new Promise<void>((resolve, reject) => {
        extract.on('entry', (header, stream, next) => {
          void (async () => {
            if (header.type !== 'file') {
              stream.resume();
              return;
            }
            // Each file is hashed on its way to a temp file: its digest says what it is (diffID or config).
            const raw = join(tmp, 'entry');
            const d = new Digester();
            await pipeline(stream, d, createWriteStream(raw));
            const digest = `sha256:${d.digest()}`;
            if (wanted.has(digest)) {
              wanted.delete(digest);
              const key = blobKey(digest);
              const r = await putCounted(store, key, createReadStream(raw).pipe(compressStream(c, s.level)), {
                sizeHint: d.bytes,
                label: `layer ${digest.slice(7, 19)}`,
                log: reporter.info,
              });
              const stored = r.created
                ? { sha256: r.sha256, size: r.size }
                : ((await readSidecar(store, key)) ?? { sha256: r.sha256, size: r.size });
              await store.put(
                storeKeys.sidecar(key),
                JSON.stringify({
                  ...stored,
                  compression: c,
                  diffId: digest,
                  uncompressedSize: d.bytes,
                } satisfies Sidecar),
              );
              if (r.created) uploaded += r.size;
              layers.set(digest, { key, ...stored, compression: c, diffId: digest, uncompressedSize: d.bytes });
              reporter.info(
                `layer ${digest.slice(0, 19)}: ${formatBytes(d.bytes)} → ${formatBytes(r.size)}${r.created ? '' : ' (already stored)'}`,
              );
            } else if (digest === imageId && !config) {
              const r = await putCounted(store, configKey, createReadStream(raw), {
                label: 'config',
                log: reporter.info,
              });
              await store.put(
                storeKeys.sidecar(configKey),
                JSON.stringify({ sha256: r.sha256, size: r.size, compression: 'none' } satisfies Sidecar),
              );
              if (r.created) uploaded += r.size;
              config = { key: configKey, sha256: r.sha256, size: r.size, compression: 'none' };
            }
          })().then(
            () => next(),
            (e: unknown) => {
              extract.destroy(e as Error);
              reject(e);
            },
          );
        });
        extract.on('finish', () => resolve());
        extract.on('error', reject);
      });
      await Promise.all([pipeline(dockerSave([imageId], { env }), extract), done]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    const still = facts.diffIds.filter((d) => !layers.has(d));
    if (still.length > 0 || !config) {
      throw new LadingError(
        `docker save of ${image.id} did not contain ${still.length ? `layer(s) ${still.join(', ')}` : 'the image config'}`,
        'this docker engine writes an archive lading does not understand; use store-mode: archive',
      );
    }
  } else {
    reporter.info(`${image.id}: every layer is already in the store`);
  }
  const index: LayerIndex = {
    schema: LAYER_INDEX_SCHEMA,
    imageId,
    name: image.name,
    repoTags: image.refs.filter((r) => !r.includes('@')),
    config: config!,
    layers: facts.diffIds.map((d) => layers.get(d)!),
  };
  const text = `${JSON.stringify(index, null, 2)}\n`;
  const r = await putCounted(store, indexKey, Readable.from([Buffer.from(text)]), {
    label: 'index',
    log: reporter.info,
  });
  uploaded += r.created ? r.size : 0;
  const total = index.layers.reduce((a, l) => a + l.size, index.config.size);
  // The sidecar lets `lading load --source <index>` (and aliases of it) verify the index without a manifest.
  await store.put(
    storeKeys.sidecar(indexKey),
    JSON.stringify({ sha256: r.sha256, size: total, compression: 'none', imageId } satisfies Sidecar),
    { contentType: 'application/json' },
  );
  reporter.info(
    `${image.id}: ${index.layers.length} layer(s), ${formatBytes(total)} stored, ${formatBytes(uploaded)} uploaded now → ${store.url(indexKey)}`,
  );
  return { key: indexKey, stored: { sha256: r.sha256, size: total }, uploaded };
}

/**
 * Exports built images to a bucket or directory without a registry: streamed from `docker save` through compression
 * into a multipart/resumable upload, content-addressed (re-exporting uploads nothing), with `<name>-<alias>` copies.
 */
export async function runExportStage(opts: {
  inputs: ExportInputs;
  /** What the build stage built (its result in this process, or the build-json input). */
  build: BuildResult;
  env: NodeJS.ProcessEnv;
  reporter: Reporter;
  store?: ObjectStore;
}): Promise<ExportResult> {
  const { reporter, env } = opts;
  const s = resolveExportSettings(opts.inputs, opts.build);
  const c = effectiveCompression(s.compression);
  if (c !== s.compression)
    reporter.warning(
      `zstd is not available on this runner: compressing with gzip instead (install zstd or use Node ≥ 22.15)`,
    );
  const store = opts.store ?? (await openStore(s.location, s.storeOptions));
  const images: ExportedImage[] = [];
  for (const image of s.build.images) {
    const done = await reporter.group(`export ${image.id} → ${store.url(s.location.prefix)}`, async () => {
      const r =
        s.mode === 'layers'
          ? await exportLayers(store, s, image, c, reporter, env)
          : await exportArchive(store, s, image, c, reporter, env);
      const aliasKeys: string[] = [];
      for (const a of s.aliases) {
        const k =
          s.mode === 'archive'
            ? storeKeys.alias(s.location.prefix, image.name, a, c)
            : storeKeys.aliasIndex(s.location.prefix, image.name, a);
        await store.copy(r.key, k);
        await store.copy(storeKeys.sidecar(r.key), storeKeys.sidecar(k));
        aliasKeys.push(k);
        reporter.info(`alias ${store.url(k)}`);
      }
      return { ...r, aliasKeys };
    });
    images.push({
      ...image,
      digest: image.imageId!,
      ref: image.imageId!,
      size: done.stored.size,
      uploaded: done.uploaded,
      transport: transportFor(store, s.location, s.storeOptions, done.key, done.stored, c, s.mode, done.aliasKeys),
    });
  }
  const total = images.reduce((a, i) => a + i.uploaded, 0);
  reporter.info(`exported ${images.length} image(s); uploaded ${formatBytes(total)}`);
  return { ...s.build, images, store: store.url(s.location.prefix) };
}
