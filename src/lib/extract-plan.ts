import { posix } from 'node:path';
import { InputError, LadingError } from './errors.ts';
import { INPUTS } from './input-table.ts';
import { isDigest, registryHostOf, repositoryOf } from './registry.ts';

/**
 * Extract, pure parts: which image paths were asked for, how layer entries and whiteouts settle the final
 * filesystem when layers are read top-down (the uppermost layer first, as overlayfs looks files up), where a link
 * may point, and which manifest of an index serves a platform.
 *
 * Paths are image paths without the leading slash: `srv/app.txt`; '' is the image root.
 */

// ---------------------------------------------------------------------------------------------------------------
// Paths

/** A requested path (`/srv/app`, `srv/app/`, `./srv`): normalised; `..` is refused; `/` means everything. */
export function normalizeRequestPath(raw: string, input = 'paths'): string {
  const value = raw.trim();
  if (value === '') throw new InputError(input, 'a path is empty');
  if (value.includes('\0')) throw new InputError(input, `'${value}' contains a NUL byte`);
  const segments = value.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new InputError(input, `'${value}' contains '..'`, 'give the path inside the image, like /srv/app');
  }
  return segments.join('/');
}

/** The requested paths, normalised, with paths inside another requested path dropped. */
export function normalizeRequests(raw: string[], input = 'paths'): string[] {
  if (raw.length === 0) throw new InputError(input, 'no path given', 'list the image paths to copy, like /srv/app');
  const paths = [...new Set(raw.map((p) => normalizeRequestPath(p, input)))].sort();
  return paths.filter((p) => !paths.some((q) => q !== p && isWithin(p, q)));
}

/** True when `path` is `base` or below it ('' is the root, which holds everything). */
export function isWithin(path: string, base: string): boolean {
  return base === '' || path === base || path.startsWith(`${base}/`);
}

/**
 * A tar entry name as an image path: leading `./` and `/` and trailing `/` dropped. Undefined for the root itself.
 * A name with a `..` segment is refused: a layer must never reach outside the image root.
 */
export function normalizeEntryPath(name: string, where = 'a layer'): string | undefined {
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..') || name.includes('\0')) {
    throw new LadingError(
      `${where} has an entry '${name}' that points outside the image root`,
      'the image is malformed or malicious; lading refuses to extract it',
    );
  }
  return segments.length === 0 ? undefined : segments.join('/');
}

/**
 * Where a symlink at image path `entry` may point once extracted under a destination directory that stands for
 * the image root: an absolute target is rewritten relative to the link (so it points inside the destination the
 * way it points inside the image); a relative target that climbs above the root (counted lexically) is refused.
 * This keeps the output tidy; it is not what keeps extraction inside the destination (a chain of links can pass a
 * lexical count and still resolve anywhere): the writer never follows a link (src/io/confined-fs.ts).
 */
export function safeLinkTarget(entry: string, linkname: string): string {
  if (linkname === '' || linkname.includes('\0')) {
    throw new LadingError(`the symlink /${entry} has an empty or invalid target`, 'the image is malformed');
  }
  const dir = posix.dirname(`/${entry}`);
  if (linkname.startsWith('/')) {
    const target = posix.normalize(linkname);
    const rel = posix.relative(dir, target);
    return rel === '' ? '.' : rel;
  }
  let depth = dir === '/' ? 0 : dir.split('/').length - 1;
  for (const seg of linkname.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') depth--;
    else depth++;
    if (depth < 0) {
      throw new LadingError(
        `the symlink /${entry} points to '${linkname}', outside the image root`,
        'lading never writes links that leave the destination; request other paths or fix the image',
      );
    }
  }
  return linkname;
}

/** The target of a hard link (`linkname` of a tar entry), as an image path. */
export function hardLinkTarget(entry: string, linkname: string): string {
  const target = normalizeEntryPath(linkname, `the hard link /${entry}`);
  if (target === undefined) throw new LadingError(`the hard link /${entry} points to the image root`);
  return target;
}

/**
 * Joins an image path onto a destination directory, refusing anything that would leave it. `path` comes from
 * normalizeEntryPath, so this is a second line of defence.
 */
export function safeJoin(dest: string, path: string): string {
  const root = posix.resolve(dest);
  const joined = posix.resolve(root, path);
  if (joined !== root && !joined.startsWith(root.endsWith('/') ? root : `${root}/`)) {
    throw new LadingError(`the image path /${path} leaves the destination ${dest}`, 'the image is malformed');
  }
  return joined;
}

// ---------------------------------------------------------------------------------------------------------------
// Whiteouts and the top-down walk

export type Whiteout = { kind: 'opaque'; dir: string } | { kind: 'delete'; path: string };

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** An AUFS/OCI whiteout entry: `.wh.name` deletes `name`, `.wh..wh..opq` hides everything lower in its directory. */
export function whiteoutOf(path: string): Whiteout | undefined {
  const base = posix.basename(path);
  if (!base.startsWith(WH)) return undefined;
  const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
  if (base === OPAQUE) return { kind: 'opaque', dir };
  if (base.startsWith(`${WH}${WH}`)) return { kind: 'delete', path: '' }; // other AUFS metadata: nothing to delete
  const name = base.slice(WH.length);
  return { kind: 'delete', path: dir === '' ? name : `${dir}/${name}` };
}

export type EntryKind = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export type Decision =
  /** Not requested, hidden by an upper layer, or already provided by one. */
  | 'skip'
  /** A whiteout: recorded, nothing written. */
  | 'whiteout'
  /** Write it: it is requested and this layer provides the final version. */
  | 'write';

function ancestors(path: string): string[] {
  const out: string[] = [''];
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/**
 * The state of a top-down walk over an image's layers for a set of requested paths. Call `beginLayer`, `decide`
 * for each entry of the layer, `endLayer`; whiteouts of a layer hide only lower layers, so they take effect at
 * `endLayer`. `settled()` says when no lower layer can change any requested path (then the walk may stop).
 */
export class LayerWalk {
  /** Paths provided by upper layers (requested or on the way to a request): true for directories. */
  private readonly seen = new Map<string, boolean>();
  private readonly deleted = new Set<string>();
  private readonly opaque = new Set<string>();
  private pendingDeleted: string[] = [];
  private pendingOpaque: string[] = [];
  private thisLayer = new Map<string, boolean>();
  private readonly found = new Set<string>();

  constructor(readonly requests: string[]) {}

  beginLayer(): void {
    this.thisLayer = new Map();
    this.pendingDeleted = [];
    this.pendingOpaque = [];
  }

  private relevant(path: string): boolean {
    return this.requests.some((r) => isWithin(path, r) || isWithin(r, path));
  }

  /** Hidden by an upper layer: deleted itself or via an ancestor, under an opaque dir, or under a non-directory. */
  private hidden(path: string): boolean {
    if (this.deleted.has(path) && !this.seen.has(path)) return true;
    for (const a of ancestors(path)) {
      if (this.deleted.has(a) || this.opaque.has(a)) return true;
      if (a !== '' && this.seen.get(a) === false) return true;
    }
    return false;
  }

  decide(path: string, kind: EntryKind): Decision {
    const wh = whiteoutOf(path);
    if (wh) {
      if (wh.kind === 'opaque') this.pendingOpaque.push(wh.dir);
      else if (wh.path !== '') this.pendingDeleted.push(wh.path);
      return 'whiteout';
    }
    if (!this.relevant(path) || this.hidden(path)) return 'skip';
    const isDir = kind === 'directory';
    if (this.seen.has(path) && !this.thisLayer.has(path)) return 'skip';
    this.seen.set(path, isDir);
    this.thisLayer.set(path, isDir);
    if (!this.requests.some((r) => isWithin(path, r))) return 'skip'; // an ancestor of a request: tracked only
    for (const r of this.requests) if (isWithin(path, r)) this.found.add(r);
    return 'write';
  }

  endLayer(): void {
    // A path deleted and re-created in one layer keeps this layer's version (seen wins), but nothing lower.
    for (const p of this.pendingDeleted) this.deleted.add(p);
    for (const d of this.pendingOpaque) this.opaque.add(d);
  }

  /** True when no lower layer can add, change or remove anything under the requested paths. */
  settled(): boolean {
    return this.requests.every((r) => {
      if (r === '') return false;
      if (this.deleted.has(r) || this.hidden(r)) return true;
      const isDir = this.seen.get(r);
      if (isDir === false) return true;
      return isDir === true && this.opaque.has(r);
    });
  }

  /** Requests with nothing in the final image, each with why (deleted, under a symlink or file, absent). */
  missing(): Array<{ path: string; reason: string }> {
    const out: Array<{ path: string; reason: string }> = [];
    for (const r of this.requests) {
      if (this.found.has(r)) continue;
      const blocker = ancestors(r).find((a) => a !== '' && this.seen.get(a) === false);
      if (blocker !== undefined) {
        out.push({ path: r, reason: `/${blocker} is a file or symlink in the image, not a directory` });
      } else if (this.deleted.has(r) || ancestors(r).some((a) => this.deleted.has(a))) {
        out.push({ path: r, reason: 'it was deleted by a later layer' });
      } else out.push({ path: r, reason: 'no layer has it' });
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Platforms and image references

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** os/arch[/variant]; none given: the platform input's default (the table of inputs). */
export function parsePlatform(raw: string | undefined, input = 'platform'): Platform {
  const value = (raw ?? '').trim() || INPUTS.platform.default;
  const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(value);
  if (!m) throw new InputError(input, `'${value}' is not a platform`, 'write os/arch[/variant], like linux/amd64');
  return { os: m[1]!, architecture: m[2]!, ...(m[3] && { variant: m[3] }) };
}

export function formatPlatform(p: Partial<Platform>): string {
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: Partial<Platform> & { 'os.version'?: string };
  annotations?: Record<string, string>;
}

const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8' };

/**
 * The manifest of an index (OCI image index / Docker manifest list) for a platform. Attestation manifests
 * (unknown/unknown) never match. A requested variant must match (arm64 without variant means v8); a request
 * without a variant takes the first entry of the architecture.
 */
export function selectPlatform(entries: IndexEntry[], want: Platform): IndexEntry {
  const candidates = entries.filter(
    (e) =>
      e.platform?.os === want.os &&
      e.platform?.architecture === want.architecture &&
      e.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  const variantOf = (e: IndexEntry) => e.platform?.variant || DEFAULT_VARIANT[want.architecture];
  const wanted = want.variant ?? DEFAULT_VARIANT[want.architecture];
  const match = wanted ? candidates.find((e) => variantOf(e) === wanted) : candidates[0];
  if (match) return match;
  const available = entries
    .filter((e) => e.platform && e.platform.os !== 'unknown')
    .map((e) => formatPlatform(e.platform!));
  throw new LadingError(
    `the image has no manifest for ${formatPlatform(want)} (it has: ${available.join(', ') || 'none'})`,
    'set `platform` to one the image was built for',
  );
}

export interface ImageReference {
  host: string;
  repository: string;
  /** A tag or a digest. */
  reference: string;
  /** host/repository@digest or :tag, as logs show it. */
  display: string;
}

/** `host/repo:tag`, `host/repo@sha256:…`, `host/repo` (tag latest). */
export function parseImageReference(raw: string, input = 'image'): ImageReference {
  const value = raw.trim();
  if (value === '') throw new InputError(input, 'is empty');
  let name = value;
  let reference = 'latest';
  const at = value.indexOf('@');
  if (at !== -1) {
    name = value.slice(0, at);
    reference = value.slice(at + 1);
    if (!isDigest(reference)) throw new InputError(input, `'${reference}' is not a digest`);
    const colon = name.indexOf(':', name.lastIndexOf('/') + 1);
    if (colon !== -1) name = name.slice(0, colon); // name:tag@digest: the digest wins
  } else {
    const colon = value.indexOf(':', value.lastIndexOf('/') + 1);
    if (colon !== -1) {
      name = value.slice(0, colon);
      reference = value.slice(colon + 1);
    }
  }
  if (/\s/.test(value) || name === '') throw new InputError(input, `'${value}' is not an image reference`);
  const host = registryHostOf(name);
  const repository = repositoryOf(name);
  return {
    host,
    repository,
    reference,
    display: `${host}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Manifests

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

export interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
  urls?: string[];
}

export interface ImageManifest {
  config: Descriptor;
  layers: Descriptor[];
}

export function isIndex(mediaType: string, doc: Record<string, unknown>): boolean {
  if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList) return true;
  return Array.isArray(doc.manifests) && !('layers' in doc);
}

function descriptor(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (!d || typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number') {
    throw new LadingError(`the image manifest has an invalid ${where}`, 'the registry serves a malformed manifest');
  }
  return { digest: d.digest, size: d.size, mediaType: String(d.mediaType ?? ''), ...(d.urls && { urls: d.urls }) };
}

/** Config and layers of a Docker v2 schema 2 or OCI image manifest; schema 1 and other kinds are refused. */
export function parseImageManifest(mediaType: string, doc: Record<string, unknown>): ImageManifest {
  if (doc.schemaVersion === 1 || /distribution\.manifest\.v1\+(prettyjws|json)$/.test(mediaType)) {
    throw new LadingError(
      'the image uses the Docker v2 schema 1 manifest format, which lading does not read',
      'push the image again with a current docker or buildx (schema 2 / OCI)',
    );
  }
  if (!Array.isArray(doc.layers) || !doc.config) {
    throw new LadingError(`the manifest (${mediaType || 'unknown media type'}) is not an image manifest`);
  }
  return {
    config: descriptor(doc.config, 'config'),
    layers: doc.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
  };
}

/** Which entry of a lading manifest `wanted` names: an image id, a compose service, or the image name. */
export function findManifestImage<T extends { id: string; services: string[]; name: string }>(
  images: T[],
  wanted: string,
  input = 'image',
): T {
  const w = wanted.trim();
  const hit =
    images.find((i) => i.id === w) ?? images.find((i) => i.services.includes(w)) ?? images.find((i) => i.name === w);
  if (hit) return hit;
  if (w === '' && images.length === 1) return images[0]!;
  throw new InputError(
    input,
    w === '' ? 'the manifest has several images' : `the manifest has no image '${w}'`,
    `name one of: ${images.map((i) => i.id).join(', ')}`,
  );
}
