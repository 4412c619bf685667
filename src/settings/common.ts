import { DEFAULT_MANIFEST_MAX_BYTES } from '../io/manifest-fetch.ts';
import type { ManifestReadOptions } from '../io/manifest-source.ts';
import type { StoreOptions } from '../io/store.ts';
import { InputError } from '../lib/errors.ts';
import { readInputs, type InputReader } from '../lib/input-values.ts';
import { parseSize } from '../lib/inputs.ts';
import { parseProviderOverrides } from '../lib/registry.ts';
import type { RegistryAccess } from '../stages/stale.ts';

/** Registry access shared by push, stale, newest, extract and deploy. */
export type RegistrySettings = RegistryAccess;

/** username/password (both or neither), Google credentials, AWS region, provider overrides, plain-HTTP hosts. */
export function parseRegistrySettings(read: InputReader): RegistrySettings {
  const auth = parseRegistryAuth(read);
  const v = readInputs(read, ['registry-providers', 'insecure-registries']);
  return {
    auth,
    overrides: parseProviderOverrides(v['registry-providers'].join('\n')),
    insecure: v['insecure-registries'],
  };
}

/** The registry credentials: username/password (both or neither), Google credentials, AWS region. */
export function parseRegistryAuth(read: InputReader): RegistrySettings['auth'] {
  const v = readInputs(read, ['username', 'password', 'google-credentials', 'aws-region']);
  if (!!v.username !== !!v.password) {
    throw new InputError(
      v.username ? 'password' : 'username',
      'is empty while the other one is set',
      'give both, or neither',
    );
  }
  const auth: RegistrySettings['auth'] = {};
  if (v.username) auth.username = v.username;
  if (v.password) auth.password = v.password;
  if (v['google-credentials']) auth.googleCredentials = v['google-credentials'];
  if (v['aws-region']) auth.awsRegion = v['aws-region'];
  return auth;
}

/** Registry logins for build and push: the registry settings plus ghcr.io's github-token. */
export function parseRegistryLogin(read: InputReader): RegistrySettings {
  const r = parseRegistrySettings(read);
  const token = readInputs(read, ['registry-github-token'])['registry-github-token'];
  if (token) r.auth.githubToken = token;
  return r;
}

/** The store endpoint inputs every registry-less stage shares (export, load, extract, deploy, retention). */
export function parseStoreOptions(read: InputReader): StoreOptions {
  const v = readInputs(read, ['s3-endpoint', 's3-region', 's3-path-style', 'gcs-endpoint', 'upload-concurrency']);
  const o: StoreOptions = {};
  const endpoint = url('s3-endpoint', v['s3-endpoint'], 'https://<account>.r2.cloudflarestorage.com');
  if (endpoint) o.endpoint = endpoint;
  if (v['s3-region']) o.region = v['s3-region'];
  if (v['s3-path-style'] !== undefined) o.forcePathStyle = v['s3-path-style'];
  const gcs = url('gcs-endpoint', v['gcs-endpoint'], 'https://storage.example.com (an emulator or private endpoint)');
  if (gcs) o.gcsEndpoint = gcs;
  o.concurrency = v['upload-concurrency'];
  return o;
}

function url(name: string, v: string | undefined, example: string): string | undefined {
  if (v && !/^https?:\/\/\S+$/.test(v)) throw new InputError(name, `'${v}' is not a URL`, `write e.g. ${example}`);
  return v || undefined;
}

/** The manifest-max-size and manifest-secret inputs: the limits on reading a manifest (deploy, extract). */
export function readManifestLimits(read: InputReader): Pick<ManifestReadOptions, 'maxBytes' | 'secret'> {
  const v = readInputs(read, ['manifest-max-size', 'manifest-secret']);
  return {
    maxBytes: parseSize('manifest-max-size', v['manifest-max-size'], DEFAULT_MANIFEST_MAX_BYTES),
    ...(v['manifest-secret'] && { secret: v['manifest-secret'] }),
  };
}
