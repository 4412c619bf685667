import {
  close,
  constants,
  createReadStream,
  createWriteStream,
  fchmod,
  fstat,
  futimes,
  open,
  type Stats,
} from 'node:fs';
import { lstat, lutimes, mkdir, rm, symlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { LadingError } from '../lib/errors.ts';

// Plain numbers, not FileHandles: a stream over a FileHandle keeps it referenced until the stream closes it.
const openFd = promisify(open);
const closeFd = promisify(close);
const fchmodFd = promisify(fchmod);
const futimesFd = promisify(futimes);
const fstatFd = promisify(fstat);

const { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/**
 * File operations confined to one directory tree that never follow a symlink. Every path is relative to `root`
 * (`a/b/c`, no `..`); before each operation every parent component is checked with lstat to be a real directory
 * (never a link), and the last component is opened with O_NOFOLLOW (or created with O_EXCL, or not followed by the
 * call itself: mkdir, symlink, lutimes, rm). So whatever links a hostile archive leaves in the tree, no operation
 * reads, writes, chmods or times anything outside `root`.
 *
 * The checks and the operations are separate system calls: this protects against the archive (which is processed
 * sequentially by this process), not against another process racing to swap directories in the tree meanwhile.
 */
export class ConfinedDir {
  constructor(readonly root: string) {}

  private full(rel: string): string {
    const segments = rel.split('/');
    if (rel === '' || segments.some((s) => s === '' || s === '.' || s === '..') || rel.includes('\0')) {
      throw new LadingError(`'${rel}' is not a path inside ${this.root}`, 'this is a bug in lading: report it');
    }
    return posix.join(this.root, rel);
  }

  /** Throws unless every parent of `rel` is a real directory (not a link, not a file). */
  async checkParents(rel: string): Promise<void> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const s = await lstat(this.full(p)).catch(() => undefined);
      if (!s) {
        throw new LadingError(`/${p} (on the way to /${rel}) does not exist`, 'the image is malformed');
      }
      if (!s.isDirectory()) {
        throw new LadingError(
          `the image path /${rel} goes through /${p}, which is ${s.isSymbolicLink() ? 'a symlink' : 'not a directory'}`,
          'lading never follows a link while extracting; the image is malformed or hostile',
        );
      }
    }
  }

  /** lstat of `rel` (undefined when absent), its parents checked. */
  async lstat(rel: string): Promise<Stats | undefined> {
    await this.checkParents(rel);
    return lstat(this.full(rel)).catch(() => undefined);
  }

  async mkdir(rel: string, mode = 0o755): Promise<void> {
    await this.checkParents(rel);
    await mkdir(this.full(rel), { mode });
  }

  async symlink(target: string, rel: string, mtime?: Date): Promise<void> {
    await this.checkParents(rel);
    await symlink(target, this.full(rel));
    if (mtime) await lutimes(this.full(rel), mtime, mtime).catch(() => {});
  }

  /** Removes `rel` (a link itself, never what it points to; a directory with its contents). */
  async remove(rel: string): Promise<void> {
    await this.checkParents(rel);
    await rm(this.full(rel), { recursive: true, force: true });
  }

  /** Creates a new file (never an existing one, never through a link) from `body`, then sets mode and time. */
  async writeFile(
    rel: string,
    body: Readable,
    mode: number,
    mtime?: Date,
    observe: (chunk: Buffer) => void = () => {},
  ): Promise<void> {
    await this.checkParents(rel);
    const fd = await openFd(this.full(rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      const tap = new Transform({
        transform(chunk: Buffer, _e, cb: TransformCallback) {
          observe(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(body, tap, createWriteStream('', { fd, autoClose: false, emitClose: false }));
      await finish(fd, mode, mtime);
    } finally {
      await closeFd(fd);
    }
  }

  /** Opens an existing regular file for reading (refusing a link or anything else); the caller closes the fd. */
  async openFile(rel: string): Promise<number> {
    await this.checkParents(rel);
    const fd = await openFd(this.full(rel), O_RDONLY | O_NOFOLLOW);
    if (!(await fstatFd(fd)).isFile()) {
      await closeFd(fd);
      throw new LadingError(`/${rel} is not a regular file`, 'the image is malformed');
    }
    return fd;
  }

  /** Copies the regular file `from` to the new file `to` (a hard link of the image, made a copy). */
  async copyFile(from: string, to: string, mode: number, mtime?: Date): Promise<void> {
    const fd = await this.openFile(from);
    try {
      await this.writeFile(to, createReadStream('', { fd, autoClose: false, emitClose: false }), mode, mtime);
    } finally {
      await closeFd(fd);
    }
  }

  /** Sets the mode and time of an existing directory (never through a link). */
  async setDirectory(rel: string, mode?: number, mtime?: Date): Promise<void> {
    await this.checkParents(rel);
    const fd = await openFd(this.full(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      await finish(fd, mode, mtime);
    } finally {
      await closeFd(fd);
    }
  }
}

async function finish(fd: number, mode?: number, mtime?: Date): Promise<void> {
  if (mtime) await futimesFd(fd, mtime, mtime);
  if (mode !== undefined) await fchmodFd(fd, mode);
}
