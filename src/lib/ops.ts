import { composeServiceDefs } from './compose-model.ts';
import { type HistoryEntry, parseHistory } from './deploy-plan.ts';
import { InputError, LadingError } from './errors.ts';
import { type Manifest, parseManifest } from './manifest.ts';
import { parseSwarmState } from './swarm-plan.ts';

/**
 * Day-2 operations as pure logic: what the host steps of src/lib/remote/ops.sh print, read into typed values; the
 * status of a host (health, drift), the lock release policy and the prune plan. No I/O here.
 */

/** `lading status --json`: a stable interface (fields are only ever added; see README "lading status"). */
export const STATUS_SCHEMA = 'lading.status/v1';

export interface LockInfo {
  /** The lock file's line as the host has it (what a release compares against). */
  raw: string;
  /** Who holds it: the deploy's run id (run-id / gh-<run>.<attempt>). */
  owner: string;
  /** The host name the holder wrote. */
  host: string;
  /** Epoch seconds the lease runs until. */
  expires: number;
  expiresAt: string;
  expired: boolean;
  /** Seconds left on the lease (0 once expired). */
  remaining: number;
}

/** The lock line: `<expiry epoch> <owner> <host> [more fields]` (host.sh's step_lock writes it). */
export function parseLock(raw: string | undefined, now: number): LockInfo | undefined {
  if (raw === undefined || !raw.trim()) return undefined;
  const [exp = '', owner = '', host = ''] = raw.trim().split(/\s+/);
  const expires = /^\d+$/.test(exp) ? Number(exp) : 0;
  return {
    raw,
    owner,
    host,
    expires,
    expiresAt: new Date(expires * 1000).toISOString(),
    expired: now > expires,
    remaining: Math.max(0, expires - now),
  };
}

export interface RawContainer {
  id: string;
  name: string;
  service: string;
  number: string;
  oneoff: string;
  workdir: string;
  state: string;
  health: string;
  restarts: number;
  started: string;
  image: string;
  imageId: string;
}

/** One `container=` line: docker inspect's labels, state and image, as whole JSON objects. */
interface InspectLine {
  id: string;
  name: string;
  labels: Record<string, string> | null;
  state: { Status?: string; StartedAt?: string; Health?: { Status?: string } | null } | null;
  restarts: number;
  image: string;
  imageId: string;
}

function rawContainer(line: InspectLine): RawContainer {
  const l = line.labels ?? {};
  return {
    id: line.id,
    name: line.name,
    service: l['com.docker.compose.service'] ?? '',
    number: l['com.docker.compose.container-number'] ?? '',
    oneoff: l['com.docker.compose.oneoff'] ?? '',
    workdir: l['com.docker.compose.project.working_dir'] ?? '',
    state: line.state?.Status ?? 'unknown',
    health: line.state?.Health?.Status ?? 'none',
    restarts: line.restarts ?? 0,
    started: line.state?.StartedAt ?? '',
    image: line.image,
    imageId: line.imageId,
  };
}

/** The `key=value` lines of an ops step, read. */
export interface OpsFacts {
  now: number;
  hostname: string;
  current?: string;
  releases: string[];
  lock?: string;
  manifest?: Manifest;
  history: HistoryEntry[];
  containers: RawContainer[];
  /** image ID → its repository digests (name@sha256:…) */
  images: Record<string, string[]>;
  /** What follows a `state=` line (a swarm stack's state). */
  rest: string;
}

export function parseOpsFacts(stdout: string, label: string): OpsFacts {
  const facts: OpsFacts = { now: 0, hostname: '', releases: [], history: [], containers: [], images: {}, rest: '' };
  const history: string[] = [];
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'state') {
      facts.rest = lines.slice(i + 1).join('\n');
      break;
    }
    if (key === 'now') facts.now = Number(value) || 0;
    else if (key === 'hostname') facts.hostname = value;
    else if (key === 'current' && value) facts.current = value;
    else if (key === 'release' && value) facts.releases.push(value);
    else if (key === 'lock') facts.lock = value;
    else if (key === 'history') history.push(value);
    else if (key === 'manifest' && value) {
      try {
        facts.manifest = parseManifest(Buffer.from(value, 'base64').toString('utf8'), `${label}: current release`);
      } catch {
        // an unreadable manifest: the status says the release is unknown
      }
    } else if (key === 'container') {
      try {
        facts.containers.push(rawContainer(JSON.parse(value) as InspectLine));
      } catch {
        // a container removed while it was inspected
      }
    } else if (key === 'image') {
      const m = /^("[^"]*")\s+(.*)$/.exec(value);
      if (!m) continue;
      try {
        facts.images[JSON.parse(m[1]!) as string] = (JSON.parse(m[2]!) as string[] | null) ?? [];
      } catch {
        // skip a torn line
      }
    }
  }
  facts.releases.sort();
  facts.history = parseHistory(history.join('\n'));
  return facts;
}

export interface ContainerStatus {
  name: string;
  service: string;
  state: string;
  health: string;
  restarts: number;
  started?: string;
  /** Seconds since it started (running containers). */
  uptime?: number;
  /** What the container was created from (a ref pinned by digest, or an image ID). */
  image: string;
  /** The image ID it really runs. */
  imageId: string;
  /** That image's registry digest of the pinned repository (or its first one), when it has one. */
  digest?: string;
  /** The release it was started from (its compose working directory), when lading started it. */
  release?: string;
  /** Why it does not match the current release, when it does not. */
  drift?: string;
}

export interface ServiceStatus {
  service: string;
  /** What the current release pins the service to (services without a built image have none). */
  pinned?: string;
  /** Swarm: replicas wanted. */
  desired?: number;
  containers: ContainerStatus[];
}

export interface ReleaseInfo {
  id: string;
  tag?: string;
  commit?: string;
  repository?: string;
  /** Who deployed it and when (the history's last successful deploy or rollback to it). */
  by?: string;
  run?: string;
  at?: string;
  action?: string;
}

export interface HostStatus {
  host: string;
  target: 'compose' | 'swarm';
  project: string;
  reachable: boolean;
  /** Reachable, a current release, every service of it running (and healthy where it has a healthcheck). */
  healthy: boolean;
  release?: ReleaseInfo;
  releases: string[];
  lock?: LockInfo;
  services: ServiceStatus[];
  /** Containers that do not match the release's pins, or that lading did not start. */
  drift: string[];
  /** Why the host is not healthy. */
  problems: string[];
  error?: string;
}

export interface StatusReport {
  schema: typeof STATUS_SCHEMA;
  time: string;
  ok: boolean;
  hosts: HostStatus[];
}

/** A host that could not be asked. */
export function unreachable(host: string, target: HostStatus['target'], project: string, error: string): HostStatus {
  return {
    host,
    target,
    project,
    reachable: false,
    healthy: false,
    releases: [],
    services: [],
    drift: [],
    problems: [`unreachable: ${error.split('\n')[0]}`],
    error,
  };
}

function releaseInfo(facts: OpsFacts): ReleaseInfo | undefined {
  if (!facts.current) return undefined;
  const info: ReleaseInfo = { id: facts.current };
  const m = facts.manifest;
  if (m) {
    info.tag = m.primary;
    info.commit = m.source.sha;
    info.repository = m.source.repository;
  }
  const last = facts.history
    .filter((h) => h.release === facts.current && h.result === 'success' && h.action !== 'auto-rollback')
    .concat(facts.history.filter((h) => h.release === facts.current && h.action === 'auto-rollback'))
    .sort((a, b) => a.time.localeCompare(b.time))
    .pop();
  if (last) {
    info.at = last.time;
    info.action = last.action;
    if (last.actor) info.by = last.actor;
    if (last.run) info.run = last.run;
    if (!info.tag) info.tag = last.primary;
    if (!info.commit) info.commit = last.sha;
  }
  return info;
}

/** The repository of an image reference: `reg:5000/a/b@sha256:…` or `reg:5000/a/b:tag` → `reg:5000/a/b`. */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(0, colon) : ref;
}

/** service → the ref the manifest pins it to (name@digest, or an image ID for registry-less images). */
export function pinsOf(manifest: Manifest | undefined): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const image of manifest?.images ?? []) for (const s of image.services) pins[s] = image.ref;
  return pins;
}

/** The services a release declares: its pinned ones and its compose files' `services:` keys. */
function servicesOf(manifest: Manifest | undefined): string[] {
  const names = new Set<string>(Object.keys(pinsOf(manifest)));
  for (const defs of composeServiceDefs(manifest?.compose?.files ?? []))
    for (const name of Object.keys(defs)) names.add(name);
  return [...names].sort();
}

/** What both targets read the same way: the current release, the releases on disk and the lock. */
function reachableStatus(
  facts: OpsFacts,
  target: HostStatus['target'],
  where: { host: string; project: string },
): HostStatus {
  const status: HostStatus = {
    host: where.host,
    target,
    project: where.project,
    reachable: true,
    healthy: true,
    releases: facts.releases,
    services: [],
    drift: [],
    problems: [],
  };
  const release = releaseInfo(facts);
  if (release) status.release = release;
  const lock = parseLock(facts.lock, facts.now);
  if (lock) status.lock = lock;
  return status;
}

/** A compose host's status from its `ops_status` step (root/project: where lading keeps the project there). */
export function composeStatus(facts: OpsFacts, where: { host: string; root: string; project: string }): HostStatus {
  const pins = pinsOf(facts.manifest);
  const declared = servicesOf(facts.manifest);
  const status = reachableStatus(facts, 'compose', where);
  const releasesDir = `${where.root.replace(/\/+$/, '')}/${where.project}/releases/`;
  const byService = new Map<string, ServiceStatus>();
  const serviceOf = (name: string) => {
    let s = byService.get(name);
    if (!s) {
      s = { service: name, containers: [] };
      if (pins[name]) s.pinned = pins[name];
      byService.set(name, s);
    }
    return s;
  };
  for (const name of declared) serviceOf(name);
  const oneoff = (c: RawContainer) => c.oneoff === 'True';
  for (const c of facts.containers
    .filter((x) => !oneoff(x))
    .sort((a, b) => `${a.service}/${a.number}`.localeCompare(`${b.service}/${b.number}`))) {
    const digests = facts.images[c.imageId] ?? [];
    const pin = pins[c.service];
    const cs: ContainerStatus = {
      name: c.name.replace(/^\//, ''),
      service: c.service,
      state: c.state,
      health: c.health,
      restarts: c.restarts,
      image: c.image,
      imageId: c.imageId,
    };
    const digest =
      (pin && digests.find((d) => repositoryOf(d) === repositoryOf(pin))) ??
      digests.find((d) => repositoryOf(d) === repositoryOf(c.image)) ??
      digests[0];
    if (digest) cs.digest = digest.slice(digest.indexOf('@') + 1);
    if (c.state === 'running' && c.started) {
      cs.started = c.started;
      const t = Date.parse(c.started);
      if (Number.isFinite(t) && facts.now) cs.uptime = Math.max(0, facts.now - Math.floor(t / 1000));
    }
    const why: string[] = [];
    if (c.workdir.startsWith(releasesDir)) {
      cs.release = c.workdir.slice(releasesDir.length).split('/')[0]!;
      if (facts.current && cs.release !== facts.current) {
        why.push(`started from release ${cs.release}, not the current ${facts.current}`);
      }
    } else {
      why.push(`not started by lading (compose directory ${c.workdir || 'unknown'})`);
    }
    if (facts.manifest && !declared.includes(c.service)) {
      why.push('its service is not in the current release');
    }
    if (pin) {
      const runs = pin.startsWith('sha256:') ? c.imageId === pin : digests.includes(pin);
      if (!runs) why.push(`runs ${cs.digest ?? c.imageId}, the release pins ${pin}`);
    }
    if (why.length) {
      cs.drift = why.join('; ');
      status.drift.push(`${cs.name}: ${cs.drift}`);
    }
    if (c.state !== 'running') status.problems.push(`${cs.name} is ${c.state}`);
    // "starting" is docker's verdict still pending (its first check comes one interval after the start): the deploy's
    // gate already ran the healthcheck itself, so a status right after a deploy is not a failed cron check. Docker
    // turns it into healthy or unhealthy on its own.
    else if (c.health === 'unhealthy') status.problems.push(`${cs.name} is ${c.health}`);
    serviceOf(c.service).containers.push(cs);
  }
  status.services = [...byService.values()].sort((a, b) => a.service.localeCompare(b.service));
  if (!facts.current) status.problems.push(`no current release of ${where.project}`);
  for (const s of status.services) {
    if (facts.manifest && !s.containers.some((c) => c.state === 'running') && declared.includes(s.service)) {
      status.problems.push(`service ${s.service} has no running container`);
    }
  }
  status.healthy = status.problems.length === 0;
  return status;
}

/** A swarm stack's status from its manager's `ops_swarm_status` step: services, their tasks, pins and drift. */
export function swarmStatus(facts: OpsFacts, where: { host: string; project: string }): HostStatus {
  const state = parseSwarmState(facts.rest);
  const pins = pinsOf(facts.manifest);
  const status = reachableStatus(facts, 'swarm', where);
  const prefix = `${where.project}_`;
  for (const svc of state.services) {
    const name = svc.Spec.Name.startsWith(prefix) ? svc.Spec.Name.slice(prefix.length) : svc.Spec.Name;
    const image = svc.Spec.TaskTemplate?.ContainerSpec?.Image ?? '';
    const s: ServiceStatus = { service: name, containers: [] };
    const pin = pins[name];
    if (pin) s.pinned = pin;
    const replicas = svc.Spec.Mode?.Replicated?.Replicas;
    if (replicas !== undefined) s.desired = replicas;
    const specDigest = image.includes('@') ? image.slice(image.indexOf('@') + 1) : undefined;
    const tasks = state.tasks.filter((t) => t.Name.startsWith(`${svc.Spec.Name}.`) && t.DesiredState === 'Running');
    for (const t of tasks) {
      const current = t.CurrentState.split(' ')[0]!.toLowerCase();
      const cs: ContainerStatus = {
        name: `${t.Name}@${t.Node}`,
        service: name,
        state: current,
        health: 'none',
        restarts: state.tasks.filter((x) => x.Name === t.Name).length - 1,
        image: t.Image,
        imageId: '',
      };
      const since = /^\w+\s+(.*)$/.exec(t.CurrentState)?.[1];
      if (since) cs.started = since;
      if (t.Image.includes('@')) cs.digest = t.Image.slice(t.Image.indexOf('@') + 1);
      if (svc.Spec.Labels?.['io.lading.release']) cs.release = svc.Spec.Labels['io.lading.release'];
      if (current !== 'running') status.problems.push(`${cs.name} is ${current}${t.Error ? `: ${t.Error}` : ''}`);
      s.containers.push(cs);
    }
    const why: string[] = [];
    if (!svc.Spec.Labels?.['io.lading.release']) why.push('not deployed by lading');
    else if (facts.current && svc.Spec.Labels['io.lading.release'] !== facts.current) {
      why.push(`deployed from release ${svc.Spec.Labels['io.lading.release']}, not the current ${facts.current}`);
    }
    if (pin && !(pin.startsWith('sha256:') ? image.includes(pin) : specDigest && pin.endsWith(`@${specDigest}`))) {
      why.push(`runs ${image}, the release pins ${pin}`);
    }
    if (why.length) status.drift.push(`${svc.Spec.Name}: ${why.join('; ')}`);
    const running = s.containers.filter((c) => c.state === 'running').length;
    if (replicas !== undefined && running < replicas) {
      status.problems.push(`${svc.Spec.Name}: ${running}/${replicas} tasks running`);
    }
    status.services.push(s);
  }
  status.services.sort((a, b) => a.service.localeCompare(b.service));
  if (!facts.current) status.problems.push(`no current release of stack ${where.project}`);
  for (const name of Object.keys(pins)) {
    if (!status.services.some((s) => s.service === name)) status.problems.push(`service ${name} is not in the stack`);
  }
  status.healthy = status.problems.length === 0;
  return status;
}

const ago = (seconds: number): string =>
  seconds < 90
    ? `${seconds}s`
    : seconds < 5400
      ? `${Math.round(seconds / 60)}m`
      : seconds < 172800
        ? `${Math.round(seconds / 3600)}h`
        : `${Math.round(seconds / 86400)}d`;

const short = (digest: string | undefined) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-');

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** The human form of a status report (the JSON form is the report itself). */
export function renderStatus(report: StatusReport): string {
  const out: string[] = [];
  for (const h of report.hosts) {
    const verdict = !h.reachable ? 'UNREACHABLE' : h.healthy ? 'healthy' : 'UNHEALTHY';
    out.push(`${h.host}  ${h.target} ${h.project}  ${verdict}${h.drift.length ? '  (drift)' : ''}`);
    if (!h.reachable) {
      out.push(`  error: ${h.error ?? ''}`);
      out.push('');
      continue;
    }
    const r = h.release;
    out.push(
      r
        ? `  release  ${r.id}  tag ${r.tag ?? '?'}  commit ${r.commit?.slice(0, 12) ?? '?'}` +
            `${r.by ? `  by ${r.by}` : ''}${r.run ? `  run ${r.run}` : ''}${r.at ? `  at ${r.at}` : ''}`
        : '  release  (none)',
    );
    const l = h.lock;
    out.push(
      l
        ? `  lock     held by ${l.owner} (${l.host}) ${l.expired ? `— lease ran out at ${l.expiresAt}` : `until ${l.expiresAt} (${ago(l.remaining)} left)`}`
        : '  lock     free',
    );
    const rows = [['  SERVICE', 'CONTAINER', 'STATE', 'HEALTH', 'RESTARTS', 'UP', 'DIGEST', 'RELEASE']];
    for (const s of h.services) {
      if (s.containers.length === 0) rows.push([`  ${s.service}`, '-', 'missing', '-', '-', '-', short(s.pinned), '-']);
      for (const c of s.containers) {
        rows.push([
          `  ${s.service}`,
          c.name,
          c.state,
          c.health,
          String(c.restarts),
          c.uptime !== undefined ? ago(c.uptime) : (c.started ?? '-'),
          short(c.digest ?? c.imageId),
          c.release === r?.id ? 'current' : (c.release ?? '-'),
        ]);
      }
    }
    if (rows.length > 1) out.push(...table(rows));
    for (const d of h.drift) out.push(`  drift: ${d}`);
    for (const p of h.problems) out.push(`  problem: ${p}`);
    out.push('');
  }
  const bad = report.hosts.filter((h) => !h.healthy).length;
  out.push(bad ? `${bad} of ${report.hosts.length} host(s) not healthy` : `${report.hosts.length} host(s) healthy`);
  return `${out.join('\n')}\n`;
}

/** Whether a lock may be released, and if not, why and what to do. */
export function lockReleaseDecision(
  lock: LockInfo | undefined,
  opts: { owner: string; force: boolean; confirm?: string },
): { release: boolean; why: string; hint?: string } {
  if (!lock) return { release: false, why: 'no lock is held' };
  // a deploy's lock owner is its run id and a random part (<run-id>-<8 hex>): the run id names the run's own locks
  const own =
    lock.owner === opts.owner ||
    new RegExp(`^${opts.owner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{8}$`).test(lock.owner);
  if (own) return { release: true, why: `the lock is this run's own (${lock.owner})` };
  if (!opts.force) {
    return {
      release: false,
      why: `the lock is held by ${lock.owner} (${lock.host}), not by this run (${opts.owner})`,
      hint: lock.expired
        ? 'its lease has run out: --force releases it'
        : `its lease runs until ${lock.expiresAt}: a deploy may be running. --force --confirm ${lock.owner} releases it anyway`,
    };
  }
  if (lock.expired) return { release: true, why: `the lease of ${lock.owner} ran out at ${lock.expiresAt}` };
  if (opts.confirm === lock.owner) return { release: true, why: `forced, confirmed for ${lock.owner}` };
  return {
    release: false,
    why: `the lock of ${lock.owner} (${lock.host}) is live until ${lock.expiresAt}: a deploy may be running`,
    hint: opts.confirm
      ? `--confirm names ${opts.confirm}, but the holder is ${lock.owner}: look again with lading lock status`
      : `if you are sure it is stuck, add --confirm ${lock.owner}`,
  };
}

export interface PruneFacts {
  current?: string;
  releases: Array<{ id: string; kib: number }>;
  pins: Array<{ release: string; ref: string; imageId?: string }>;
  images: Array<{ id: string; size: number; repoDigests: string[]; repoTags: string[] }>;
  used: Set<string>;
}

export function parsePruneFacts(stdout: string): PruneFacts {
  const f: PruneFacts = { releases: [], pins: [], images: [], used: new Set() };
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const v = line.slice(eq + 1).trim();
    if (key === 'current' && v) f.current = v;
    else if (key === 'release') {
      const [id = '', kib = '0'] = v.split(/\s+/);
      if (id) f.releases.push({ id, kib: Number(kib) || 0 });
    } else if (key === 'pin') {
      const [release = '', ref = '', id = '-'] = v.split(/\s+/);
      if (ref) f.pins.push({ release, ref, ...(id !== '-' ? { imageId: id } : {}) });
    } else if (key === 'used' && v) f.used.add(v);
    else if (key === 'image') {
      const m = /^("[^"]*")\s+(\d+)\s+(\S+)\s+(\S+)$/.exec(v);
      if (!m) continue;
      try {
        f.images.push({
          id: JSON.parse(m[1]!) as string,
          size: Number(m[2]),
          repoDigests: (JSON.parse(m[3]!) as string[] | null) ?? [],
          repoTags: (JSON.parse(m[4]!) as string[] | null) ?? [],
        });
      } catch {
        // skip a torn line
      }
    }
  }
  return f;
}

export interface PrunePlan {
  kept: string[];
  releases: Array<{ id: string; bytes: number }>;
  images: Array<{ id: string; bytes: number; names: string[] }>;
  /** Release directories plus images (images may share layers: an upper bound for them). */
  bytes: number;
}

/**
 * What prune removes: releases beyond the newest `keep` (never the current one), and images of the project's
 * repositories (or pinned by an image ID) that no kept release pins and no container, of any project, uses.
 */
export function prunePlan(f: PruneFacts, keep: number): PrunePlan {
  const newest = f.releases
    .map((r) => r.id)
    .sort()
    .reverse();
  const kept = new Set(newest.slice(0, keep));
  if (f.current) kept.add(f.current);
  const releases = f.releases
    .filter((r) => !kept.has(r.id))
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((r) => ({ id: r.id, bytes: r.kib * 1024 }));
  const keptIds = new Set<string>();
  const repos = new Set<string>();
  const prunedIds = new Set<string>();
  for (const p of f.pins) {
    const id = p.ref.startsWith('sha256:') ? p.ref : p.imageId;
    if (!p.ref.startsWith('sha256:')) repos.add(repositoryOf(p.ref));
    if (!id) continue;
    if (kept.has(p.release)) keptIds.add(id);
    else prunedIds.add(id);
  }
  const images = f.images
    .filter((img) => {
      if (keptIds.has(img.id) || f.used.has(img.id)) return false;
      if (prunedIds.has(img.id)) return true;
      return [...img.repoDigests, ...img.repoTags].some((r) => repos.has(repositoryOf(r)));
    })
    .map((img) => ({ id: img.id, bytes: img.size, names: [...img.repoTags, ...img.repoDigests].slice(0, 3) }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const bytes = releases.reduce((n, r) => n + r.bytes, 0) + images.reduce((n, i) => n + i.bytes, 0);
  return { kept: [...kept].sort(), releases, images, bytes };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** `--since`: a duration docker understands (10m, 1h30m, 45s) or a date/time (2026-11-29, 2026-11-29T10:00:00Z). */
export function parseSince(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const v = raw.trim();
  if (/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(v) || /^\d+$/.test(v)) return v;
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(v)) return v;
  throw new InputError('since', `'${raw}' is neither a duration (10m, 1h30m) nor a date/time (2026-11-29T10:00:00Z)`);
}

/** `--tail`: a number of lines, or all. */
export function parseTail(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  if (raw === 'all' || /^\d{1,9}$/.test(raw)) return raw;
  throw new InputError('tail', `'${raw}' is not a number of lines (or all)`);
}

export const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function parseService(raw: string | undefined, required: boolean): string | undefined {
  if (!raw) {
    if (required) throw new InputError('service', 'is empty', 'name the compose service (lading status lists them)');
    return undefined;
  }
  if (!SERVICE_RE.test(raw)) throw new InputError('service', `'${raw}' is not a compose service name`);
  return raw;
}

/** A command's argv as env for the host step (LADING_ARGC, LADING_ARG_<i>): never parsed by a shell. */
export function argvEnv(argv: string[]): Record<string, string> {
  if (argv.length === 0)
    throw new LadingError('no command given', 'put it after --, e.g. lading exec --service web -- rake db:migrate');
  const env: Record<string, string> = { LADING_ARGC: String(argv.length) };
  argv.forEach((a, i) => (env[`LADING_ARG_${i + 1}`] = a));
  return env;
}

/**
 * A command given as one string (an action input, a hook): a JSON array of arguments, or words separated by
 * whitespace. Never a shell line: nothing is expanded or quoted (wrap it in `sh -c` in the array for a shell).
 */
export function parseArgv(input: string, raw: string | undefined): string[] {
  const text = raw?.trim() ?? '';
  if (!text) return [];
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InputError(input, `is not a JSON array: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string')) {
      throw new InputError(input, 'must be a non-empty JSON array of strings');
    }
    return parsed as string[];
  }
  return text.split(/\s+/);
}

/** Non-deploy history lines (lock releases, prunes, hooks): no release, so a rollback never picks them. */
export function opsHistoryLine(
  now: Date,
  action: HistoryEntry['action'],
  result: 'success' | 'failure',
  run: string,
  detail: Record<string, unknown>,
): string {
  const entry: HistoryEntry & Record<string, unknown> = {
    time: now.toISOString(),
    action,
    result,
    release: '',
    sha: '',
    primary: '',
    tags: [],
    images: {},
    run,
    ...detail,
  };
  return JSON.stringify(entry);
}
