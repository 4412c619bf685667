import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectInfo, ObjectStore, PutOptions, PutResult } from './object-store.ts';
import { StoreError } from './object-store.ts';

/**
 * A local directory as an object store (shared disks, tests, air-gapped hand-offs). Writes go to a temp file that is
 * linked into place, so a reader never sees a partial object and a failed body leaves nothing under the key.
 */
export class FileStore implements ObjectStore {
  readonly kind = 'file' as const;
  constructor(readonly bucket: string) {}

  private path(key: string): string {
    const p = join(this.bucket, key);
    if (relative(this.bucket, p).startsWith('..'))
      throw new StoreError(`object key '${key}' leaves ${this.bucket}`, 'use keys inside the store');
    return p;
  }

  url(key: string): string {
    return this.path(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      if (!s.isFile()) return undefined;
      return { key, size: s.size, version: `${s.mtimeMs}-${s.ino}`, updated: s.mtime };
    } catch {
      return undefined;
    }
  }

  async put(key: string, body: Readable | Buffer | string, opts: PutOptions = {}): Promise<PutResult> {
    const target = this.path(key);
    if (opts.ifAbsent && (await this.head(key))) return { created: false };
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.partial-${process.pid}-${Date.now()}`;
    let bytes = 0;
    const src = typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body;
    src.on('data', (c: Buffer) => {
      bytes += c.length;
      opts.onProgress?.(bytes);
    });
    try {
      await pipeline(src, createWriteStream(tmp, { mode: 0o644 }));
      if (opts.ifAbsent) {
        try {
          await link(tmp, target); // fails when the target exists: create-only
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { created: false };
          throw e;
        }
      } else {
        await copyFile(tmp, target);
      }
    } finally {
      await unlink(tmp).catch(() => {});
    }
    return { created: true, version: (await this.head(key))?.version };
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    if (!(await this.head(key)))
      throw new StoreError(`${p} does not exist`, 'check the store location and that the export ran', true);
    return createReadStream(p);
  }

  async getText(key: string): Promise<{ text: string; version?: string }> {
    const info = await this.head(key);
    if (!info)
      throw new StoreError(
        `${this.path(key)} does not exist`,
        'check the location and that the build published it',
        true,
      );
    return { text: await readFile(this.path(key), 'utf8'), version: info.version };
  }

  async copy(from: string, to: string): Promise<void> {
    await mkdir(dirname(this.path(to)), { recursive: true });
    const tmp = `${this.path(to)}.partial-${process.pid}`;
    await copyFile(this.path(from), tmp);
    await rename(tmp, this.path(to));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const walk = async function* (dir: string, self: FileStore): AsyncIterable<ObjectInfo> {
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch {
        return;
      }
      for (const n of names) {
        const p = join(dir, n);
        const s = await stat(p);
        if (s.isDirectory()) yield* walk(p, self);
        else if (!n.includes('.partial-')) {
          const key = relative(self.bucket, p);
          if (key.startsWith(prefix)) yield { key, size: s.size, version: `${s.mtimeMs}-${s.ino}`, updated: s.mtime };
        }
      }
    };
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    yield* walk(join(this.bucket, base), this);
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async signedUrl(): Promise<string | undefined> {
    return undefined;
  }
}
