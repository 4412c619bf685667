import { timingSafeEqual } from 'node:crypto';
import { header, type Headers, isSignatureHeader, signatureMatches } from './webhook.ts';

/**
 * Registries' own push webhooks, read by the pull-mode agent: Docker Hub, distribution's notifications (also the
 * format of GitLab's container registry), Harbor's webhook policies, and GitHub's `registry_package` events. Each is
 * authenticated its own way (constant-time comparisons throughout), then reduced to the images pushed: repository,
 * tag and/or digest. What to deploy for them is the agent's business (agent-image-events.ts).
 *
 * - dockerhub: Docker Hub signs nothing. The webhook URL carries a long random token as its last path segment
 *   (`/hooks/dockerhub/<token>`), compared in constant time. Payload: `push_data.tag`, `repository.repo_name`
 *   (no digest) and a `callback_url` to report the outcome to.
 * - distribution: `{"events": [{action, target: {mediaType, digest, repository, tag}, request: {host}}]}`; the
 *   registry sends the `Authorization` header configured in its `notifications.endpoints[].headers`. Only `push`
 *   events of manifests count (layer pushes are ignored).
 * - harbor: `{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{digest, tag, resource_url}], "repository":
 *   {"repo_full_name"}}}`; Harbor sends the policy's "Auth Header" as `Authorization`.
 * - github: `X-GitHub-Event: registry_package`, `action: published`, `registry_package.package_version
 *   .container_metadata.tag.{name,digest}`, signed with `X-Hub-Signature-256` (HMAC-SHA256 of the body). GitHub signs
 *   no timestamp: replays are refused by `X-GitHub-Delivery`, and the agent never deploys one manifest twice.
 */

export type RegistryKind = 'dockerhub' | 'distribution' | 'harbor' | 'github';
export const REGISTRY_KINDS: readonly RegistryKind[] = ['dockerhub', 'distribution', 'harbor', 'github'];

/** One image a registry says was pushed. `repository` is the path inside the registry (`acme/web`). */
export interface ImagePush {
  repository: string;
  tag?: string;
  digest?: string;
  /** The registry host when the payload names it. */
  host?: string;
  /** Unix seconds of the push (Docker Hub, which names no digest: a manifest written before it is not this push's). */
  pushedAt?: number;
}

export type Authenticated = { ok: true } | { ok: false; status: 401; reason: string };

/** Constant-time equality of two strings (the time depends on the expected length only). */
export function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  // Compare against a same-length buffer either way, so a wrong length costs as much as a wrong byte.
  const ok = timingSafeEqual(a, b.length === a.length ? b : Buffer.alloc(a.length));
  return ok && b.length === a.length;
}

/**
 * Authenticates a request for one configured registry endpoint. `pathToken` is the path segment after the
 * endpoint's path (Docker Hub's token); `secret` is the token, the whole Authorization header value, or the GitHub
 * webhook secret, by kind.
 */
export function authenticate(
  kind: RegistryKind,
  secret: string,
  req: { headers: Headers; body: Buffer; pathToken?: string },
): Authenticated {
  const no = (reason: string): Authenticated => ({ ok: false, status: 401, reason });
  switch (kind) {
    case 'dockerhub':
      if (!req.pathToken) return no('no token in the URL path');
      return sameSecret(secret, req.pathToken) ? { ok: true } : no('the token in the URL path does not match');
    case 'distribution':
    case 'harbor': {
      const given = header(req.headers, 'authorization');
      if (!given) return no('no Authorization header');
      return sameSecret(secret, given.trim()) ? { ok: true } : no('the Authorization header does not match');
    }
    case 'github': {
      const given = header(req.headers, 'x-hub-signature-256');
      if (!given) return no('no X-Hub-Signature-256 header');
      if (!isSignatureHeader(given)) return no('the signature is not sha256=<64 hex>');
      return signatureMatches(secret, req.body, given) ? { ok: true } : no('the signature does not match');
    }
  }
}

/** What a payload says: the images pushed, or why there is nothing to do (a pull, a layer, a deletion …). */
export type Parsed =
  { ok: true; pushes: ImagePush[]; ignored: string[]; callbackUrl?: string } | { ok: false; reason: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const HOST_RE = /^[A-Za-z0-9.-]+(?::\d{1,5})?$/;

/** Keeps only well-formed names: a payload is untrusted input, whatever authenticated it. */
function push(repository: unknown, tag: unknown, digest: unknown, host?: unknown): ImagePush | string {
  const r = str(repository);
  if (!r || r.length > 255 || !REPO_RE.test(r)) return `'${String(repository).slice(0, 80)}' is not a repository`;
  const p: ImagePush = { repository: r };
  const t = str(tag);
  if (t !== undefined) {
    if (!TAG_RE.test(t)) return `'${t.slice(0, 80)}' is not a tag`;
    p.tag = t;
  }
  const d = str(digest);
  if (d !== undefined) {
    if (!DIGEST_RE.test(d)) return `'${d.slice(0, 80)}' is not a sha256 digest`;
    p.digest = d;
  }
  const h = str(host);
  if (h !== undefined && HOST_RE.test(h)) p.host = h.toLowerCase();
  if (!p.tag && !p.digest) return `${r}: neither a tag nor a digest`;
  return p;
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];

function parseJson(body: Buffer): Obj | string {
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  return isObj(data) ? data : 'the body is not a JSON object';
}

/** Parses an authenticated payload of `kind` into the images pushed. Never throws. */
export function parseRegistryEvent(kind: RegistryKind, body: Buffer, headers: Headers = {}): Parsed {
  const data = parseJson(body);
  if (typeof data === 'string') return { ok: false, reason: data };
  const pushes: ImagePush[] = [];
  const ignored: string[] = [];
  const add = (p: ImagePush | string) => (typeof p === 'string' ? ignored.push(p) : pushes.push(p));
  switch (kind) {
    case 'dockerhub': {
      const repo = isObj(data.repository) ? data.repository : undefined;
      const pd = isObj(data.push_data) ? data.push_data : undefined;
      if (!repo || !pd) return { ok: false, reason: 'not a Docker Hub payload (no repository or push_data)' };
      const p = push(repo.repo_name, pd.tag, undefined);
      if (typeof p !== 'string' && typeof pd.pushed_at === 'number' && Number.isFinite(pd.pushed_at))
        p.pushedAt = Math.floor(pd.pushed_at);
      add(p);
      const cb = str(data.callback_url);
      return { ok: true, pushes, ignored, ...(cb ? { callbackUrl: cb } : {}) };
    }
    case 'distribution': {
      if (!Array.isArray(data.events)) return { ok: false, reason: 'not a registry notification (no events list)' };
      for (const e of data.events.slice(0, 1000)) {
        if (!isObj(e) || !isObj(e.target)) {
          ignored.push('an event without a target');
          continue;
        }
        const t = e.target;
        if (e.action !== 'push') {
          ignored.push(`${String(e.action)} of ${String(t.repository)}`);
          continue;
        }
        if (typeof t.mediaType === 'string' && !MANIFEST_TYPES.includes(t.mediaType)) {
          ignored.push(`a ${t.mediaType.slice(0, 80)} push (not an image manifest)`);
          continue;
        }
        if (t.mediaType === undefined && t.tag === undefined) {
          ignored.push('a push of no manifest'); // a layer push names no media type we can trust
          continue;
        }
        add(push(t.repository, t.tag, t.digest, isObj(e.request) ? e.request.host : undefined));
      }
      return { ok: true, pushes, ignored };
    }
    case 'harbor': {
      const ed = isObj(data.event_data) ? data.event_data : undefined;
      if (typeof data.type !== 'string' || !ed)
        return { ok: false, reason: 'not a Harbor payload (no type/event_data)' };
      if (data.type !== 'PUSH_ARTIFACT') return { ok: true, pushes, ignored: [`a ${data.type.slice(0, 40)} event`] };
      const repo = isObj(ed.repository) ? ed.repository : {};
      const resources = Array.isArray(ed.resources) ? ed.resources.slice(0, 1000) : [];
      for (const r of resources) {
        if (!isObj(r)) continue;
        const url = str(r.resource_url);
        const host = url && url.includes('/') ? url.slice(0, url.indexOf('/')) : undefined;
        add(push(repo.repo_full_name, r.tag, r.digest, host));
      }
      if (resources.length === 0) ignored.push('a push with no resources');
      return { ok: true, pushes, ignored };
    }
    case 'github': {
      const event = header(headers, 'x-github-event');
      if (event !== undefined && event !== 'registry_package' && event !== 'package') {
        return { ok: true, pushes, ignored: [`a ${event.slice(0, 40)} event`] };
      }
      if (event === undefined && data.registry_package === undefined && data.package === undefined)
        return { ok: false, reason: 'not a registry_package event' };
      if (data.action !== 'published' && data.action !== 'updated')
        return { ok: true, pushes, ignored: [`action ${String(data.action).slice(0, 40)}`] };
      const pkg = isObj(data.registry_package) ? data.registry_package : isObj(data.package) ? data.package : {};
      const type = String(pkg.package_type ?? pkg.ecosystem ?? '').toLowerCase();
      if (type && type !== 'container' && type !== 'docker')
        return { ok: true, pushes, ignored: [`a ${type.slice(0, 40)} package`] };
      const version = isObj(pkg.package_version) ? pkg.package_version : {};
      const meta = isObj(version.container_metadata) ? version.container_metadata : {};
      const tag = isObj(meta.tag) ? meta.tag : {};
      const owner = isObj(pkg.owner) ? str(pkg.owner.login) : undefined;
      const namespace = str(pkg.namespace) ?? owner;
      const name = str(pkg.name);
      const registry = isObj(pkg.registry) ? pkg.registry : {};
      const repository = namespace && name ? `${namespace}/${name}`.toLowerCase() : undefined;
      const digest = str(tag.digest) ?? (DIGEST_RE.test(String(version.version)) ? version.version : undefined);
      add(push(repository, tag.name, digest, registry.host ?? 'ghcr.io'));
      return { ok: true, pushes, ignored };
    }
  }
}

/**
 * The pushes this endpoint acts on: of a configured repository (compared without the registry host, case-
 * insensitively), and of a followed tag (`*` at the end of a pattern matches any rest). A push naming only a
 * digest is kept when the tags include `*`.
 */
export function selectPushes(
  pushes: ImagePush[],
  opts: { repositories: string[]; tags: string[] },
): { selected: ImagePush[]; ignored: string[] } {
  const selected: ImagePush[] = [];
  const ignored: string[] = [];
  const repos = opts.repositories.map((r) => r.toLowerCase());
  const follows = (tag: string | undefined) =>
    opts.tags.some((p) =>
      tag === undefined ? p === '*' : p.endsWith('*') ? tag.startsWith(p.slice(0, -1)) : p === tag,
    );
  for (const p of pushes) {
    if (!repos.includes(p.repository.toLowerCase())) ignored.push(`${p.repository} is not a configured repository`);
    else if (!follows(p.tag)) ignored.push(`${p.repository}:${p.tag ?? p.digest} is not a tag this agent follows`);
    else selected.push(p);
  }
  return { selected, ignored };
}
