import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LadingError } from '../../lib/errors.ts';
import type { Reporter } from '../../io/reporter.ts';

// ---------------------------------------------------------------------------------------------------------------
// The blob cache: <cache-dir>/blobs/sha256/<hex>, written via a temp file and a rename, verified before the rename.

const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

interface Stats {
  downloaded: number;
  cached: number;
  bytesDownloaded: number;
}

export class BlobCache {
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

export function tap(fn: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      fn(chunk);
      cb(null, chunk);
    },
  });
}

export const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
