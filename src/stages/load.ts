import { capture } from '../io/exec.ts';
import { dockerLoad, presentChains, type StoreTransport, writeLoadArchive } from '../io/image-load.ts';
import { openObjectLocation, type StoreOptions } from '../io/store.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import type { Manifest } from '../lib/manifest.ts';
import { parseObjectLocation, storeKeys, type ArchiveCompression } from '../lib/store-location.ts';
import type { Reporter } from '../io/reporter.ts';

export interface LoadedImage {
  id: string;
  imageId: string;
  /** Already in the engine: nothing was transferred. */
  present: boolean;
  loaded: string[];
  layersSent?: number;
  layersTotal?: number;
}

async function localDocker(args: string[]): Promise<string> {
  const r = await capture('docker', args);
  if (r.code !== 0)
    throw new LadingError(`docker ${args[0]} ${args[1] ?? ''} failed: ${r.stderr.trim()}`, 'check that dockerd is up');
  return r.stdout;
}

/** Classic image store (docker load skips layers it has) or the containerd store (every layer must be sent). */
export async function usesContainerdStore(docker: (args: string[]) => Promise<string>): Promise<boolean> {
  const out = await docker(['info', '--format', '{{json .DriverStatus}}']).catch(() => '');
  return /io\.containerd\.snapshotter/.test(out);
}

/** `lading load`'s settings, parsed at the edge (src/settings/store.ts). */
export interface LoadSettings {
  store: StoreOptions;
  /** One object location to load; else the manifest's images. */
  source?: string;
  /** The object's sha256 (default: its sidecar's). */
  sha256?: string;
  /** The manifest (read at the edge) whose registry-less images are loaded. */
  manifest?: Manifest;
  /** Image ids to load from the manifest (empty: every stored one). */
  images: string[];
}

/**
 * `lading load`: makes registry-less images present in the local engine — by manifest (every stored image, or the
 * ids given) or by one object location (such as the `-latest` alias, verified against its sidecar when present).
 * Every stored byte is checked against the recorded sha256 before `docker load` can complete.
 */
export async function runLoadStage(opts: { settings: LoadSettings; reporter: Reporter }): Promise<LoadedImage[]> {
  const { reporter, settings } = opts;
  const { store: storeOptions, source } = settings;
  const targets: Array<{ id: string; imageId?: string; transport: StoreTransport }> = [];
  if (source) {
    const loc = parseObjectLocation('source', source);
    if (loc.kind === 'https')
      throw new InputError(
        'source',
        'https objects are loaded with curl | docker load',
        'give an s3://, gs:// or file location',
      );
    const { store, key } = await openObjectLocation(loc, storeOptions);
    const info = await store.head(key);
    if (!info) throw new LadingError(`${source} does not exist`, 'check the location (and that the export ran)');
    let sha256 = settings.sha256;
    let compression: ArchiveCompression | undefined;
    let imageId: string | undefined;
    if (!sha256) {
      const side = await store.getText(storeKeys.sidecar(key)).catch(() => undefined);
      if (!side)
        throw new LadingError(
          `${source} has no ${storeKeys.sidecar(key).split('/').pop()} beside it to verify it against`,
          'pass --sha256, or load by manifest',
        );
      const meta = JSON.parse(side.text) as { sha256: string; compression: ArchiveCompression; imageId?: string };
      sha256 = meta.sha256;
      compression = meta.compression;
      imageId = meta.imageId;
    }
    compression ??= key.endsWith('.zst') ? 'zstd' : key.endsWith('.gz') ? 'gzip' : 'none';
    // A layers-mode index (or an alias of one) names its blobs; an archive is the object itself.
    const layered = key.endsWith('.index.json');
    const common = layered
      ? { sha256, size: info.size, compression: 'none' as const, mode: 'layers' as const, index: key }
      : { sha256, size: info.size, compression, mode: 'archive' as const };
    const transport: StoreTransport =
      loc.kind === 's3'
        ? { kind: 's3', bucket: loc.bucket, key, ...common }
        : loc.kind === 'gcs'
          ? { kind: 'gcs', bucket: loc.bucket, object: key, ...common }
          : { kind: 'file', path: `/${key}`, ...common };
    targets.push({ id: key.split('/').pop()!, imageId, transport });
  } else {
    const { manifest, images: wanted } = settings;
    if (!manifest) throw new InputError('manifest', 'is empty', 'give a manifest, or a source object to load');
    for (const i of manifest.images) {
      if (wanted.length && !wanted.includes(i.id)) continue;
      if (i.transport.kind === 'registry') {
        if (wanted.includes(i.id))
          throw new InputError('images', `'${i.id}' is in a registry`, 'docker pull it instead');
        continue;
      }
      targets.push({ id: i.id, imageId: i.digest, transport: i.transport });
    }
    const unknown = wanted.filter((w) => !manifest.images.some((i) => i.id === w));
    if (unknown.length)
      throw new InputError(
        'images',
        `no image ${unknown.join(', ')} in the manifest`,
        `the manifest has ${manifest.images.map((i) => i.id).join(', ')}`,
      );
    if (targets.length === 0)
      throw new LadingError('the manifest names no registry-less image', 'use docker pull for registry images');
  }
  const results: LoadedImage[] = [];
  const containerd = await usesContainerdStore(localDocker);
  for (const t of targets) {
    if (t.imageId) {
      const has = await capture('docker', ['image', 'inspect', '--format', '{{.Id}}', t.imageId]);
      if (has.code === 0) {
        reporter.info(`${t.id}: ${t.imageId} is already present`);
        results.push({ id: t.id, imageId: t.imageId, present: true, loaded: [] });
        continue;
      }
    }
    const chains = t.transport.mode === 'layers' && !containerd ? await presentChains(localDocker) : undefined;
    let stats = {};
    const loaded = await reporter.group(`load ${t.id}`, () =>
      dockerLoad(async (stdin) => {
        stats = await writeLoadArchive({ transport: t.transport, storeOptions, dest: stdin, decompress: true, chains });
      }),
    );
    for (const l of loaded) reporter.info(l);
    results.push({ id: t.id, imageId: t.imageId ?? '', present: false, loaded, ...stats });
  }
  return results;
}
