import { parse, parseDocument, stringify } from 'yaml';
import { parseDotEnv } from './compose-interpolate.ts';
import { parseComposeYaml } from './compose-model.ts';
import { InputError, LadingError } from './errors.ts';
import { ENV_NAME_RE, parseList } from './inputs.ts';
import type { Manifest } from './manifest.ts';
import { timestampTag } from './tags.ts';

/** One host of a deploy: where to connect and where the project lives there. */
export interface HostSpec {
  /** host, host:port, user@host:port as given (for logs and results). */
  label: string;
  host: string;
  port: number;
  user: string;
  /** Per-host overrides (from an inventory). */
  root?: string;
  project?: string;
  probeUrl?: string;
}

const HOST_RE = /^(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

/** `user@host:port` entries (one per line or comma separated); user and port default to the inputs. */
export function parseHosts(raw: string | undefined, defaults: { user: string; port: number }): HostSpec[] {
  const hosts = parseList(raw).map((entry) => {
    const m = HOST_RE.exec(entry);
    if (!m) throw new InputError('hosts', `'${entry}' is not user@host[:port]`);
    const port = m[3] ? Number(m[3]) : defaults.port;
    if (port < 1 || port > 65535) throw new InputError('hosts', `'${entry}': port ${port} is out of range`);
    return { label: entry, host: m[2]!.replace(/^\[|\]$/g, ''), port, user: m[1] ?? defaults.user };
  });
  if (hosts.length === 0) throw new InputError('hosts', 'no host given', 'list the hosts to deploy to, one per line');
  const seen = new Set<string>();
  for (const h of hosts) {
    const key = `${h.user}@${h.host}:${h.port}`;
    if (seen.has(key)) throw new InputError('hosts', `${key} is listed twice`);
    seen.add(key);
  }
  return hosts;
}

/**
 * An inventory (YAML text): a list of hosts, or `{ hosts: [...] }`; each a `user@host:port` string or a map with
 * host, port, user, root, project, probe-url — per-host overrides of the deploy inputs.
 */
export function parseInventory(text: string, defaults: { user: string; port: number }): HostSpec[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new InputError('inventory', `is not valid YAML: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { hosts?: unknown })?.hosts;
  if (!Array.isArray(list)) throw new InputError('inventory', 'must be a list of hosts, or a map with hosts:');
  const KEYS = new Set(['host', 'port', 'user', 'root', 'project', 'probe-url']);
  const hosts = list.map((item, i): HostSpec => {
    if (typeof item === 'string') return parseHosts(item, defaults)[0]!;
    if (typeof item !== 'object' || item === null)
      throw new InputError('inventory', `entry ${i + 1} must be a host or a map`);
    const e = item as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !KEYS.has(k));
    if (unknown.length > 0)
      throw new InputError('inventory', `entry ${i + 1} has unknown key(s) ${unknown.join(', ')}`);
    if (typeof e.host !== 'string') throw new InputError('inventory', `entry ${i + 1} has no host:`);
    const [h] = parseHosts(e.host, {
      user: typeof e.user === 'string' ? e.user : defaults.user,
      port: typeof e.port === 'number' ? e.port : defaults.port,
    });
    const spec: HostSpec = { ...h!, label: e.project ? `${h!.label} (${String(e.project)})` : h!.label };
    if (e.root !== undefined) {
      if (typeof e.root !== 'string' || !ROOT_RE.test(e.root))
        throw new InputError('inventory', `entry ${i + 1}: root must be an absolute path`);
      spec.root = e.root;
    }
    if (e.project !== undefined) {
      if (typeof e.project !== 'string' || !PROJECT_RE.test(e.project))
        throw new InputError('inventory', `entry ${i + 1}: project must be lowercase letters, digits, _ and -`);
      spec.project = e.project;
    }
    if (e['probe-url'] !== undefined) {
      // validated like the probe-url input: the host runs curl/wget with it
      if (
        typeof e['probe-url'] !== 'string' ||
        !/^https?:\/\/\S+$/.test(e['probe-url']) ||
        e['probe-url'].startsWith('-')
      )
        throw new InputError('inventory', `entry ${i + 1}: probe-url must be an http(s) URL`);
      spec.probeUrl = e['probe-url'];
    }
    return spec;
  });
  if (hosts.length === 0) throw new InputError('inventory', 'lists no host');
  return hosts;
}

export const ROOT_RE = /^\/[A-Za-z0-9._/-]*$/;
export const PROJECT_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** A deploy root, a project name and a probe URL as the deploy inputs and the agent's config (key `input`) take them. */
export function checkRoot(input: string, root: string): string {
  if (!ROOT_RE.test(root))
    throw new InputError(input, `'${root}' must be an absolute path of letters, digits and . _ - /`);
  return root;
}

export function checkProject(input: string, project: string): string {
  if (!PROJECT_RE.test(project)) throw new InputError(input, `'${project}' must be lowercase letters, digits, _ and -`);
  return project;
}

export function checkProbeUrl(input: string, url: string): string {
  if (!/^https?:\/\/\S+$/.test(url)) throw new InputError(input, `'${url}' is not an http(s) URL`);
  return url;
}

/** Sortable and unique per deploy: 20261124T020304Z-main-1a2b3c4. */
export function releaseId(now: Date, primary: string): string {
  return `${timestampTag(now)}-${primary}`.slice(0, 120);
}

export interface ReleaseFiles {
  /** name in the release dir (a relative path for the project's own files) → content; sha256 when to verify */
  files: Array<{ name: string; content: string | Buffer; mode: number; sha256?: string; dir?: boolean }>;
  /** compose -f order */
  composeFiles: string[];
}

/**
 * The files of a release directory: the manifest's compose files, an override pinning every built service to its
 * digest, the .env (0600) with DOCKER_TAG, LADING_IMAGE_<ID> and the compose env, and release.json.
 */
/**
 * Every variable the manifest names (compose-env, v3) must have a value from this deploy (compose-env,
 * compose-env-file or compose-secrets): refused before any host is touched otherwise. Answers the env the release's
 * .env gets on top of the manifest's: the supplied values, compose-secrets last.
 */
export function deployEnv(
  manifest: Manifest,
  supplied: { composeEnv: Record<string, string>; composeSecrets: Record<string, string> },
): Record<string, string> {
  const env = { ...supplied.composeEnv, ...supplied.composeSecrets };
  const missing = (manifest.compose?.envNames ?? []).filter((n) => env[n] === undefined);
  if (missing.length > 0) {
    const list = missing.join(', ');
    throw new LadingError(
      `the manifest needs ${missing.length > 1 ? 'values for' : 'a value for'} ${list} (its compose-env), and this deploy supplies none: nothing was changed on any host`,
      `give ${missing.length > 1 ? 'them' : 'it'} to the deploy: compose-env (KEY=VALUE lines from your CI's secrets) or compose-env-file on the deploy step; LADING_COMPOSE_ENV or --compose-env-file for lading deploy; deploy.env-file in an agent's config`,
    );
  }
  return env;
}

/** A variable name that says it holds a secret: API_TOKEN, DB_PASSWORD, AWS_SECRET_ACCESS_KEY, SENTRY_DSN, … */
const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CRED|AUTH|PRIVATE|SALT|DSN|SIGN|CERT|COOKIE|SESSION/i;

/**
 * The values of compose variables to mask in the logs. The runner masks a value wherever it appears, so masking
 * `info`, `3` or `true` (LOG_LEVEL, WORKERS, DEBUG) would blank those words out of every later line: a compose-env
 * value is masked when it has 8 characters or more, or 3 or more under a name that says it is a secret (one or two
 * characters are no secret, and masking them would blank the log). compose-secrets values are secrets: every one.
 */
export function envMasks(composeEnv: Record<string, string>, composeSecrets: Record<string, string> = {}): string[] {
  const masks = new Set<string>();
  for (const [name, value] of Object.entries(composeEnv)) {
    if (value.length >= 8 || (value.length >= 3 && SECRET_NAME.test(name))) masks.add(value);
  }
  for (const value of Object.values(composeSecrets)) if (value.trim() !== '') masks.add(value);
  return [...masks];
}

export function releaseFiles(
  manifest: Manifest,
  opts: { project: string; release: string; extraEnv?: Record<string, string>; healthOverride?: string },
): ReleaseFiles {
  const compose = manifest.compose;
  if (!compose || compose.files.length === 0) {
    throw new LadingError(
      'the manifest has no compose files',
      'write it with compose-files (the manifest step) so the deploy knows what to run',
    );
  }
  const files: ReleaseFiles['files'] = [];
  const composeFiles: string[] = [];
  const services = new Set<string>();
  let version: unknown;
  compose.files.forEach((f, i) => {
    const base = f.path.slice(f.path.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_');
    const name = `${String(i + 1).padStart(2, '0')}-${base}`;
    files.push({ name, content: withoutBuildSections(f.content), mode: 0o644 });
    composeFiles.push(name);
    let doc: Record<string, unknown> | undefined;
    try {
      doc = parseComposeYaml(f.content, f.path); // as the build read it: a file with many aliases still gets its pins
    } catch {
      doc = undefined; // compose itself will say what is wrong with it
    }
    if (i === 0) version = doc?.version;
    const declared = doc?.services;
    if (declared && typeof declared === 'object') for (const s of Object.keys(declared)) services.add(s);
  });
  const pins: Record<string, { image: string }> = {};
  for (const image of manifest.images) {
    for (const s of image.services) if (services.has(s)) pins[s] = { image: image.ref };
  }
  for (const [s, ref] of Object.entries(compose.pins ?? {})) if (services.has(s) && !pins[s]) pins[s] = { image: ref };
  const pinDoc: Record<string, unknown> = {};
  if (version !== undefined) pinDoc.version = String(version);
  pinDoc.services = pins;
  if (Object.keys(pins).length > 0) {
    files.push({
      name: 'lading.pins.yml',
      content: `# every built service pinned by digest (written by lading)\n${stringify(pinDoc)}`,
      mode: 0o644,
    });
    composeFiles.push('lading.pins.yml');
  }
  if (opts.healthOverride) {
    // start_interval for healthchecks on an engine that honours it (src/lib/health-start.ts), last so it wins
    files.push({
      name: 'lading.health.yml',
      content: `# healthchecks probe every second while starting (written by lading)\n${
        version === undefined ? '' : stringify({ version: String(version) })
      }${opts.healthOverride}`,
      mode: 0o644,
    });
    composeFiles.push('lading.health.yml');
  }
  // v2: the project's own files at their place (so ./nginx.conf and env_file: app.env resolve), verified on the host
  let projectEnv: Record<string, string> = {};
  for (const a of compose.assets ?? []) {
    if (a.kind === 'dir') {
      files.push({ name: a.path, content: '', mode: a.mode, dir: true });
      continue;
    }
    const bytes = Buffer.from(a.content ?? '', 'base64');
    if (a.kind === 'env' && !a.path.includes('/')) {
      // the project .env: its values go into the release's own .env (below), under the manifest's
      projectEnv = { ...projectEnv, ...parseDotEnv(bytes.toString('utf8'), {}, a.path) };
      continue;
    }
    if (a.kind === 'compose') {
      files.push({ name: a.path, content: withoutBuildSections(bytes.toString('utf8')), mode: a.mode });
      continue;
    }
    files.push({ name: a.path, content: bytes, mode: a.mode, sha256: a.sha256 });
  }
  const env: Record<string, string> = {
    COMPOSE_PROJECT_NAME: opts.project,
    ...projectEnv,
    ...compose.env,
    ...opts.extraEnv,
  };
  files.push({ name: '.env', content: renderEnvFile(env), mode: 0o600 });
  files.push({ name: '.lading-files', content: `${composeFiles.join('\n')}\n`, mode: 0o644 });
  files.push({ name: 'manifest.json', content: `${JSON.stringify(manifest, null, 2)}\n`, mode: 0o644 });
  return { files, composeFiles };
}

/**
 * A compose file as a host runs it: hosts never build (the images are pinned by digest), and docker-compose v1
 * refuses a `build:` whose context is not on the host, so `build:` sections are dropped (comments kept).
 */
export function withoutBuildSections(text: string): string {
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text);
  } catch {
    return text;
  }
  const services = doc.get('services') as { items?: Array<{ key: unknown }> } | undefined;
  let changed = false;
  for (const item of services?.items ?? []) {
    const name = String((item.key as { value?: unknown })?.value ?? item.key);
    if (doc.hasIn(['services', name, 'build'])) {
      doc.deleteIn(['services', name, 'build']);
      changed = true;
    }
  }
  return changed && doc.errors.length === 0 ? String(doc) : text;
}

/** KEY=value lines as both compose v1 and v2 read them (no quoting: values with newlines are refused). */
export function renderEnvFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => {
      if (!ENV_NAME_RE.test(k)) throw new LadingError(`compose env name '${k}' is not a variable name`);
      if (/[\r\n]/.test(v))
        throw new LadingError(
          `compose env ${k} contains a line break, which .env files cannot hold`,
          'give it on one line (encode it, e.g. base64), or ship it as a file the service mounts (compose secrets)',
        );
      return `${k}=${v}\n`;
    })
    .join('');
}

/** What a host's facts step says: its compose flavour (empty on a swarm manager), current release, releases, and
 * the engine's API version when asked (LADING_WANT_API). */
export interface Facts {
  compose: string;
  current?: string;
  releases: string[];
  api?: string;
}

/** A line of the facts (compose=, current=, release=): data for parseFacts, not log material. */
export const isFactLine = (line: string): boolean => /^(compose|current|release)=/.test(line);

/** What step_facts (or step_swarm_facts) printed. */
export function parseFacts(stdout: string): Facts {
  const facts: Facts = { compose: '', current: undefined, releases: [] };
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq === -1) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1).trim();
    if (k === 'compose') facts.compose = v;
    else if (k === 'current' && v) facts.current = v;
    else if (k === 'release' && v) facts.releases.push(v);
    else if (k === 'api' && v) facts.api = v;
  }
  facts.releases.sort();
  return facts;
}

/** Deploys and rollbacks name a release; the day-2 actions (lock-release, prune, hook) leave `release` empty. */
export type HistoryAction = 'deploy' | 'rollback' | 'auto-rollback' | 'lock-release' | 'prune' | 'hook';
export interface HistoryEntry {
  time: string;
  action: HistoryAction;
  result: 'success' | 'failure';
  release: string;
  previous?: string;
  sha: string;
  primary: string;
  tags: string[];
  images: Record<string, string>;
  run?: string;
  actor?: string;
  error?: string;
}

export function historyEntry(
  manifest: Manifest,
  e: {
    time: Date;
    action: HistoryAction;
    result: 'success' | 'failure';
    release: string;
    previous?: string;
    run?: string;
    actor?: string;
    error?: string;
  },
): HistoryEntry {
  const entry: HistoryEntry = {
    time: e.time.toISOString(),
    action: e.action,
    result: e.result,
    release: e.release,
    sha: manifest.source.sha,
    primary: manifest.primary,
    tags: manifest.tags,
    images: Object.fromEntries(manifest.images.map((i) => [i.id, i.digest])),
  };
  if (e.previous) entry.previous = e.previous;
  const run = e.run ?? manifest.source.run;
  if (run) entry.run = run;
  const actor = e.actor ?? manifest.source.actor;
  if (actor) entry.actor = actor;
  if (e.error) entry.error = e.error.slice(0, 500);
  return entry;
}

export function parseHistory(text: string): HistoryEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as HistoryEntry];
      } catch {
        return []; // a torn line from a killed deploy: skip it
      }
    });
}

/**
 * Which release a rollback goes to: `previous` = the newest successful release before the current one; otherwise a
 * release id, a tag or a sha (prefix) of a release still on the host.
 */
export function rollbackTarget(
  history: HistoryEntry[],
  onDisk: string[],
  current: string | undefined,
  to: string,
): string {
  const ok = history.filter((h) => h.result === 'success' && onDisk.includes(h.release));
  if (to === 'previous') {
    const before = ok.filter((h) => h.release !== current).map((h) => h.release);
    const candidates = current ? before.filter((r) => r < current) : before;
    const target = candidates.sort().pop();
    if (!target)
      throw new LadingError(
        'there is no previous release to roll back to on this host',
        'name a release id, tag or sha (lading releases lists them)',
      );
    return target;
  }
  if (onDisk.includes(to)) return to;
  const match = ok
    .filter((h) => h.tags.includes(to) || h.primary === to || (to.length >= 7 && h.sha.startsWith(to)))
    .map((h) => h.release)
    .sort()
    .pop();
  if (!match)
    throw new LadingError(`no release matching '${to}' is on this host`, 'lading releases lists what is there');
  return match;
}

/**
 * A deploy that would replace a newer build with an older one of the same channel (say a re-run of an old
 * workflow publishing to latest): the reason to refuse, or undefined. Rollbacks are exempt by design.
 */
export function downgradeReason(next: Manifest, current: Manifest): string | undefined {
  if (!next.channel || next.channel !== current.channel) return undefined;
  if (next.source.sha === current.source.sha) return undefined;
  const when = (m: Manifest) => Date.parse(m.source.commitTime ?? m.source.created);
  if (when(next) >= when(current)) return undefined;
  return `${next.primary} (${next.source.commitTime ?? next.source.created}) is older than ${current.primary} (${current.source.commitTime ?? current.source.created}), which the host runs on channel ${next.channel}`;
}

/**
 * The rollout order: the first `canary` hosts alone (in parallel up to max-parallel), then the rest in batches of
 * `maxParallel`. Returns host indexes per batch; `canary` batches are marked so a failure there stops everything.
 */
export function planBatches(
  total: number,
  opts: { maxParallel: number; canary: number },
): Array<{ hosts: number[]; canary: boolean }> {
  const batches: Array<{ hosts: number[]; canary: boolean }> = [];
  const canary = Math.min(Math.max(opts.canary, 0), total);
  const step = Math.max(1, opts.maxParallel);
  for (let i = 0; i < canary; i += step) {
    batches.push({ hosts: range(i, Math.min(i + step, canary)), canary: true });
  }
  for (let i = canary; i < total; i += step)
    batches.push({ hosts: range(i, Math.min(i + step, total)), canary: false });
  return batches;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/**
 * The error budget of a rollout: how many hosts may fail (or roll back) before the next batch is not started.
 * `max-failures` is a count ("2") or a share of the hosts ("5%", rounded down); unset, fail-fast decides (0 or all).
 */
export function parseMaxFailures(raw: string | undefined, total: number, failFast: boolean): number {
  const v = raw?.trim();
  if (!v) return failFast ? 0 : total;
  const m = /^(\d+)(%?)$/.exec(v);
  if (!m) throw new InputError('max-failures', `'${raw}' is not a count or a percentage`, 'write e.g. 2 or 5%');
  const n = Number(m[1]);
  if (m[2]) {
    if (n > 100) throw new InputError('max-failures', `'${raw}' is over 100%`);
    return Math.floor((total * n) / 100);
  }
  return n;
}
