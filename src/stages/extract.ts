import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LadingError } from '../lib/errors.ts';
import { LayerWalk } from '../lib/extract-plan.ts';
import { BlobCache, mib } from './extract/blob-cache.ts';
import type { ExtractSettings } from './extract/settings.ts';
import { resolveImage } from './extract/sources.ts';
import { openLayerFile } from './extract/tar-entries.ts';
import { Extraction, mergeInto } from './extract/writer.ts';
import type { Reporter } from '../io/reporter.ts';

export type { ExtractSettings } from './extract/settings.ts';

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

// ---------------------------------------------------------------------------------------------------------------

export async function runExtractStage(opts: {
  /** Parsed at the edge (src/settings/extract.ts), against the same working directory. */
  settings: ExtractSettings;
  reporter: Reporter;
  cwd?: string;
}): Promise<ExtractResult> {
  const { reporter, settings } = opts;
  const cwd = opts.cwd ?? process.cwd();
  const cache = new BlobCache(settings.cacheDir, reporter);
  const image = await reporter.group('extract: resolve the image', () => resolveImage(settings, reporter, cache, cwd));
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
  await ex.applyDirectories(settings.destination);
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
