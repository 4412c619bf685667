import { posix } from 'node:path';
import { interpolate } from './compose-interpolate.ts';
import { parseComposeYaml } from './compose-model.ts';
import { LadingError } from './errors.ts';
import type { ComposeBundle, Manifest } from './manifest.ts';

/**
 * The opt-in compose policy (compose-policy: strict): refuses, before any host is touched, services that take the
 * host over — privileged containers, the host's network/PID/IPC/user namespaces, all or SYS_ADMIN capabilities, and
 * bind mounts of /, /etc, /root or the docker socket — unless compose-policy-allow names them. Pure: it reads the
 * compose files' text (as the manifest carries them), interpolated with the release's variables.
 *
 * Every file is checked on its own, so an override file cannot hide a refused key behind a later merge.
 */

export type PolicyMode = 'off' | 'strict';

/** What compose-policy-allow may name. Paths are allowed by their own name (/, /etc, /root, docker-socket). */
export const POLICY_ALLOW = [
  'privileged',
  'host-network',
  'host-pid',
  'host-ipc',
  'host-userns',
  'cap-all',
  'cap-sys-admin',
  'docker-socket',
  '/',
  '/etc',
  '/root',
] as const;
export type PolicyAllow = (typeof POLICY_ALLOW)[number];

export interface PolicyViolation {
  file: string;
  service: string;
  key: string;
  what: string;
  allow: PolicyAllow;
}

export interface PolicyFile {
  path: string;
  content: string;
}

const SOCKETS = new Set(['/var/run/docker.sock', '/run/docker.sock']);

/** Parses compose-policy-allow: each entry one of POLICY_ALLOW. */
export function parsePolicyAllow(list: readonly string[]): Set<PolicyAllow> {
  const out = new Set<PolicyAllow>();
  for (const raw of list) {
    const v = raw.trim();
    if (!v) continue;
    const norm = v.startsWith('/') ? posix.normalize(v).replace(/(.)\/$/, '$1') : v.toLowerCase();
    if (!(POLICY_ALLOW as readonly string[]).includes(norm)) {
      throw new LadingError(
        `compose-policy-allow: '${v}' is not something the compose policy refuses`,
        `use any of ${POLICY_ALLOW.join(', ')}`,
      );
    }
    out.add(norm as PolicyAllow);
  }
  return out;
}

/** The refused host path a bind-mount source is (or is under), if any. */
function refusedPath(source: string): PolicyAllow | undefined {
  if (!source.startsWith('/')) return undefined; // relative to the project, a named volume, or ~ (not a host root)
  const p = posix.normalize(source).replace(/(.)\/+$/, '$1');
  if (p === '/') return '/';
  if (SOCKETS.has(p)) return 'docker-socket';
  if (p === '/etc' || p.startsWith('/etc/')) return '/etc';
  if (p === '/root' || p.startsWith('/root/')) return '/root';
  return undefined;
}

/** A short-syntax volume's source ("src:dst[:mode]"), or undefined for an anonymous volume. */
function shortSource(v: string): string | undefined {
  const parts = v.split(':');
  return parts.length >= 2 ? parts[0] : undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Everything one compose file's services do that the policy refuses (allowed ones left out). */
export function composePolicyViolations(
  files: readonly PolicyFile[],
  env: Record<string, string | undefined>,
  allow: ReadonlySet<PolicyAllow> = new Set(),
): PolicyViolation[] {
  const out: PolicyViolation[] = [];
  for (const f of files) {
    let doc: Record<string, unknown>;
    try {
      doc = parseComposeYaml(f.content, f.path); // as the resolver reads it: a file with many aliases is read too
    } catch (err) {
      // a file the policy cannot read is one it cannot vouch for: refused, not passed unchecked
      throw new LadingError(`compose-policy strict cannot check ${(err as Error).message}`, (err as LadingError).hint);
    }
    const services = isObj(doc.services) ? doc.services : {};
    for (const [service, raw] of Object.entries(services)) {
      if (!isObj(raw)) continue;
      const str = (v: unknown): string | undefined =>
        typeof v === 'string'
          ? interpolate(v, env)
          : typeof v === 'boolean' || typeof v === 'number'
            ? String(v)
            : undefined;
      const add = (key: string, what: string, a: PolicyAllow) => {
        if (!allow.has(a)) out.push({ file: f.path, service, key, what, allow: a });
      };
      if (str(raw.privileged)?.toLowerCase() === 'true') add('privileged', 'privileged: true', 'privileged');
      if (str(raw.network_mode) === 'host') add('network_mode', 'network_mode: host', 'host-network');
      if (str(raw.pid) === 'host') add('pid', 'pid: host', 'host-pid');
      if (str(raw.ipc) === 'host') add('ipc', 'ipc: host', 'host-ipc');
      if (str(raw.userns_mode) === 'host') add('userns_mode', 'userns_mode: host', 'host-userns');
      for (const c of Array.isArray(raw.cap_add) ? raw.cap_add : []) {
        const cap = (str(c) ?? '').toUpperCase().replace(/^CAP_/, '');
        if (cap === 'ALL') add('cap_add', 'cap_add: ALL', 'cap-all');
        if (cap === 'SYS_ADMIN') add('cap_add', 'cap_add: SYS_ADMIN', 'cap-sys-admin');
      }
      const volumes = Array.isArray(raw.volumes) ? raw.volumes : [];
      volumes.forEach((v, i) => {
        let source: string | undefined;
        if (typeof v === 'string') source = shortSource(interpolate(v, env));
        else if (isObj(v) && (v.type === undefined || str(v.type) === 'bind')) source = str(v.source);
        const a = source === undefined ? undefined : refusedPath(source);
        if (a) add(`volumes[${i}]`, `a bind mount of ${source}`, a);
      });
    }
  }
  return out;
}

/** Throws when compose-policy is strict and a service does what the policy refuses; names each, and how to allow. */
export function checkComposePolicy(
  mode: PolicyMode,
  files: readonly PolicyFile[],
  env: Record<string, string | undefined>,
  allow: ReadonlySet<PolicyAllow> = new Set(),
): void {
  if (mode === 'off') return;
  const found = composePolicyViolations(files, env, allow);
  if (found.length === 0) return;
  const lines = found.map((v) => `${v.file}: service ${v.service}: ${v.key}: ${v.what}`);
  const allows = [...new Set(found.map((v) => v.allow))];
  throw new LadingError(
    `compose-policy strict refuses ${found.length === 1 ? 'a service' : `${found.length} services`}: ${lines.join('; ')}`,
    `remove it from the compose file, or allow it with compose-policy-allow: ${allows.join(', ')}`,
  );
}

/** The compose files a manifest's compose bundle carries (its files and the included/extended ones among its assets). */
export function bundleComposeFiles(compose: ComposeBundle | undefined): PolicyFile[] {
  if (!compose) return [];
  const files: PolicyFile[] = compose.files.map((f) => ({ path: f.path, content: f.content }));
  for (const a of compose.assets ?? []) {
    if (a.kind === 'compose')
      files.push({ path: a.path, content: Buffer.from(a.content ?? '', 'base64').toString('utf8') });
  }
  return files;
}

/** compose-policy over a manifest's compose files, interpolated with its variables and the deploy's extra ones. */
export function checkManifestPolicy(
  manifest: Manifest,
  policy: { mode: PolicyMode; allow: ReadonlySet<PolicyAllow> },
  extraEnv: Record<string, string> = {},
): void {
  checkComposePolicy(
    policy.mode,
    bundleComposeFiles(manifest.compose),
    { ...manifest.compose?.env, ...extraEnv },
    policy.allow,
  );
}
