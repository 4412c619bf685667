import { LadingError } from './errors.ts';
import type { ArchiveCompression } from './store-location.ts';

/**
 * Layers mode: instead of one archive per image, each layer (and the image config) is stored once under its digest,
 * and a small per-image index names them. Exports upload only the blobs the store lacks; loads send only the layers
 * the target daemon lacks.
 *
 * Layer blobs are keyed by the layer's diffID (sha256 of the uncompressed layer tar, as in the image config's
 * rootfs.diff_ids), so the same layer is one object whatever compression a run used; `sha256`/`size` describe the
 * stored (compressed) bytes and are verified on download.
 */
export const LAYER_INDEX_SCHEMA = 'lading.layers/v1';

export interface StoredBlob {
  /** Object key inside the bucket. */
  key: string;
  /** sha256 (hex) and size of the stored bytes. */
  sha256: string;
  size: number;
  compression: ArchiveCompression;
}

export interface LayerEntry extends StoredBlob {
  /** sha256:… of the uncompressed layer tar (config rootfs.diff_ids[i]). */
  diffId: string;
  /** Size of the uncompressed layer tar. */
  uncompressedSize: number;
}

export interface LayerIndex {
  schema: typeof LAYER_INDEX_SCHEMA;
  /** Image ID: sha256:… of the config JSON. */
  imageId: string;
  name: string;
  /** name:tag references the archive gives the image when loaded. */
  repoTags: string[];
  /** The config JSON, stored uncompressed under its digest (= imageId). */
  config: StoredBlob;
  /** In rootfs order. */
  layers: LayerEntry[];
}

const HEX64 = /^[a-f0-9]{64}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function fail(what: string): never {
  throw new LadingError(`layer index is invalid: ${what}`, 're-export the image with lading export (mode: layers)');
}

function blob(v: unknown, where: string): StoredBlob {
  const b = v as Partial<StoredBlob> | null;
  if (!b || typeof b !== 'object') fail(`${where} is missing`);
  if (typeof b.key !== 'string' || !b.key) fail(`${where}.key is missing`);
  if (typeof b.sha256 !== 'string' || !HEX64.test(b.sha256)) fail(`${where}.sha256 is not a sha256`);
  if (typeof b.size !== 'number' || b.size < 0) fail(`${where}.size is not a size`);
  if (!['zstd', 'gzip', 'none'].includes(b.compression as string)) fail(`${where}.compression is unknown`);
  return { key: b.key, sha256: b.sha256, size: b.size, compression: b.compression as ArchiveCompression };
}

export function parseLayerIndex(text: string): LayerIndex {
  let v: Partial<LayerIndex>;
  try {
    v = JSON.parse(text) as Partial<LayerIndex>;
  } catch {
    fail('not JSON');
  }
  if (v.schema !== LAYER_INDEX_SCHEMA) fail(`schema is ${JSON.stringify(v.schema)}, expected ${LAYER_INDEX_SCHEMA}`);
  if (typeof v.imageId !== 'string' || !DIGEST.test(v.imageId)) fail('imageId is not a sha256 digest');
  if (typeof v.name !== 'string' || !v.name) fail('name is missing');
  if (!Array.isArray(v.repoTags) || v.repoTags.some((t) => typeof t !== 'string')) fail('repoTags is not a list');
  if (!Array.isArray(v.layers)) fail('layers is not a list');
  const layers = v.layers.map((l, i) => {
    const e = l as Partial<LayerEntry>;
    if (typeof e.diffId !== 'string' || !DIGEST.test(e.diffId)) fail(`layers[${i}].diffId is not a sha256 digest`);
    if (typeof e.uncompressedSize !== 'number') fail(`layers[${i}].uncompressedSize is missing`);
    return { ...blob(l, `layers[${i}]`), diffId: e.diffId, uncompressedSize: e.uncompressedSize };
  });
  return {
    schema: LAYER_INDEX_SCHEMA,
    imageId: v.imageId,
    name: v.name,
    repoTags: v.repoTags,
    config: blob(v.config, 'config'),
    layers,
  };
}

/**
 * Layer chains as keys: every prefix of an image's diffIDs. On the classic image store `docker load` skips a layer
 * whose chain the daemon has, so these say which leading layers of an archive need not be sent.
 */
export function addChains(chains: Set<string>, diffIds: string[]): void {
  for (let i = 1; i <= diffIds.length; i++) chains.add(diffIds.slice(0, i).join(','));
}

/** How many leading layers of `index` the daemon already has (by chain). */
export function presentPrefix(index: LayerIndex, chains: Set<string>): number {
  let k = 0;
  while (
    k < index.layers.length &&
    chains.has(
      index.layers
        .slice(0, k + 1)
        .map((l) => l.diffId)
        .join(','),
    )
  )
    k++;
  return k;
}

/** What a host said about registry-less images (step image_facts). */
export interface ImageFacts {
  present: Set<string>;
  zstd: boolean;
  containerd: boolean;
  chains: Set<string>;
}

export function parseImageFacts(stdout: string): ImageFacts {
  const f: ImageFacts = { present: new Set(), zstd: false, containerd: false, chains: new Set() };
  for (const line of stdout.split('\n')) {
    const [k, ...rest] = line.trim().split(' ');
    const v = rest.join(' ');
    if (k === 'present' && v) f.present.add(v);
    else if (k === 'zstd') f.zstd = v === 'yes';
    else if (k === 'containerd') f.containerd = v === 'yes';
    else if (k === 'chain' && v) addChains(f.chains, (JSON.parse(v) as string[] | null) ?? []);
  }
  return f;
}
