import { InputError } from './errors.ts';
import { parseList } from './inputs.ts';
import { isLoopbackHost } from './store-location.ts';

/**
 * Registry recognition, pure: which kind of registry a host is (it decides how lading gets short-lived
 * credentials), where its API lives, which hosts speak plain HTTP, and the bits of the v2 API protocol
 * (Accept header, WWW-Authenticate challenges) the registry client needs.
 */

export type RegistryProvider = 'google' | 'ecr' | 'ecr-public' | 'ghcr' | 'dockerhub' | 'generic';

export const REGISTRY_PROVIDERS: readonly RegistryProvider[] = [
  'google',
  'ecr',
  'ecr-public',
  'ghcr',
  'dockerhub',
  'generic',
];

/** Docker Hub, as image names imply it (`app`, `acme/app`, `docker.io/acme/app`). */
export const DOCKER_HUB = 'docker.io';

/** The first path component is a registry host when it looks like one (distribution's rule). */
function splitHost(imageName: string): { host: string; rest: string } {
  const slash = imageName.indexOf('/');
  if (slash === -1) return { host: '', rest: imageName };
  const first = imageName.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return { host: first, rest: imageName.slice(slash + 1) };
  }
  return { host: '', rest: imageName };
}

function normaliseHubHost(host: string): string {
  const lower = host.toLowerCase();
  return lower === 'index.docker.io' || lower === 'registry-1.docker.io' || lower === DOCKER_HUB ? DOCKER_HUB : host;
}

/** The registry host (with port) of an image name; `docker.io` for Docker Hub names like `app` or `acme/app`. */
export function registryHostOf(imageName: string): string {
  const { host } = splitHost(imageName.trim());
  return host === '' ? DOCKER_HUB : normaliseHubHost(host);
}

/**
 * The repository path of an image name inside its registry, without tag or digest: `acme/app` for
 * `ghcr.io/acme/app:1`, and `library/app` for the Docker Hub short form `app`.
 */
export function repositoryOf(imageName: string): string {
  const { host, rest } = splitHost(imageName.trim());
  let path = rest;
  const at = path.indexOf('@');
  if (at !== -1) path = path.slice(0, at);
  const lastSlash = path.lastIndexOf('/');
  const colon = path.indexOf(':', lastSlash + 1);
  if (colon !== -1) path = path.slice(0, colon);
  const hub = host === '' || normaliseHubHost(host) === DOCKER_HUB;
  return hub && !path.includes('/') ? `library/${path}` : path;
}

/** The host that serves the v2 API for a registry host (Docker Hub's API is not on docker.io). */
export function registryApiHost(host: string): string {
  return normaliseHubHost(host) === DOCKER_HUB ? 'registry-1.docker.io' : host;
}

// The shapes amazon-ecr-credential-helper recognises, plus the dual-stack `dkr-ecr.<region>.on.aws` endpoints.
const ECR_RE =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-z0-9][a-z0-9-]*)\.(amazonaws\.com(?:\.cn)?|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;
const GOOGLE_RE = /^(?:(?:[a-z0-9-]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev)$/;

/**
 * The kind of registry a host is. `overrides` (host → provider) win, so a proxy or a test registry can be
 * treated as, say, ECR (`127.0.0.1:5001=ecr`).
 */
export function detectProvider(host: string, overrides: Record<string, RegistryProvider> = {}): RegistryProvider {
  const lower = host.trim().toLowerCase();
  for (const [key, provider] of Object.entries(overrides)) {
    if (key.trim().toLowerCase() === lower) return provider;
  }
  if (GOOGLE_RE.test(lower)) return 'google';
  if (ECR_RE.test(lower)) return 'ecr';
  if (lower === 'public.ecr.aws') return 'ecr-public';
  if (lower === 'ghcr.io') return 'ghcr';
  if (normaliseHubHost(lower) === DOCKER_HUB) return 'dockerhub';
  return 'generic';
}

/**
 * The keys a docker config.json may file a registry's login under (`auths`, `credHelpers`), most specific first:
 * Docker Hub logins live under `https://index.docker.io/v1/`; others under the host, sometimes with a scheme.
 */
export function dockerConfigKeys(host: string): string[] {
  const h = host.trim().toLowerCase();
  if (normaliseHubHost(h) === DOCKER_HUB)
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [h, `https://${h}`, `http://${h}`, `https://${h}/v1/`, `https://${h}/v2/`];
}

/** The server URL a credential helper is asked about (`docker-credential-X get` reads it on stdin). */
export function credentialHelperServer(host: string): string {
  return normaliseHubHost(host.trim().toLowerCase()) === DOCKER_HUB ? 'https://index.docker.io/v1/' : host.trim();
}

/** The AWS region of an ECR registry host (`eu-west-1` for `1234….dkr.ecr.eu-west-1.amazonaws.com`). */
export function ecrRegionOf(host: string): string | undefined {
  return ECR_RE.exec(host.trim().toLowerCase())?.[3];
}

/** The AWS account id (registry id) of an ECR registry host. */
export function ecrAccountOf(host: string): string | undefined {
  return ECR_RE.exec(host.trim().toLowerCase())?.[1];
}

/**
 * Registry provider overrides as the `registry-providers` input carries them: `host=provider` one per line or
 * comma separated. The host may have a port (`127.0.0.1:5001=ecr`), so the pair splits on the last `=`.
 */
export function parseProviderOverrides(
  raw: string | undefined,
  input = 'registry-providers',
): Record<string, RegistryProvider> {
  const out: Record<string, RegistryProvider> = {};
  for (const item of parseList(raw)) {
    const eq = item.lastIndexOf('=');
    const host = eq === -1 ? '' : item.slice(0, eq).trim().toLowerCase();
    const provider = eq === -1 ? '' : item.slice(eq + 1).trim();
    if (host === '' || host.includes('/')) {
      throw new InputError(
        input,
        `'${item}' is not a host=provider pair`,
        'write one per line, like 127.0.0.1:5001=ecr',
      );
    }
    if (!(REGISTRY_PROVIDERS as readonly string[]).includes(provider)) {
      throw new InputError(
        input,
        `'${provider}' is not a registry provider (in '${item}')`,
        `use one of: ${REGISTRY_PROVIDERS.join(', ')}`,
      );
    }
    out[host] = provider as RegistryProvider;
  }
  return out;
}

function hostname(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colons = h.split(':').length - 1;
  if (colons === 1) return h.slice(0, h.indexOf(':'));
  return colons > 1 ? `[${h}]` : h; // a bare IPv6 address
}

/**
 * Whether lading talks plain HTTP to a registry host: loopback (localhost, 127.0.0.0/8, [::1]) — what dockerd
 * allows without configuration — and the hosts listed in `insecure` (`host:port` exactly, or a host name for
 * any port).
 */
export function isInsecureHost(host: string, insecure: string[] = []): boolean {
  const h = host.trim().toLowerCase();
  const name = hostname(h);
  if (isLoopbackHost(name)) return true;
  return insecure.some((entry) => {
    const e = entry
      .trim()
      .toLowerCase()
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '');
    if (e === '') return false;
    return e === h || e === name;
  });
}

/** Manifest media types lading asks a registry for, most specific first: an index stays an index. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/** The Accept header for manifest requests; without the index types a registry may answer with one platform. */
export const manifestAcceptHeader = MANIFEST_MEDIA_TYPES.join(', ');

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$/;

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export interface AuthChallenge {
  scheme: 'basic' | 'bearer';
  realm?: string;
  service?: string;
  scope?: string;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235), e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"`.
 * Quoted values may contain commas. With several challenges, Bearer is preferred; unknown schemes give undefined.
 */
export function parseAuthChallenge(wwwAuthenticate: string): AuthChallenge | undefined {
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let ignoring = false;
  const re =
    /\s*,?\s*(?:([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))|([A-Za-z][A-Za-z0-9-]*)(?=\s|$|,))/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < wwwAuthenticate.length && (m = re.exec(wwwAuthenticate)) !== null) {
    if (m[0] === '') break;
    pos = re.lastIndex;
    if (m[4] !== undefined) {
      const scheme = m[4].toLowerCase();
      if (scheme === 'basic' || scheme === 'bearer') {
        current = { scheme };
        challenges.push(current);
        ignoring = false;
      } else {
        current = undefined;
        ignoring = true;
      }
      continue;
    }
    if (!current || ignoring) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
    if (key === 'realm' || key === 'service' || key === 'scope') current[key] = value;
  }
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges[0];
}

/** The token scope a pull of `repository` needs. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}
