import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { PtyRequest, RemoteProcess } from '../io/remote-process.ts';
import type { HostSpec } from '../lib/deploy-plan.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import {
  type HostStatus,
  type LockInfo,
  type PrunePlan,
  STATUS_SCHEMA,
  type StatusReport,
  argvEnv,
  composeStatus,
  lockReleaseDecision,
  opsHistoryLine,
  parseLock,
  parseOpsFacts,
  parsePruneFacts,
  prunePlan,
  swarmStatus,
  unreachable,
} from '../lib/ops.ts';
import HOST_SCRIPT from '../lib/remote/host.sh.ts';
import OPS_SCRIPT from '../lib/remote/ops.sh.ts';
import SWARM_SCRIPT from '../lib/remote/swarm.sh.ts';
import { envAssignments } from '../lib/shell.ts';
import type { HostSession } from '../io/host-session.ts';
import { baseEnv } from './host/steps.ts';
import type { DeploySettings, HostStageOptions } from './host/types.ts';
import { connectManager, envFor, swarmOf } from './swarm.ts';

/**
 * Day-2 verbs over the same pinned SSH sessions as the deploy: status, logs, exec, lock status/release and prune, for
 * compose hosts (each host of hosts/inventory) and swarm stacks (through the first manager that answers). The host
 * side is src/lib/remote/ops.sh; what its output means is src/lib/ops.ts.
 */

/** The verbs' own settings, parsed at the edge (src/settings/ops.ts). */
export interface LogsSettings {
  service?: string;
  /** Lines per container, or all. */
  tail?: string;
  /** A duration or a date/time docker understands. */
  since?: string;
  follow: boolean;
  timestamps: boolean;
}

export interface ExecSettings {
  service: string;
  /** In a running container of the service, not a one-off one. */
  running: boolean;
  /** Only this host (a label, host, host:port or user@host:port). */
  host?: string;
}

export interface LockSettings {
  /** Release another run's lock when its lease ran out. */
  force: boolean;
  /** Release the lock of this holder (its owner, as lock status shows it). */
  confirm?: string;
}

export interface PruneSettings {
  dryRun: boolean;
}

/** One place a verb runs: a compose host, or a swarm stack's manager. */
interface Place {
  label: string;
  target: 'compose' | 'swarm';
  project: string;
  root: string;
  env: Record<string, string>;
  spec?: HostSpec;
  connect(): Promise<{ session: HostSession; label: string }>;
}

interface Places {
  target: 'compose' | 'swarm';
  settings: DeploySettings;
  places: Place[];
}

async function placesOf(opts: HostStageOptions): Promise<Places> {
  const { target } = opts.settings;
  if (target === 'swarm') {
    const s = swarmOf(opts.settings);
    const project = s.deploy.project;
    if (!project) throw new InputError('project', 'is empty', 'name the stack (the compose project deployed)');
    const label = s.dockerHost && s.local ? s.dockerHost : s.deploy.hosts[0]!.label;
    return {
      target,
      settings: s.deploy,
      places: [
        {
          label,
          target,
          project,
          root: s.deploy.root,
          env: envFor(s, project),
          connect: () => connectManager(s, opts.reporter, opts.deps.connector),
        },
      ],
    };
  }
  const settings = opts.settings.deploy;
  const places = settings.hosts.map((host): Place => {
    const project = host.project ?? settings.project;
    if (!project) {
      throw new InputError(
        'project',
        'is empty',
        'name the compose project deployed on the hosts (or per host in the inventory)',
      );
    }
    const env = baseEnv(settings, project);
    if (host.root) env.LADING_ROOT = host.root;
    return {
      label: host.label,
      target,
      project,
      root: env.LADING_ROOT!,
      env,
      spec: host,
      connect: async () => ({ session: await opts.deps.connector(host, settings, opts.reporter), label: host.label }),
    };
  });
  return { target, settings, places };
}

function scriptsFor(target: Place['target']): string {
  return target === 'swarm' ? `${HOST_SCRIPT}\n${SWARM_SCRIPT}\n${OPS_SCRIPT}` : `${HOST_SCRIPT}\n${OPS_SCRIPT}`;
}

/** Runs ops steps in one round trip; a non-zero exit is a LadingError with the host's last stderr lines. */
async function opsStep(
  session: HostSession,
  place: Place,
  label: string,
  steps: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<string> {
  const res = await session.exec(`${scriptsFor(place.target)}\nlading_ops ${steps}\n`, { env, timeoutMs });
  if (res.code !== 0) {
    const said = res.stderr.trim().split('\n').filter(Boolean).slice(-12).join('\n') || `exit status ${res.code}`;
    throw new LadingError(`${label}: ${steps.replace(/ops_/g, '')} failed: ${said}`);
  }
  return res.stdout;
}

/** Runs `fn` for every place, at most `limit` at once, results in the places' order. */
async function eachPlace<T>(places: Place[], limit: number, fn: (p: Place) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(places.length);
  let next = 0;
  const worker = async () => {
    while (next < places.length) {
      const i = next++;
      out[i] = await fn(places[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, places.length) }, worker));
  return out;
}

async function withSession<T>(place: Place, fn: (s: HostSession, label: string) => Promise<T>): Promise<T> {
  const { session, label } = await place.connect();
  try {
    return await fn(session, label);
  } finally {
    await session.close();
  }
}

// ---------------------------------------------------------------------------------------------------- status

/** Every host's (or the stack's) current release, containers, drift and lock; `ok` is false when one is not healthy. */
export async function runStatusStage(opts: HostStageOptions): Promise<StatusReport> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const hosts = await eachPlace(places, 8, async (place): Promise<HostStatus> => {
    try {
      return await withSession(place, async (session, label) => {
        const step = place.target === 'swarm' ? 'ops_swarm_status' : 'ops_status';
        const out = await opsStep(session, place, label, step, place.env, settings.stepTimeoutMs);
        const facts = parseOpsFacts(out, label);
        return place.target === 'swarm'
          ? swarmStatus(facts, { host: label, project: place.project })
          : composeStatus(facts, { host: label, root: place.root, project: place.project });
      });
    } catch (err) {
      return unreachable(place.label, place.target, place.project, describeError(err));
    }
  });
  return { schema: STATUS_SCHEMA, time: now().toISOString(), ok: hosts.every((h) => h.healthy), hosts };
}

// ---------------------------------------------------------------------------------------------------- streamed

/**
 * Uploads a one-shot script (it removes itself first) into the project's directory and starts it with live
 * streams: the env travels inside the file (0600), so stdin stays the caller's.
 */
async function startScript(
  session: HostSession,
  place: Place,
  label: string,
  steps: string,
  env: Record<string, string>,
  pty?: PtyRequest,
): Promise<RemoteProcess> {
  if (!session.spawn) throw new LadingError(`${label}: this connection cannot stream a command`);
  const path = `${env.LADING_ROOT}/${env.LADING_PROJECT}/.lading-ops-${randomBytes(8).toString('hex')}.sh`;
  const script = `rm -f "$0"\n${envAssignments(env)}\n${scriptsFor(place.target)}\nlading_ops ${steps}\n`;
  try {
    await session.upload(path, script, 0o600);
  } catch (err) {
    throw new LadingError(
      `${label}: cannot write to ${env.LADING_ROOT}/${env.LADING_PROJECT}: ${describeError(err)}`,
      `is ${env.LADING_PROJECT} deployed there? (lading status shows what runs)`,
    );
  }
  return session.spawn(path, pty ? { pty } : {});
}

/** Copies a stream into `out` line by line, each formatted; pauses the source while `out` is full. */
function pipeLines(
  from: NodeJS.ReadableStream,
  out: NodeJS.WritableStream,
  format: (line: string) => string,
): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return new Promise((resolve) => {
    from.on('data', (chunk: Buffer | string) => {
      const text = partial + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
      const lines = text.split('\n');
      partial = lines.pop()!;
      if (lines.length === 0) return;
      if (!out.write(lines.map(format).join(''))) {
        from.pause();
        out.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      const rest = partial + decoder.end();
      if (rest) out.write(format(rest));
      resolve();
    });
    from.on('close', () => resolve());
  });
}

export interface LogsOptions extends HostStageOptions {
  logs: LogsSettings;
  out: NodeJS.WritableStream;
  /** Aborting ends every host's log readers (Ctrl-C on the CLI). */
  signal?: AbortSignal;
  /** One JSON object per line: {"host", "line"}. */
  json?: boolean;
}

export interface HostOutcome {
  host: string;
  code: number;
  error?: string;
}

/**
 * Logs of one service or all, from every host at once, each line as `[host] <service>-<n> | <line>`, streamed as
 * they come (nothing is held in memory beyond a line). With follow, runs until the signal aborts.
 */
export async function runLogsStage(opts: LogsOptions): Promise<HostOutcome[]> {
  const { places } = await placesOf(opts);
  const env: Record<string, string> = {};
  const { service, tail, since, follow, timestamps } = opts.logs;
  if (service) env.LADING_SERVICE = service;
  if (tail) env.LADING_TAIL = tail;
  if (since) env.LADING_SINCE = since;
  if (follow) env.LADING_FOLLOW = '1';
  if (timestamps) env.LADING_TIMESTAMPS = '1';
  return eachPlace(places, places.length, async (place): Promise<HostOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const step = place.target === 'swarm' ? 'ops_swarm_logs' : 'ops_logs';
        const proc = await startScript(session, place, label, step, { ...place.env, ...env });
        let killer: NodeJS.Timeout | undefined;
        const stop = () => {
          proc.endInput();
          killer = setTimeout(() => proc.kill(), 5000);
        };
        if (opts.signal?.aborted) stop();
        opts.signal?.addEventListener('abort', stop, { once: true });
        let stderr = '';
        proc.stderr.on('data', (c: Buffer) => {
          stderr = (stderr + c.toString('utf8')).slice(-4000);
        });
        const format = opts.json
          ? (line: string) => `${JSON.stringify({ host: label, line })}\n`
          : (line: string) => `[${label}] ${line}\n`;
        const piped = pipeLines(proc.stdout, opts.out, format);
        const code = await proc.exit;
        await piped;
        if (killer) clearTimeout(killer);
        opts.signal?.removeEventListener('abort', stop);
        if (opts.signal?.aborted) return { host: label, code: 0 };
        const said = stderr.trim().split('\n').filter(Boolean).slice(-5).join('\n');
        return code === 0 ? { host: label, code } : { host: label, code, error: said || `exit status ${code}` };
      });
    } catch (err) {
      return { host: place.label, code: 1, error: describeError(err) };
    }
  });
}

export interface ExecOptions extends HostStageOptions {
  exec: ExecSettings;
  argv: string[];
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The caller's terminal: the command gets a PTY of this size (stdin is then that terminal, in raw mode). */
  pty?: PtyRequest;
  /** Called with a function to forward terminal resizes to. */
  onResize?: (resize: (rows: number, cols: number) => void) => () => void;
}

/**
 * Runs a command in a new one-off container of the current release (compose run --rm: its config, env and
 * networks), or with `running` in a running container of the service; on `host` or on every host in order,
 * stopping at the first that fails. The result's code is the command's exit status.
 */
export async function runExecStage(opts: ExecOptions): Promise<{ code: number; hosts: HostOutcome[] }> {
  const { places } = await placesOf(opts);
  const { service, running, host: only } = opts.exec;
  const env: Record<string, string> = { LADING_SERVICE: service, ...argvEnv(opts.argv) };
  if (running) env.LADING_RUNNING = '1';
  if (opts.pty) env.LADING_TTY = '1';
  const chosen = only
    ? places.filter(
        (p) =>
          p.label === only ||
          p.spec?.host === only ||
          `${p.spec?.host}:${p.spec?.port}` === only ||
          `${p.spec?.user}@${p.spec?.host}:${p.spec?.port}` === only ||
          (p.target === 'swarm' && places.length === 1),
      )
    : places;
  if (chosen.length === 0) {
    throw new InputError('host', `'${only}' is none of the hosts (${places.map((p) => p.label).join(', ')})`);
  }
  const hosts: HostOutcome[] = [];
  for (const place of chosen) {
    if (chosen.length > 1) opts.stderr.write(`== ${place.label}\n`);
    const outcome = await withSession(place, async (session, label): Promise<HostOutcome> => {
      const step = place.target === 'swarm' ? 'ops_swarm_exec' : 'ops_exec';
      if (place.target === 'swarm' && !env.LADING_RUNNING) {
        opts.reporter.info(
          `[${label}] one-off container of ${place.project}_${service} with the service's environment`,
        );
      }
      const proc = await startScript(session, place, label, step, { ...place.env, ...env }, opts.pty);
      const unresize = opts.pty && opts.onResize ? opts.onResize((r, c) => proc.resize(r, c)) : undefined;
      // stdin: the terminal, or (one host) the caller's input; otherwise none
      const input = opts.pty || chosen.length === 1 ? opts.stdin : undefined;
      if (input) input.pipe(proc.stdin as NodeJS.WritableStream, { end: true });
      else proc.endInput();
      proc.stdout.on('data', (c: Buffer) => opts.stdout.write(c));
      proc.stderr.on('data', (c: Buffer) => opts.stderr.write(c));
      const code = await proc.exit;
      if (input) input.unpipe(proc.stdin as NodeJS.WritableStream);
      unresize?.();
      return { host: label, code };
    }).catch((err: unknown) => ({ host: place.label, code: 1, error: describeError(err) }));
    hosts.push(outcome);
    if (outcome.error) opts.stderr.write(`lading exec: ${outcome.error}\n`);
    if (outcome.code !== 0) break;
  }
  return { code: hosts.find((h) => h.code !== 0)?.code ?? 0, hosts };
}

// ---------------------------------------------------------------------------------------------------- lock

export interface LockOutcome {
  host: string;
  lock?: LockInfo;
  released?: boolean;
  /** Why it was (not) released. */
  why?: string;
  hint?: string;
  error?: string;
}

/**
 * `lock status` (release false) or `lock release`: this run's own lock always; another's only with force, when its
 * lease has run out or `confirm` names its holder. A release is compare-and-delete (the lock as read) and recorded in
 * the history.
 */
export async function runLockStage(
  opts: HostStageOptions & { lock: LockSettings },
  release: boolean,
): Promise<LockOutcome[]> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const { force, confirm } = opts.lock;
  return eachPlace(places, 8, async (place): Promise<LockOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const facts = parseOpsFacts(
          await opsStep(session, place, label, 'ops_lock_read', place.env, settings.stepTimeoutMs),
          label,
        );
        const lock = parseLock(facts.lock, facts.now);
        const out: LockOutcome = { host: label, ...(lock ? { lock } : {}) };
        if (!release) return out;
        const decision = lockReleaseDecision(lock, { owner: settings.owner, force, ...(confirm ? { confirm } : {}) });
        out.released = decision.release;
        out.why = decision.why;
        if (decision.hint) out.hint = decision.hint;
        if (!decision.release || !lock) return out;
        const line = opsHistoryLine(now(), 'lock-release', 'success', settings.owner, {
          lock: lock.raw,
          holder: lock.owner,
          reason: decision.why,
        });
        await opsStep(
          session,
          place,
          label,
          'ops_lock_release',
          { ...place.env, LADING_LOCK_SEEN: lock.raw, LADING_HISTORY_LINE: line },
          settings.stepTimeoutMs,
        );
        opts.reporter.info(`[${label}] released the lock of ${lock.owner}: ${decision.why}`);
        return out;
      });
    } catch (err) {
      return { host: place.label, error: describeError(err) };
    }
  });
}

// ---------------------------------------------------------------------------------------------------- prune

export interface PruneOutcome {
  host: string;
  dryRun: boolean;
  plan?: PrunePlan;
  /** What the host said while removing (removed / kept lines). */
  log?: string[];
  error?: string;
}

/**
 * Removes releases beyond keep-releases (never the current one) and the images no kept release pins and no container
 * uses, under the deploy lock; with dry-run, only says what would go and how much space that frees.
 */
export async function runPruneStage(opts: HostStageOptions & { prune: PruneSettings }): Promise<PruneOutcome[]> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const { dryRun } = opts.prune;
  return eachPlace(places, settings.maxParallel, async (place): Promise<PruneOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const run = (steps: string, env: Record<string, string> = {}) =>
          opsStep(session, place, label, steps, { ...place.env, ...env }, settings.stepTimeoutMs);
        if (dryRun) {
          return { host: label, dryRun, plan: prunePlan(parsePruneFacts(await run('ops_prune_facts')), settings.keep) };
        }
        await run('lock');
        try {
          const plan = prunePlan(parsePruneFacts(await run('ops_prune_facts')), settings.keep);
          // a swarm manager's images belong to the swarm's tasks: only its releases go
          if (place.target === 'swarm') plan.images = [];
          const said = await run('ops_prune_apply history', {
            LADING_PRUNE_RELEASES: plan.releases.map((r) => r.id).join('\n'),
            LADING_PRUNE_IMAGES: plan.images.map((i) => i.id).join('\n'),
            LADING_HISTORY_LINE: opsHistoryLine(now(), 'prune', 'success', settings.owner, {
              pruned: plan.releases.map((r) => r.id),
              removedImages: plan.images.map((i) => i.id),
            }),
          });
          const log = said.split('\n').filter(Boolean);
          for (const l of log) opts.reporter.info(`[${label}] ${l}`);
          return { host: label, dryRun, plan, log };
        } finally {
          await run('unlock').catch(() => undefined);
        }
      });
    } catch (err) {
      return { host: place.label, dryRun, error: describeError(err) };
    }
  });
}
