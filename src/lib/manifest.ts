import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schemaV1 from '../../schema/manifest.v1.json' with { type: 'json' };
import schemaV2 from '../../schema/manifest.v2.json' with { type: 'json' };
import schemaV3 from '../../schema/manifest.v3.json' with { type: 'json' };
import { LadingError } from './errors.ts';
import { registryHostOf } from './registry.ts';

/**
 * The deploy manifest: the one document the build hands to the deploy. Versioned (`schema`), validated against
 * schema/manifest.v1.json on write and on read, so a deploy refuses what it does not understand before it touches
 * any host.
 */
export const MANIFEST_SCHEMA = 'lading.manifest/v1';
/** v2: the compose bundle also carries the project's local files (assets) and the mount sources hosts must have. */
export const MANIFEST_SCHEMA_V2 = 'lading.manifest/v2';
/**
 * v3: compose-env is names only (compose.envNames); the deploy supplies the values. Written only when a manifest
 * names such variables, so an older deploy refuses it ("written by a newer lading") instead of running without them.
 */
export const MANIFEST_SCHEMA_V3 = 'lading.manifest/v3';
/** The newest version this lading reads (and writes when a manifest needs it); older ones are read too. */
export const MANIFEST_VERSION = 3;
const SCHEMAS = { 1: schemaV1, 2: schemaV2, 3: schemaV3 } as const;
type Version = keyof typeof SCHEMAS;

/** The variables lading itself puts in compose.env: the tag and each image's pinned reference. */
export const LADING_ENV_NAME = /^(DOCKER_TAG|LADING_IMAGE_[A-Z0-9_]+)$/;

export interface ManifestSource {
  repository: string;
  repositoryUrl?: string;
  ref: string;
  sha: string;
  branch?: string;
  tag?: string;
  pr?: number;
  /** Link to the CI run that built it. */
  run?: string;
  runId?: string;
  actor?: string;
  commitTime?: string;
  /** When the manifest was written (UTC ISO 8601). */
  created: string;
}

export type Compression = 'zstd' | 'gzip' | 'none';
export type StoreMode = 'archive' | 'layers';

export interface RegistryTransport {
  kind: 'registry';
  registry: string;
  provider: 'google' | 'ecr' | 'ecr-public' | 'ghcr' | 'dockerhub' | 'generic';
}
interface StoredObject {
  sha256: string;
  size: number;
  compression: Compression;
  mode: StoreMode;
  /** Key of the per-image layer index (layers mode). */
  index?: string;
}
export interface S3Transport extends StoredObject {
  kind: 's3';
  bucket: string;
  key: string;
  region?: string;
  endpoint?: string;
  aliases?: string[];
}
export interface GcsTransport extends StoredObject {
  kind: 'gcs';
  bucket: string;
  object: string;
  aliases?: string[];
}
export interface FileTransport extends StoredObject {
  kind: 'file';
  path: string;
}
export type Transport = RegistryTransport | S3Transport | GcsTransport | FileTransport;
export const TRANSPORT_KINDS: ReadonlyArray<Transport['kind']> = ['registry', 's3', 'gcs', 'file'];

export interface ManifestImage {
  id: string;
  /** Compose services that run this image. */
  services: string[];
  name: string;
  tags: string[];
  digest: string;
  /** name@digest. */
  ref: string;
  imageId?: string;
  platforms?: string[];
  size?: number;
  dependsOn?: string[];
  transport: Transport;
}

export interface ComposeFile {
  path: string;
  sha256: string;
  content: string;
}

/** A local file compose needs on the host (v2), laid out under the release directory at `path`. */
export interface ComposeAsset {
  /** Relative to the project directory (the directory of the first compose file), never absolute, no `..`. */
  path: string;
  kind: 'env' | 'env_file' | 'bind' | 'config' | 'secret' | 'dir' | 'compose';
  size: number;
  sha256: string;
  /** Permission bits on the host (0o600 for secrets and env files). */
  mode: number;
  /** base64; absent for a directory. */
  content?: string;
}

export interface ComposeBundle {
  project?: string;
  files: ComposeFile[];
  env: Record<string, string>;
  /** v2: the project directory, relative to the workspace. */
  projectDir?: string;
  /** v2 */
  assets?: ComposeAsset[];
  /** v2: bind-mount sources outside the project (absolute paths), checked on each host before anything changes. */
  external?: Array<{ path: string; service: string }>;
  /** v2 (pin-external): service → name@digest of its third-party image, resolved at manifest time. */
  pins?: Record<string, string>;
  /** v3 (compose-env): variables the deploy supplies; their values are never in the manifest. */
  envNames?: string[];
}

export interface Manifest {
  schema: typeof MANIFEST_SCHEMA | typeof MANIFEST_SCHEMA_V2 | typeof MANIFEST_SCHEMA_V3;
  source: ManifestSource;
  channel?: string;
  tags: string[];
  primary: string;
  images: ManifestImage[];
  compose?: ComposeBundle;
  [extension: `x-${string}`]: unknown;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const sha256Bytes = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export function composeFile(path: string, content: string): ComposeFile {
  return { path, sha256: sha256(content), content };
}

let ajv: Ajv | undefined;
function validatorFor(version: Version, ref = ''): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, strict: true });
    ajv.addSchema(schemaV1);
    ajv.addSchema(schemaV2);
    ajv.addSchema(schemaV3);
  }
  const v = ajv.getSchema(`${SCHEMAS[version].$id}${ref}`);
  if (!v) throw new Error(`no schema at ${ref}`);
  return v;
}

const HINT = 'write the manifest with lading (lading manifest, or the manifest step), and do not edit it by hand';

function describeErrors(errors: ErrorObject[], prefix = ''): string[] {
  return errors.map((e) => {
    const path = prefix + e.instancePath;
    const where =
      path
        .replace(/^\//, '')
        .replace(/\/(\d+)(?=\/|$)/g, '[$1]')
        .replace(/\//g, '.') || '(top level)';
    switch (e.keyword) {
      case 'required':
        return `${where}: ${e.params.missingProperty} is missing`;
      case 'additionalProperties':
        return `${where}: unknown field '${e.params.additionalProperty}'`;
      case 'const':
        return `${where}: must be ${JSON.stringify(e.params.allowedValue)}`;
      case 'enum':
        return `${where}: must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
      default:
        return `${where}: ${e.message}`;
    }
  });
}

/** Schema problems; a transport is checked against its own kind's schema, so errors are about that kind only. */
function schemaProblems(data: unknown, version: Version): string[] {
  const validate = validatorFor(version);
  if (validate(data)) return [];
  const out: string[] = [];
  const transports = new Set<number>();
  for (const e of validate.errors ?? []) {
    const m = /^\/images\/(\d+)\/transport(\/|$)/.exec(e.instancePath);
    if (m) transports.add(Number(m[1]));
    else out.push(...describeErrors([e]));
  }
  const images = (data as { images?: Array<{ transport?: { kind?: unknown } }> }).images ?? [];
  for (const i of transports) {
    const transport = images[i]?.transport;
    const kind = transport?.kind;
    if (typeof kind !== 'string' || !TRANSPORT_KINDS.includes(kind as Transport['kind'])) {
      out.push(
        `images[${i}].transport.kind: ${JSON.stringify(kind ?? null)} is not one of ${TRANSPORT_KINDS.join(', ')}`,
      );
      continue;
    }
    const v = validatorFor(version, `#/definitions/${kind}Transport`);
    if (!v(transport)) out.push(...describeErrors(v.errors ?? [], `/images/${i}/transport`));
  }
  return [...new Set(out)];
}

/** Checks a parsed document and returns it typed, or throws one LadingError listing every problem. */
export function validateManifest(data: unknown, source = 'the manifest'): Manifest {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new LadingError(`${source} is not a JSON object`, HINT);
  }
  const version = (data as { schema?: unknown }).schema;
  const m = typeof version === 'string' ? /^lading\.manifest\/v(\d+)$/.exec(version) : null;
  if (!m) {
    throw new LadingError(
      `${source} is not a lading manifest (schema is ${JSON.stringify(version ?? null)}, expected "${MANIFEST_SCHEMA}")`,
      HINT,
    );
  }
  if (Number(m[1]) > MANIFEST_VERSION || Number(m[1]) < 1) {
    throw new LadingError(
      `${source} is ${version}, written by a newer lading; this lading reads ${MANIFEST_SCHEMA} to ${MANIFEST_SCHEMA_V3}`,
      `upgrade lading (the deploy side) to a version that reads v${m[1]}`,
    );
  }
  const problems = schemaProblems(data, Number(m[1]) as Version);
  if (problems.length === 0) {
    const manifest = data as Manifest;
    const ids = new Set<string>();
    manifest.images.forEach((img, i) => {
      // Registry images are pinned by name@digest; registry-less ones (loaded, never pulled) by their image ID.
      if (img.transport.kind === 'registry' && img.ref !== `${img.name}@${img.digest}`)
        problems.push(`images[${i}].ref: must be name@digest (${img.name}@${img.digest})`);
      if (
        img.transport.kind === 'registry' &&
        img.transport.registry.toLowerCase() !== registryHostOf(img.name).toLowerCase()
      )
        problems.push(
          `images[${i}].transport.registry: '${img.transport.registry}' is not the registry of ${img.name} (${registryHostOf(img.name)})`,
        );
      if (img.transport.kind !== 'registry' && img.ref !== img.digest)
        problems.push(`images[${i}].ref: must be the image ID ${img.digest} for a ${img.transport.kind} transport`);
      if (ids.has(img.id)) problems.push(`images[${i}].id: '${img.id}' is used twice`);
      ids.add(img.id);
    });
    if (manifest.tags[0] !== manifest.primary)
      problems.push(`primary: must be the first of tags (${manifest.tags[0]})`);
    manifest.compose?.files.forEach((f, i) => {
      if (sha256(f.content) !== f.sha256)
        problems.push(`compose.files[${i}].sha256: does not match the content of ${f.path}`);
    });
    const paths = new Set<string>();
    manifest.compose?.assets?.forEach((a, i) => {
      if (paths.has(a.path)) problems.push(`compose.assets[${i}].path: '${a.path}' is listed twice`);
      paths.add(a.path);
      if (a.kind === 'dir') return;
      const bytes = Buffer.from(a.content ?? '', 'base64');
      if (a.content === undefined) problems.push(`compose.assets[${i}].content: is missing (${a.path})`);
      else if (bytes.length !== a.size || sha256Bytes(bytes) !== a.sha256)
        problems.push(`compose.assets[${i}]: size or sha256 does not match the content of ${a.path}`);
    });
  }
  if (problems.length > 0) {
    throw new LadingError(`${source} is not a valid ${version}:\n  ${problems.join('\n  ')}`, HINT);
  }
  return data as Manifest;
}

export function parseManifest(text: string, source = 'the manifest'): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new LadingError(`${source} is not JSON: ${(err as Error).message}`, HINT);
  }
  return validateManifest(data, source);
}

const ORDER = ['schema', 'source', 'channel', 'tags', 'primary', 'images', 'compose'];

/** Validates (write-side) and renders the manifest as stable, pretty JSON with a trailing newline. */
export function serializeManifest(manifest: Manifest): string {
  validateManifest(manifest, 'the manifest being written');
  const keys = [
    ...ORDER.filter((k) => k in manifest),
    ...Object.keys(manifest)
      .filter((k) => !ORDER.includes(k))
      .sort(),
  ];
  const ordered = Object.fromEntries(keys.map((k) => [k, (manifest as unknown as Record<string, unknown>)[k]]));
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

export function createManifest(args: {
  source: ManifestSource;
  tags: string[];
  primary: string;
  channel?: string;
  images: ManifestImage[];
  compose?: ComposeBundle;
}): Manifest {
  const v2 = args.compose?.assets !== undefined || args.compose?.external !== undefined || !!args.compose?.pins;
  const v3 = !!args.compose?.envNames?.length;
  const manifest: Manifest = {
    schema: v3 ? MANIFEST_SCHEMA_V3 : v2 ? MANIFEST_SCHEMA_V2 : MANIFEST_SCHEMA,
    source: args.source,
    tags: args.tags,
    primary: args.primary,
    images: args.images,
  };
  if (args.channel) manifest.channel = args.channel;
  if (args.compose) manifest.compose = args.compose;
  return validateManifest(manifest, 'the manifest being written');
}

/**
 * The compose.env values a manifest of the older shape (v1/v2) carries besides lading's own: compose-env values an
 * older lading wrote into the manifest. A deploy still uses them (with a warning) so older releases stay deployable;
 * v3 manifests cannot carry any (schema).
 */
export function legacyEnvValues(manifest: Manifest): string[] {
  return Object.keys(manifest.compose?.env ?? {}).filter((k) => !LADING_ENV_NAME.test(k));
}

/** The warning a deploy prints for a manifest of the older shape that carries compose-env values (none: undefined). */
export function legacyEnvWarning(manifest: Manifest): string | undefined {
  const legacy = legacyEnvValues(manifest);
  if (legacy.length === 0) return undefined;
  return (
    `the manifest carries the values of ${legacy.join(', ')} (compose-env, written by an older lading): they are used, ` +
    'but anyone who can read the manifest reads them. Write manifests with this lading (compose-env keeps only the ' +
    'names) and give the values to the deploy (compose-env / compose-env-file), which override these.'
  );
}
