import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A sentinel tree outside an extraction's destination: files and directories with known content, modes and times.
 * `snapshot` lists every entry with content hash, mode and mtime, so any change (a write, a chmod, a utimes, a new
 * or removed file) shows as a difference. Each file's content carries `marker`, so a copy of it anywhere is found.
 */
export const SENTINEL_MARKER = 'lading-sentinel-7f3c1d';

export function plantSentinel(root: string): void {
  const when = new Date('2001-02-03T04:05:06Z');
  // Names a fuzzer's paths use too (a, b, c, d), so a path below a replaced directory can land on them.
  for (const d of ['sub/deeper', 'a', 'c/c', 'd']) mkdirSync(join(root, d), { recursive: true, mode: 0o700 });
  const files: Array<[string, number]> = [
    ['secret.txt', 0o600],
    ['passwd', 0o644],
    ['sub/x.txt', 0o640],
    ['sub/deeper/y', 0o755],
    ['a/a', 0o600],
    ['a/b', 0o644],
    ['b', 0o640],
    ['c/d', 0o600],
    ['c/c/c', 0o644],
  ];
  for (const [rel, mode] of files) {
    writeFileSync(join(root, rel), `${SENTINEL_MARKER} ${rel}\n`, { mode });
    utimesSync(join(root, rel), when, when);
  }
  for (const d of ['sub/deeper', 'sub', 'a', 'c/c', 'c', 'd', '.']) utimesSync(join(root, d), when, when);
}

export function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const full = rel ? join(root, rel) : root;
    const s = lstatSync(full);
    const meta = `${(s.mode & 0o7777).toString(8)} ${s.mtimeMs}`;
    if (s.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(full)}`);
    else if (s.isDirectory()) {
      out.push(`${rel}/ ${meta}`);
      for (const n of readdirSync(full).sort()) walk(rel ? `${rel}/${n}` : n);
    } else out.push(`${rel} ${meta} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
  };
  walk('');
  return out;
}

/** Every regular file under `root` whose content holds the sentinel marker (it came from outside). */
export function filesWithMarker(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      const s = lstatSync(p);
      if (s.isDirectory()) walk(p);
      else if (s.isFile() && readFileSync(p).includes(SENTINEL_MARKER)) out.push(p);
    }
  };
  walk(root);
  return out;
}
