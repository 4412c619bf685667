import { parse, stringify } from 'yaml';
import { interpolate } from './compose-interpolate.ts';
import { LadingError } from './errors.ts';
import type { Manifest } from './manifest.ts';

/**
 * Docker Swarm as a deploy target, the pure half: a manifest's compose files rendered into a stack (every built
 * image pinned by digest, no build sections, variables resolved, rolling-update and rollback policy set), and the
 * state a manager reports (`docker service inspect`, `docker service ps`) judged into a convergence verdict.
 */

export type UpdateOrder = 'auto' | 'start-first' | 'stop-first';

export interface SwarmUpdatePolicy {
  /** Tasks updated at once (0 = all at once, as swarm reads it). */
  parallelism: number;
  /** Seconds between batches. */
  delay: number;
  /** Seconds a new task is watched for failure before the update moves on. */
  monitor: number;
  /** start-first (new task up before the old one stops) where safe, or forced either way. */
  order: UpdateOrder;
  /** Swarm rolls a failed update back by itself (else it pauses the update). */
  rollback: boolean;
}

export const DEFAULT_POLICY: SwarmUpdatePolicy = {
  parallelism: 1,
  delay: 5,
  monitor: 15,
  order: 'auto',
  rollback: true,
};

/** The name of the label lading sets on every service of a stack: the release it belongs to. */
export const RELEASE_LABEL = 'io.lading.release';

export interface StackRender {
  /** release dir file name → content (written 0600: resolved variables may be secrets). */
  files: Array<{ name: string; content: string; mode: number }>;
  /** `docker stack deploy -c` order. */
  stackFiles: string[];
  /** service → image ref pinned by digest (built services). */
  pins: Record<string, string>;
  /** service → the update order chosen, and why. */
  orders: Record<string, { order: 'start-first' | 'stop-first'; why: string }>;
  /** Variables the compose files use that the manifest does not set (resolved to '', as compose does). */
  missing: string[];
  /** service → what a one-off container of it gets (deploy hooks): its image, environment and networks. */
  runs: Record<string, SwarmRun>;
}

/**
 * A one-off container of a stack's service (a deploy hook on a manager, `docker run`): the service's image (pinned
 * like its tasks), its `environment` (resolved; `env_file` and variables without a value are not carried), user and
 * working dir, and the docker names of its networks in order (`host` for host networking).
 */
export interface SwarmRun {
  image: string;
  env: Array<[string, string]>;
  networks: string[];
  user?: string;
  workdir?: string;
}

type Doc = Record<string, unknown>;
const isMap = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Compose interpolation for a stack file: the values resolved, and every `$` left in the result doubled, because
 * `docker stack deploy` interpolates once more (a `$$` in the source stays a literal `$` on the node).
 */
function resolveStrings(value: unknown, env: Record<string, string>, missing: Set<string>): unknown {
  if (typeof value === 'string') return interpolate(value, env, missing).replace(/\$/g, '$$$$');
  if (Array.isArray(value)) return value.map((v) => resolveStrings(v, env, missing));
  if (isMap(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveStrings(v, env, missing)]));
  return value;
}

/** Later files win; maps merge key by key (enough to judge networks, ports and volumes of a service). */
function mergeInto(into: Doc, from: Doc): Doc {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    into[k] = isMap(cur) && isMap(v) ? mergeInto({ ...cur }, v) : v;
  }
  return into;
}

const versionOf = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

/**
 * Whether a service may start its new task before the old one stops. Not when two copies would fight over the
 * same thing: host networking, ports published in host mode (the new task cannot bind them), a writable volume or
 * bind mount (two writers on one data directory).
 */
export function safeOrder(service: Doc, networks: Doc): { order: 'start-first' | 'stop-first'; why: string } {
  if (service.network_mode === 'host') return { order: 'stop-first', why: 'host networking' };
  const nets = Array.isArray(service.networks)
    ? service.networks.map(String)
    : isMap(service.networks)
      ? Object.keys(service.networks)
      : [];
  for (const n of nets) {
    const def = networks[n];
    const ext = isMap(def) ? def.external : undefined;
    const name = isMap(def) ? (def.name ?? (isMap(ext) ? ext.name : undefined) ?? (ext ? n : undefined)) : undefined;
    if (name === 'host' || (n === 'host' && (def === undefined || def === null))) {
      return { order: 'stop-first', why: 'host networking' };
    }
  }
  for (const p of Array.isArray(service.ports) ? service.ports : []) {
    if (isMap(p) && p.mode === 'host')
      return { order: 'stop-first', why: `port ${String(p.published ?? p.target)} published in host mode` };
  }
  for (const v of Array.isArray(service.volumes) ? service.volumes : []) {
    if (typeof v === 'string') {
      const parts = v.split(':');
      if (parts.length < 2) continue; // an anonymous volume: each task gets its own
      const opts = parts.length > 2 ? parts[parts.length - 1]!.split(',') : [];
      if (!opts.includes('ro')) return { order: 'stop-first', why: `writable volume ${parts[0]}` };
    } else if (isMap(v)) {
      if (v.type === 'tmpfs' || v.read_only === true || (v.type === 'volume' && !v.source)) continue;
      return { order: 'stop-first', why: `writable ${String(v.type ?? 'volume')} ${String(v.source ?? v.target)}` };
    }
  }
  return { order: 'start-first', why: 'no host network, host port or writable volume' };
}

function compareVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The stack of a release: the manifest's compose files with variables resolved (from the manifest's compose env),
 * `build:` dropped and built images pinned by digest, then `lading.stack.yml` on top with the pins, the
 * update/rollback policy and the release label for every service. `docker stack deploy -c … -c …` merges them, as
 * compose would. Registry-less images are pinned by image ID: the deploy loads them on the nodes first and deploys
 * with --resolve-image never.
 */
export function renderStack(
  manifest: Manifest,
  opts: { project: string; release: string; policy: SwarmUpdatePolicy; env?: Record<string, string> },
): StackRender {
  const compose = manifest.compose;
  if (!compose || compose.files.length === 0) {
    throw new LadingError(
      'the manifest has no compose files',
      'write it with compose-files (the manifest step) so the deploy knows what to run',
    );
  }
  const env: Record<string, string> = { COMPOSE_PROJECT_NAME: opts.project, ...compose.env, ...opts.env };
  const missing = new Set<string>();
  const pinsByService = new Map<string, string>();
  for (const image of manifest.images) for (const s of image.services) pinsByService.set(s, image.ref);

  const files: StackRender['files'] = [];
  const stackFiles: string[] = [];
  const merged: Doc = {};
  let version = '3.7';
  compose.files.forEach((f, i) => {
    let doc: unknown;
    try {
      doc = parse(f.content, { merge: true });
    } catch (err) {
      throw new LadingError(`compose file ${f.path} is not valid YAML: ${(err as Error).message}`);
    }
    if (!isMap(doc)) throw new LadingError(`compose file ${f.path} is not a map of services`);
    const v = versionOf(doc.version);
    if (v !== undefined) {
      if (!/^3(\.\d+)?$/.test(v)) {
        throw new LadingError(
          `compose file ${f.path} has version ${v}; docker stack deploy reads format 3.x only`,
          'set version: "3.8" (or drop the version line for a current docker)',
        );
      }
      if (compareVersion(v, version) > 0) version = v;
    }
    // x-lading (the hooks) is lading's, not the swarm's: a stack file of version < 3.4 would refuse an x- key
    const { 'x-lading': _lading, ...ours } = doc;
    const out = resolveStrings(ours, env, missing) as Doc;
    if (!out.version) out.version = v ?? '3.7'; // older docker CLIs refuse a stack file without one
    if (isMap(out.services)) {
      for (const [name, svc] of Object.entries(out.services)) {
        if (!isMap(svc)) continue;
        delete svc.build;
        const pin = pinsByService.get(name);
        if (pin) svc.image = pin;
      }
    }
    mergeInto(merged, out);
    const base = f.path.slice(f.path.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_');
    const name = `${String(i + 1).padStart(2, '0')}-${base}`;
    files.push({
      name,
      content: `# ${f.path}, rendered for docker stack deploy by lading\n${stringify(out)}`,
      mode: 0o600,
    });
    stackFiles.push(name);
  });

  const services = isMap(merged.services) ? merged.services : {};
  if (Object.keys(services).length === 0) throw new LadingError('the compose files define no services');
  const networks = isMap(merged.networks) ? merged.networks : {};
  const p = opts.policy;
  const pins: Record<string, string> = {};
  const orders: StackRender['orders'] = {};
  const overlay: Doc = {};
  for (const [name, svc] of Object.entries(services)) {
    const def = isMap(svc) ? svc : {};
    if (!def.image && !pinsByService.has(name)) {
      throw new LadingError(
        `service ${name} has no image and no image of the manifest runs it`,
        'give it an image:, or build it in the pipeline so the manifest pins it',
      );
    }
    const chosen = p.order === 'auto' ? safeOrder(def, networks) : { order: p.order, why: 'set by update-order' };
    orders[name] = chosen;
    const policy = (failure: string) => ({
      parallelism: p.parallelism,
      delay: `${p.delay}s`,
      failure_action: failure,
      monitor: `${p.monitor}s`,
      order: chosen.order,
    });
    const entry: Doc = {
      deploy: {
        labels: { [RELEASE_LABEL]: opts.release },
        update_config: { ...policy(p.rollback ? 'rollback' : 'pause'), max_failure_ratio: 0 },
        rollback_config: { ...policy('pause'), max_failure_ratio: 0 },
      },
    };
    const pin = pinsByService.get(name);
    if (pin) {
      entry.image = pin;
      pins[name] = pin;
    }
    overlay[name] = entry;
  }
  files.push({
    name: 'lading.stack.yml',
    content: `# pins, update and rollback policy, release label (written by lading)\n${stringify({ version, services: overlay })}`,
    mode: 0o600,
  });
  stackFiles.push('lading.stack.yml');
  files.push({ name: '.lading-files', content: `${stackFiles.join('\n')}\n`, mode: 0o644 });
  files.push({ name: 'manifest.json', content: `${JSON.stringify(manifest, null, 2)}\n`, mode: 0o644 });
  const runs: Record<string, SwarmRun> = {};
  for (const [name, svc] of Object.entries(services)) {
    runs[name] = swarmRun(isMap(svc) ? svc : {}, networks, opts.project, pins[name]);
  }
  return { files, stackFiles, pins, orders, missing: [...missing].sort(), runs };
}

/** A rendered value with its doubled `$` (kept for docker stack deploy's own interpolation) back to single. */
const undouble = (v: unknown): string => String(v).replace(/\$\$/g, '$');

function swarmRun(def: Doc, networks: Doc, project: string, pin: string | undefined): SwarmRun {
  const env: Array<[string, string]> = [];
  if (Array.isArray(def.environment)) {
    for (const e of def.environment.map(undouble)) {
      const i = e.indexOf('=');
      if (i > 0) env.push([e.slice(0, i), e.slice(i + 1)]);
    }
  } else if (isMap(def.environment)) {
    for (const [k, v] of Object.entries(def.environment)) if (v !== null && v !== undefined) env.push([k, undouble(v)]);
  }
  const keys =
    def.network_mode === 'host'
      ? ['host']
      : Array.isArray(def.networks)
        ? def.networks.map(String)
        : isMap(def.networks)
          ? Object.keys(def.networks)
          : ['default'];
  const names = keys.map((k) => {
    if (k === 'host' && def.network_mode === 'host') return 'host';
    const n = networks[k];
    const ext = isMap(n) ? n.external : undefined;
    const named = isMap(n) ? (n.name ?? (isMap(ext) ? ext.name : undefined)) : undefined;
    if (named !== undefined && named !== null) return undouble(named);
    return ext ? k : `${project}_${k}`;
  });
  return {
    image: pin ?? undouble(def.image),
    env,
    networks: names,
    ...(def.user !== undefined && def.user !== null ? { user: undouble(def.user) } : {}),
    ...(def.working_dir !== undefined && def.working_dir !== null ? { workdir: undouble(def.working_dir) } : {}),
  };
}

// --- what the manager reports -----------------------------------------------------------------------------------

/** The parts of `docker service inspect` the verdict reads. */
export interface ServiceInspect {
  ID: string;
  Version?: { Index?: number };
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    TaskTemplate?: { ContainerSpec?: { Image?: string } };
    Mode?: { Replicated?: { Replicas?: number }; Global?: object; ReplicatedJob?: object; GlobalJob?: object };
  };
  UpdateStatus?: { State?: string; Message?: string } | null;
}

/** One line of `docker service ps --no-trunc --format '{{json .}}'`. */
export interface TaskLine {
  ID: string;
  Name: string;
  Image: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
}

export interface SwarmState {
  services: ServiceInspect[];
  tasks: TaskLine[];
}

/**
 * What the host step prints: a JSON array of services (`docker service inspect`), a line `---`, then one JSON task
 * per line.
 */
export function parseSwarmState(stdout: string): SwarmState {
  const [head = '', ...rest] = stdout.split(/^---$/m);
  let services: ServiceInspect[] = [];
  const text = head.trim();
  if (text) {
    try {
      services = JSON.parse(text) as ServiceInspect[];
    } catch (err) {
      throw new LadingError(`cannot read docker service inspect output: ${(err as Error).message}`);
    }
  }
  const tasks = rest
    .join('---')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as TaskLine];
      } catch {
        return [];
      }
    })
    .map((t) => ({ ...t, Name: t.Name.replace(/^[\s\\_]+/, '') }));
  return { services, tasks };
}

export interface ServiceVerdict {
  service: string;
  state: 'ok' | 'pending' | 'failed';
  /** running/wanted, update state, image — one line for the log. */
  detail: string;
  /** Errors of failed tasks, newest first. */
  errors: string[];
  rolledBack: boolean;
}

export interface Convergence {
  state: 'ok' | 'pending' | 'failed';
  services: ServiceVerdict[];
  rolledBack: boolean;
  /** Every task error seen, for the step's failure message. */
  errors: string[];
}

const word = (s: string) => s.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
const digestOf = (image: string) => /@(sha256:[0-9a-f]{64})/.exec(image)?.[1];

/**
 * Judges a stack: every service's tasks running the digest the release pins (and as many as it wants) → ok; an
 * update swarm rolled back or paused → failed with the task errors; an update or rollback in flight → pending.
 * `before` holds each service's Version.Index from before the deploy: a service the deploy did not change keeps an
 * older update status, which then says nothing about this deploy.
 */
export function convergence(
  state: SwarmState,
  opts: { stack: string; pins: Record<string, string>; services: string[]; before?: Record<string, number> },
): Convergence {
  const verdicts: ServiceVerdict[] = [];
  for (const short of opts.services) {
    const fullName = `${opts.stack}_${short}`;
    const svc = state.services.find((s) => s.Spec.Name === fullName);
    if (!svc) {
      verdicts.push({ service: short, state: 'pending', detail: 'not created yet', errors: [], rolledBack: false });
      continue;
    }
    const specImage = svc.Spec.TaskTemplate?.ContainerSpec?.Image ?? '';
    const want = digestOf(opts.pins[short] ?? '');
    const mine = state.tasks.filter((t) => t.Name.slice(0, t.Name.lastIndexOf('.')) === fullName);
    const errors = mine
      .filter((t) => t.Error && ['failed', 'rejected', 'shutdown', 'orphaned'].includes(word(t.CurrentState)))
      .filter((t) => !want || digestOf(t.Image) === want) // this release's tasks, not old failures
      .map((t) => `${t.Name} on ${t.Node || '?'}: ${word(t.CurrentState)}: ${t.Error.replace(/^"|"$/g, '')}`);
    const changed = opts.before?.[fullName] === undefined || opts.before[fullName] !== svc.Version?.Index;
    const update = changed ? (svc.UpdateStatus?.State ?? '') : '';
    const message = svc.UpdateStatus?.Message ?? '';
    const active = mine.filter((t) => word(t.DesiredState) === 'running');
    const running = active.filter((t) => word(t.CurrentState) === 'running');
    const current = running.filter((t) => !want || digestOf(t.Image) === want);
    const mode = svc.Spec.Mode ?? {};
    const replicas = mode.Replicated ? (mode.Replicated.Replicas ?? 1) : undefined;
    const wanted = replicas ?? Math.max(active.length, 1);
    const detail =
      `${current.length}/${wanted} running${want ? ` ${want.slice(7, 19)}` : ''}` +
      (update ? `, update ${update}` : '');
    const v: ServiceVerdict = { service: short, state: 'pending', detail, errors, rolledBack: false };
    if (update === 'rollback_completed') {
      v.state = 'failed';
      v.rolledBack = true;
      v.detail = `swarm rolled the update back: ${message}`;
    } else if (update === 'paused' || update === 'rollback_paused') {
      v.state = 'failed';
      v.detail = `update ${update.replace('_', ' ')}: ${message}`;
    } else if (update === 'updating' || update === 'rollback_started') {
      v.state = 'pending';
    } else if (want && digestOf(specImage) !== want) {
      v.state = 'failed';
      v.detail = `the service runs ${specImage || '(no image)'}, not ${want}: another deploy changed it`;
    } else if (replicas === 0 || (current.length >= wanted && running.length === active.length)) {
      v.state = 'ok';
    }
    verdicts.push(v);
  }
  const inFlight = verdicts.some((v) => v.state === 'pending');
  const failed = verdicts.some((v) => v.state === 'failed');
  return {
    state: failed && !inFlight ? 'failed' : inFlight ? 'pending' : 'ok',
    services: verdicts,
    rolledBack: verdicts.some((v) => v.rolledBack),
    errors: verdicts.flatMap((v) => v.errors.map((e) => `${v.service}: ${e}`)),
  };
}

/** The one-line summary of a verdict for logs and failure messages. */
export function describeConvergence(c: Convergence): string {
  return c.services.map((s) => `${s.service} ${s.detail}`).join('; ');
}

/** What step_swarm_index printed: each service of the stack with its update index (`name index` lines). */
export function parseServiceIndex(stdout: string): Record<string, number> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((p) => p.length === 2)
      .map(([name, index]) => [name!, Number(index)]),
  );
}

/** What step_swarm_task_logs printed: a `--- <task id>` line before each task's last log lines. */
export function parseTaskLogs(stdout: string): Array<{ task: string; line: string }> {
  const out: Array<{ task: string; line: string }> = [];
  let task = '';
  for (const l of stdout.split('\n')) {
    const m = /^--- (\S+)$/.exec(l);
    if (m) task = m[1]!;
    else if (l.trim()) out.push({ task, line: l });
  }
  return out;
}

const NETWORK_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * What the manager's ops_swarm_hook step needs to run a deploy hook in a one-off container of `service` of a
 * rendered stack: the env file (written into the release dir, 0600, like the stack files that hold the same values)
 * and the step's variables (image, networks to try in order, user, working dir).
 */
export function swarmHookRun(
  stack: Pick<StackRender, 'runs'>,
  service: string,
): { envFileName: string; envFile: string; vars: Record<string, string> } {
  const run = stack.runs[service];
  if (!run) {
    throw new LadingError(
      `the hooks run in service ${service}, which the stack does not define`,
      `set hook-service (or x-lading hooks' service) to one of: ${Object.keys(stack.runs).join(', ')}`,
    );
  }
  for (const [k, v] of run.env) {
    if (/[\r\n]/.test(v) || /[\r\n=]/.test(k)) {
      throw new LadingError(
        `service ${service}'s environment variable ${k.split(/[\r\n]/)[0]} holds a line break, which docker run --env-file cannot carry to a hook's container`,
        'keep hook services to one-line variables, or run the hook in another service (hook-service)',
      );
    }
  }
  if (run.image.startsWith('-') || /\s/.test(run.image)) {
    throw new LadingError(`service ${service} has no usable image for a hook ('${run.image}')`);
  }
  const bad = run.networks.find((n) => !NETWORK_RE.test(n));
  if (bad) throw new LadingError(`service ${service}'s network '${bad}' is not a docker network name`);
  return {
    envFileName: `hook-${service}.env`,
    envFile: run.env.map(([k, v]) => `${k}=${v}\n`).join(''),
    vars: {
      LADING_HOOK_IMAGE: run.image,
      LADING_HOOK_NETWORKS: run.networks.join(' '),
      ...(run.user ? { LADING_HOOK_USER: run.user } : {}),
      ...(run.workdir ? { LADING_HOOK_WORKDIR: run.workdir } : {}),
    },
  };
}
