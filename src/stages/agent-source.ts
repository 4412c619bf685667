import { readFileSync } from 'node:fs';
import { fetchText } from '../io/manifest-fetch.ts';
import { signatureAt, storeSignature } from '../io/manifest-source.ts';
import { openStore, type ObjectStore, type StoreOptions } from '../io/store.ts';
import { credentialFor } from '../io/registry-auth.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { type AgentConfig, MANIFEST_ARTIFACT_TYPE } from '../lib/agent-config.ts';
import { detectProvider, parseProviderOverrides } from '../lib/registry.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { verifyManifestSignature } from '../lib/manifest-signature.ts';
import { type ObjectLocation, parseObjectLocation, shownUrl } from '../lib/store-location.ts';
import type { Reporter } from '../io/reporter.ts';

/**
 * Where the pull-mode agent reads manifests: the channel manifest as published (a store object, an https URL or an
 * OCI artifact, each checked by a cheap version first), and a manifest a webhook names by location.
 */

/** A changed manifest comes with its detached signature when the agent requires one (manifest.secret-*). */
type Check = { changed: false } | { changed: true; text: string; version?: string; signature?: string };

/** The secret in the file or env var a config section names (`<p>secret-file` / `<p>secret-env`), one trailing
 * newline dropped; `key` names the config key in errors. */
export function readSecretSource(
  src: { secretFile?: string; secretEnv?: string },
  p: string,
  env: NodeJS.ProcessEnv,
): { key: string; secret: string | undefined } {
  const key = `${p}${src.secretFile ? 'secret-file' : 'secret-env'}`;
  if (!src.secretFile) return { key, secret: env[src.secretEnv!]?.replace(/\r?\n$/, '') };
  try {
    return { key, secret: readFileSync(src.secretFile, 'utf8').replace(/\r?\n$/, '') };
  } catch (err) {
    throw new InputError(key, `cannot read ${src.secretFile} (${(err as NodeJS.ErrnoException).code})`);
  }
}

/**
 * manifest.secret-file / manifest.secret-env: the manifest-secret every manifest this agent deploys must be signed
 * with (undefined when none is configured). Configured but empty is an error, never "no check".
 */
export function readManifestSecret(cfg: AgentConfig, env: NodeJS.ProcessEnv): string | undefined {
  const m = cfg.manifest;
  if (!m.secretFile && !m.secretEnv) return undefined;
  const { key, secret } = readSecretSource(m, 'manifest.', env);
  if (!secret) {
    throw new InputError(
      key,
      'holds no secret',
      'give the manifest-secret the manifest step signs with (a file only the agent reads, or an env var)',
    );
  }
  return secret;
}

/**
 * A fetched manifest as the agent takes it: with a manifest secret, its detached signature must match the exact
 * bytes first (a manifest in a bucket others can write cannot take the host over); then parsed and validated.
 */
export function checkedManifest(
  text: string,
  signature: string | undefined,
  source: string,
  secret: string | undefined,
): Manifest {
  if (secret) verifyManifestSignature(text, signature, secret, source);
  return parseManifest(text, source);
}

const signed = (cfg: AgentConfig) => !!(cfg.manifest.secretFile || cfg.manifest.secretEnv);

/** The channel manifest as published: checked by version (ETag / generation / mtime), read only when it changed. */
export interface ChannelSource {
  readonly describe: string;
  check(lastVersion: string | undefined): Promise<Check>;
}

function storeOptions(cfg: AgentConfig): StoreOptions {
  const m = cfg.manifest;
  const o: StoreOptions = {};
  if (m.region) o.region = m.region;
  if (m.endpoint) o.endpoint = m.endpoint;
  if (m.forcePathStyle !== undefined) o.forcePathStyle = m.forcePathStyle;
  if (m.gcsEndpoint) o.gcsEndpoint = m.gcsEndpoint;
  return o;
}

export async function storeFor(location: ObjectLocation, cfg: AgentConfig): Promise<ObjectStore> {
  if (location.kind === 'https') throw new Error('not a store location');
  return openStore({ kind: location.kind, bucket: location.bucket, prefix: '' }, storeOptions(cfg));
}

/**
 * A registry client for `host`, logged in with the agent's registry settings (env vars, key file, region); the
 * username/password only when `host` is registry.host, as for the agent's deploys (agent-deploy.ts).
 */
export async function agentRegistryClient(
  cfg: AgentConfig,
  host: string,
  reporter?: Reporter,
): Promise<RegistryClient> {
  const env = process.env;
  const username = cfg.registry.usernameEnv ? env[cfg.registry.usernameEnv] : undefined;
  const password = cfg.registry.passwordEnv ? env[cfg.registry.passwordEnv] : undefined;
  const provider = detectProvider(host, parseProviderOverrides(cfg.registry.providers.join('\n')));
  const googleCredentials = cfg.registry.googleCredentialsFile
    ? readFileSync(cfg.registry.googleCredentialsFile, 'utf8')
    : undefined;
  const credential = await credentialFor(host, provider, {
    ...(username && password ? { username, password } : {}),
    // The login is for registry.host only: a release's manifest names the host of a re-pin, and must not collect it.
    ...(cfg.registry.host ? { registry: cfg.registry.host } : {}),
    hostsFromManifest: true,
    ...(googleCredentials ? { googleCredentials } : {}),
    ...(cfg.registry.awsRegion ? { awsRegion: cfg.registry.awsRegion } : {}),
    mask: reporter?.secret ?? (() => {}),
  });
  return new RegistryClient(host, credential ? { credential } : {});
}

/** The manifest as an OCI artifact: the tag's digest is the version; the lading manifest is its layer. */
async function registrySource(cfg: AgentConfig, reporter?: Reporter): Promise<ChannelSource> {
  const r = cfg.manifest.registry!;
  const client = await agentRegistryClient(cfg, r.host, reporter);
  return {
    describe: r.ref,
    async check(last) {
      const { digest } = await client.manifestDigest(r.repository, r.tag);
      if (digest === last) return { changed: false };
      const doc = await client.manifest(r.repository, digest);
      const layers = (doc.manifest.layers ?? []) as Array<{ mediaType?: string; digest: string; size?: number }>;
      const layer = layers.find((l) => l.mediaType === MANIFEST_ARTIFACT_TYPE);
      if (!layer) {
        throw new LadingError(
          `${r.ref} is not a lading manifest artifact (no ${MANIFEST_ARTIFACT_TYPE} layer)`,
          'point manifest.registry at the tag the build publishes the manifest to',
        );
      }
      const chunks: Buffer[] = [];
      for await (const c of await client.blob(r.repository, layer.digest, layer.size ? { size: layer.size } : {}))
        chunks.push(c as Buffer);
      return { changed: true, text: Buffer.concat(chunks).toString('utf8'), version: digest };
    },
  };
}

export async function channelSource(cfg: AgentConfig, reporter?: Reporter): Promise<ChannelSource> {
  if (cfg.manifest.registry) return registrySource(cfg, reporter);
  const loc = cfg.manifest.location!;
  if (loc.kind === 'https') {
    const url = loc.key;
    const shown = shownUrl(url);
    return {
      describe: shown,
      async check(last) {
        const res = await fetchText(url, { headers: last ? { 'If-None-Match': last } : {} });
        if (res.status === 304) return { changed: false };
        if (res.status === 404) {
          throw new LadingError(`${shown} does not exist (yet)`, 'the build publishes it; check the URL and channel');
        }
        if (res.status !== 200) throw new LadingError(`${shown} answered HTTP ${res.status}`);
        const version = res.etag;
        const text = res.text;
        if (version && version === last) return { changed: false };
        const signature = signed(cfg) ? await signatureAt(res.url) : undefined;
        return { changed: true, text, ...(version ? { version } : {}), ...(signature ? { signature } : {}) };
      },
    };
  }
  const store = await storeFor(loc, cfg);
  const key = loc.key;
  return {
    describe: store.url(key),
    async check(last) {
      const info = await store.head(key);
      if (!info) {
        throw new LadingError(
          `${store.url(key)} does not exist (yet)`,
          'the build publishes it; check the store and channel',
        );
      }
      if (info.version && info.version === last) return { changed: false };
      const { text, version } = await store.getText(key);
      const signature = signed(cfg) ? await storeSignature(store, key) : undefined;
      return {
        changed: true,
        text,
        ...((version ?? info.version) ? { version: version ?? info.version } : {}),
        ...(signature ? { signature } : {}),
      };
    },
  };
}

/**
 * A manifest a webhook names by location: the configured store's bucket, or an https URL. With a manifest secret,
 * its detached signature beside it must match.
 */
export async function fetchLocation(cfg: AgentConfig, raw: string, secret?: string): Promise<Manifest> {
  const loc = parseObjectLocation('location', raw);
  if (loc.kind === 'https') {
    const res = await fetchText(loc.key);
    if (res.status !== 200) throw new LadingError(`${shownUrl(loc.key)} answered HTTP ${res.status}`);
    const signature = secret ? await signatureAt(res.url) : undefined;
    return checkedManifest(res.text, signature, shownUrl(loc.key), secret);
  }
  const mine = cfg.manifest.location;
  if (!mine || mine.kind === 'https') {
    throw new InputError(
      'location',
      `'${raw}' is a store location, and this agent reads no store`,
      'send the manifest inline',
    );
  }
  // The whole configured store prefix, not just its bucket; no `.` or `..` segment to climb out of it.
  const folder = cfg.manifest.store;
  const prefix = folder ? (folder.kind === 'file' ? `${folder.bucket.replace(/\/+$/, '')}/` : folder.prefix) : '';
  const where = folder
    ? folder.kind === 'file'
      ? prefix
      : `${folder.kind}://${folder.bucket}/${prefix}`
    : `${mine.kind}://${mine.bucket}`;
  const inside =
    mine.kind === loc.kind &&
    (loc.kind === 'file' || mine.bucket === loc.bucket) &&
    loc.key.startsWith(prefix) &&
    !loc.key.split('/').some((s) => s === '.' || s === '..');
  if (!inside) {
    throw new InputError('location', `'${raw}' is outside the store this agent reads (${where})`);
  }
  const store = await storeFor(loc, cfg);
  const { text } = await store.getText(loc.key);
  const signature = secret ? await storeSignature(store, loc.key) : undefined;
  return checkedManifest(text, signature, store.url(loc.key), secret);
}
