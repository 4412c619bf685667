import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar-stream';

/** One tar entry of a hand-made layer: what no docker build produces (hostile links, replaced dirs, whiteouts). */
export type LayerEntry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  body?: string;
  linkname?: string;
  mode?: number;
  mtime?: Date;
};

async function packed(pack: tar.Pack): Promise<Buffer> {
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function layerTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      ...(e.linkname !== undefined && { linkname: e.linkname }),
      ...(e.mtime && { mtime: e.mtime }),
    };
    if (type === 'file') pack.entry(header, e.body ?? '');
    else pack.entry(header);
  }
  return packed(pack);
}

/** A docker-save archive (classic layout, uncompressed) of the given layers, bottom → top, written to `file`. */
export async function writeSaveArchive(file: string, layers: LayerEntry[][]): Promise<string> {
  writeFileSync(file, await saveArchive(layers));
  return file;
}

/** The bytes of a docker-save archive (classic layout, uncompressed) of the given layers, bottom → top. */
export async function saveArchive(layers: LayerEntry[][]): Promise<Buffer> {
  const tars = await Promise.all(layers.map(layerTar));
  const diffIds = tars.map((t) => `sha256:${createHash('sha256').update(t).digest('hex')}`);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configHex = createHash('sha256').update(config).digest('hex');
  const pack = tar.pack();
  // Two layers can be byte-identical: one blob each is enough, the manifest lists it twice.
  const names = new Set<string>();
  tars.forEach((t, i) => {
    const name = `${diffIds[i]!.slice(7)}/layer.tar`;
    if (!names.has(name)) pack.entry({ name }, t);
    names.add(name);
  });
  pack.entry({ name: `${configHex}.json` }, config);
  pack.entry(
    { name: 'manifest.json' },
    JSON.stringify([
      {
        Config: `${configHex}.json`,
        RepoTags: ['crafted:1'],
        Layers: tars.map((_, i) => `${diffIds[i]!.slice(7)}/layer.tar`),
      },
    ]),
  );
  return packed(pack);
}

/** Relative links `r -> .`, `u1 -> r/..`, … `uN -> u(N-1)/..`: each passes a lexical `..` count, uN resolves to `/`. */
export function climbingChain(n: number): LayerEntry[] {
  const out: LayerEntry[] = [{ name: 'r', type: 'symlink', linkname: '.' }];
  for (let i = 1; i <= n; i++)
    out.push({ name: `u${i}`, type: 'symlink', linkname: `${i === 1 ? 'r' : `u${i - 1}`}/..` });
  return out;
}

export const joinUnder = (root: string, ...parts: string[]) => join(root, ...parts);
