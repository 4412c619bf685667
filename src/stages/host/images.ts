import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Digester, formatBytes } from '../../io/archive.ts';
import { type StoreTransport, storeFor, writeLoadArchive } from '../../io/image-load.ts';
import type { StoreOptions } from '../../io/store.ts';
import { parseImageFacts } from '../../lib/layer-index.ts';
import type { Manifest, ManifestImage } from '../../lib/manifest.ts';
import type { HostSession } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import type { RunStep } from './steps.ts';

export type ImageFetch = 'ssh' | 'url';

export function storeImages(manifest: Manifest): Array<ManifestImage & { transport: StoreTransport }> {
  return manifest.images.filter(
    (i): i is ManifestImage & { transport: StoreTransport } => i.transport.kind !== 'registry',
  );
}

/** A host step runner (the deploy's `step`), bound to one host. */

/**
 * Fetches registry-less images once per deploy and hands them to many hosts. Archive objects are downloaded and
 * verified once (decompressed once more for hosts without zstd); layers-mode archives are built per host with only the
 * layers that host lacks. Hosts need no cloud credentials: the bytes travel over the deploy's SSH connection and are
 * verified again on the host (sha256) before `docker load`.
 */
export class ImageShipper {
  private dir?: Promise<string>;
  private readonly files = new Map<string, Promise<{ path: string; sha256: string; size: number }>>();

  constructor(
    private readonly storeOptions: StoreOptions,
    private readonly reporter: Reporter,
    /** ssh: the runner sends the bytes; url: hosts download archives themselves with a short-lived signed URL. */
    private readonly fetch: ImageFetch = 'ssh',
  ) {}

  /** A presigned (S3) / signed (GCS) URL for hosts to fetch an archive, or undefined where none can be made. */
  private async signed(t: StoreTransport): Promise<string | undefined> {
    if (this.fetch !== 'url' || t.mode !== 'archive') return undefined;
    const { store, key } = await storeFor(t, this.storeOptions);
    const url = await store.signedUrl(key, 900);
    if (url) this.reporter.secret(url);
    return url;
  }

  private tmp(): Promise<string> {
    this.dir ??= mkdtemp(join(process.env.RUNNER_TEMP || tmpdir(), 'lading-images-'));
    return this.dir;
  }

  /** A verified local copy of what to send; cached per (image, form) for every host of this deploy. */
  private async prepare(
    image: ManifestImage & { transport: StoreTransport },
    form: { decompress: boolean; chains?: Set<string> },
  ): Promise<{ path: string; sha256: string; size: number }> {
    const layered = image.transport.mode === 'layers';
    const cacheKey = layered ? undefined : `${image.digest}:${form.decompress}`;
    const make = async () => {
      const path = join(await this.tmp(), `${image.id}-${Math.random().toString(36).slice(2)}.tar`);
      const d = new Digester();
      const done = pipeline(d, createWriteStream(path, { mode: 0o600 }));
      await writeLoadArchive({
        transport: image.transport,
        storeOptions: this.storeOptions,
        dest: d,
        decompress: form.decompress,
        chains: form.chains,
      });
      await done;
      return { path, sha256: d.digest(), size: d.bytes };
    };
    if (!cacheKey) return make();
    let p = this.files.get(cacheKey);
    if (!p) {
      p = make();
      this.files.set(cacheKey, p);
      p.catch(() => this.files.delete(cacheKey));
    }
    return p;
  }

  /**
   * Makes every registry-less image of `manifest` present on one host: `session` uploads, `run` runs host steps,
   * `dir` is the project directory there (uploads wait in its .incoming/). Returns how many images were sent.
   */
  async ensure(
    manifest: Manifest,
    host: { label: string; dir: string; session: Pick<HostSession, 'uploadFile'> },
    run: RunStep,
  ): Promise<number> {
    const images = storeImages(manifest);
    if (images.length === 0) return 0;
    const facts = parseImageFacts(
      await run('image_facts', {
        LADING_IMAGE_IDS: images.map((i) => i.digest).join('\n'),
        LADING_WANT_CHAINS: images.some((i) => i.transport.mode === 'layers') ? '1' : '0',
      }),
    );
    let sent = 0;
    for (const image of images) {
      if (facts.present.has(image.digest)) {
        this.reporter.info(`${host.label}: ${image.id} ${image.digest.slice(0, 19)} is present`);
        continue;
      }
      const t = image.transport;
      // docker load reads gzip and plain tar itself; zstd needs the zstd program on the host.
      const decompress = t.mode === 'archive' && t.compression === 'zstd' && !facts.zstd;
      const format = t.mode === 'archive' && t.compression === 'zstd' && !decompress ? 'zstd' : 'tar';
      const started = Date.now();
      const url = decompress ? undefined : await this.signed(t);
      let upload: { sha256: string; size: number; how: string; note: string; path?: string };
      if (url) {
        upload = { sha256: t.sha256, size: t.size, how: 'fetched by the host from the bucket', note: ', signed URL' };
      } else {
        const file = await this.prepare(image, {
          decompress,
          chains: t.mode === 'layers' && !facts.containerd ? facts.chains : undefined,
        });
        upload = { ...file, how: 'sent', note: decompress ? ', decompressed: no zstd on the host' : '' };
      }
      const load = {
        LADING_LOAD_FILE: `${host.dir}/.incoming/${upload.sha256}.${format === 'zstd' ? 'tar.zst' : 'tar'}`,
        LADING_LOAD_SHA256: upload.sha256,
        LADING_LOAD_ID: image.digest,
      };
      if (url) await run('fetch', { ...load, LADING_FETCH_URL: url });
      else await host.session.uploadFile(load.LADING_LOAD_FILE, upload.path!, 0o600);
      const out = await run('load', { ...load, LADING_LOAD_FORMAT: format });
      sent++;
      this.reporter.info(
        `${host.label}: ${image.id} ${upload.how} (${formatBytes(upload.size)}${upload.note}) and loaded in ${((Date.now() - started) / 1000).toFixed(1)} s: ${out.trim().split('\n').pop() ?? ''}`,
      );
      if (t.mode === 'layers' && upload.path) await rm(upload.path, { force: true }); // built for this host only
    }
    return sent;
  }

  async close(): Promise<void> {
    if (this.dir) await rm(await this.dir, { recursive: true, force: true });
  }
}
