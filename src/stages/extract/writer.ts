import { createHash } from 'node:crypto';
import { lstat, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type * as tar from 'tar-stream';
import { ConfinedDir } from '../../io/confined-fs.ts';
import { LadingError } from '../../lib/errors.ts';
import {
  type EntryKind,
  hardLinkTarget,
  isWithin,
  type LayerWalk,
  normalizeEntryPath,
  safeLinkTarget,
} from '../../lib/extract-plan.ts';
import { forEachTarEntry } from './tar-entries.ts';

/**
 * Writing a layer's entries into the staging directory. Every file operation goes through ConfinedDir: no symlink
 * is ever followed (a link of the image is written as a link, and never used as a path to anything), so a hostile
 * layer cannot read, write, chmod or time anything outside the staging directory. The records (`written`) always
 * match the staged tree: replacing a directory drops every record and every pending hard link below it.
 */

export interface Written {
  layer: number;
  type: 'file' | 'directory' | 'symlink';
  implicit?: boolean;
  mode?: number;
  mtime?: Date;
  size?: number;
  sha256?: string;
  target?: string;
}

interface Deferred {
  path: string;
  target: string;
  mode: number;
  mtime?: Date;
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

export class Extraction {
  readonly written = new Map<string, Written>();
  readonly skipped: string[] = [];
  private layer = 0;
  private deferred: Deferred[] = [];
  private readonly fs: ConfinedDir;

  constructor(
    readonly staging: string,
    readonly walk: LayerWalk,
  ) {
    this.fs = new ConfinedDir(staging);
  }

  /** Creates the parent directories of `path`; ConfinedDir refuses to go through anything not a real directory. */
  private async parents(path: string): Promise<void> {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const s = await this.fs.lstat(p);
      if (!s) {
        await this.fs.mkdir(p, 0o755);
        this.written.set(p, { layer: this.layer, type: 'directory', implicit: true });
      } else if (!s.isDirectory()) {
        throw new LadingError(
          `the image path /${path} goes through /${p}, which is ${s.isSymbolicLink() ? 'a symlink' : 'not a directory'}`,
          'the image is malformed',
        );
      }
    }
  }

  /** Forgets `path` and everything below it: records and pending hard links (the staged tree no longer has them). */
  private forget(path: string): void {
    for (const p of [...this.written.keys()]) if (isWithin(p, path)) this.written.delete(p);
    this.deferred = this.deferred.filter((d) => !isWithin(d.path, path));
  }

  /** False when an upper layer already put something at `path` (then this entry is hidden). */
  private async clear(path: string, dir: boolean): Promise<boolean> {
    const w = this.written.get(path);
    if (w && w.layer !== this.layer) return dir && w.type === 'directory';
    // A later entry at the same path wins over a hard link of this layer still waiting for its target.
    this.deferred = this.deferred.filter((d) => d.path !== path);
    if (!w) return true;
    if (dir && w.type === 'directory') return true;
    await this.fs.remove(path);
    this.forget(path);
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
    if (kind === 'directory') {
      const w = this.written.get(path);
      if (!w) await this.fs.mkdir(path, 0o755);
      if (!w || w.implicit || w.layer === this.layer) {
        this.written.set(path, { layer: this.layer, type: 'directory', mode, ...(mtime && { mtime }) });
      }
      return;
    }
    if (kind === 'symlink') {
      const target = safeLinkTarget(path, h.linkname ?? '');
      await this.fs.symlink(target, path, mtime);
      this.written.set(path, { layer: this.layer, type: 'symlink', mode: 0o777, target });
      return;
    }
    if (kind === 'link') {
      const target = hardLinkTarget(path, h.linkname ?? '');
      const t = this.written.get(target);
      if (t && t.layer === this.layer && t.type === 'file') {
        await this.fs.copyFile(target, path, t.mode ?? mode, t.mtime);
        this.written.set(path, { ...t });
      } else {
        this.deferred.push({ path, target, mode, ...(mtime && { mtime }) });
      }
      return;
    }
    await this.writeFile(path, body, mode, mtime);
  }

  private async writeFile(path: string, body: Readable, mode: number, mtime?: Date): Promise<void> {
    const hash = createHash('sha256');
    let size = 0;
    await this.fs.writeFile(path, body, mode, mtime, (c) => (hash.update(c), (size += c.length)));
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
    const byTarget = new Map<string, Deferred[]>();
    for (const d of this.deferred) byTarget.set(d.target, [...(byTarget.get(d.target) ?? []), d]);
    await forEachTarEntry(await reopen(), async (entry) => {
      const path = normalizeEntryPath(entry.header.name, where);
      const links = path === undefined ? undefined : byTarget.get(path);
      if (!links || kindOf(entry.header.type) !== 'file') return;
      byTarget.delete(path!);
      const [first, ...others] = links;
      await this.writeFile(first!.path, entry, first!.mode, first!.mtime);
      for (const o of others) {
        await this.fs.copyFile(first!.path, o.path, o.mode, first!.mtime);
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

  /**
   * Directory modes and times, once the staged tree is in `destination`: deepest first (a read-only directory must
   * not block its own contents), each through the same checked path (never through a link).
   */
  async applyDirectories(destination: string): Promise<void> {
    const dest = new ConfinedDir(destination);
    const dirs = [...this.written.entries()].filter(([, w]) => w.type === 'directory' && !w.implicit);
    dirs.sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [p, w] of dirs) await dest.setDirectory(p, w.mode, w.mtime);
  }
}

/** Moves the staged tree into the destination: new paths are renamed in, directories merged, others replaced. */
export async function mergeInto(src: string, dst: string): Promise<void> {
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
