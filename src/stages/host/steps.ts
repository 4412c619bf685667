import type { HostSession } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import { StepShell } from '../../io/step-shell.ts';
import { type HostSpec, isFactLine, parseFacts, parseHistory } from '../../lib/deploy-plan.ts';
import { LadingError } from '../../lib/errors.ts';
import HOST_SCRIPT from '../../lib/remote/host.sh.ts';
import OPS_SCRIPT from '../../lib/remote/ops.sh.ts';
import SWARM_SCRIPT from '../../lib/remote/swarm.sh.ts';
import { envAssignments } from '../../lib/shell.ts';
import type { DeploySettings, HostReleases } from './types.ts';

/** Who a step runs for: the host's label (log prefix), where its lines go, and the step timeout. */
export interface StepContext {
  host: string;
  reporter: Reporter;
  timeoutMs: number;
}

/** Runs named host steps (space-separated, one round trip) with an env on one host; stdout back. */
export type RunStep = (steps: string, env: Record<string, string>) => Promise<string>;

/** The steps of host.sh (`lading_one`): the names a compose step call may use (a unit test holds them to the script). */
export const HOST_STEPS = [
  ...['lock', 'unlock', 'facts', 'health', 'history_read', 'release_manifest', 'image_facts', 'check_paths'],
  ...['mkrelease', 'pull', 'up', 'switch', 'history', 'prune', 'fetch', 'load'],
  ...['proxy_ensure', 'up_others', 'rolling_start', 'rolling_gate', 'rolling_abort', 'proxy_switch'],
  ...['rolling_retire', 'rolling_undrain', 'proxy_maintenance', 'proxy_forget'],
] as const;
/** swarm.sh's own steps (`lading_swarm`); a swarm manager runs host.sh's too. */
export const SWARM_STEPS = [
  ...['swarm_facts', 'swarm_index', 'swarm_deploy', 'swarm_state', 'swarm_nodes', 'swarm_task_logs'],
] as const;
/** ops.sh's own steps (`lading_ops`, the day-2 verbs and hooks); its entry runs host.sh's steps too. */
export const OPS_STEPS = [
  ...['ops_status', 'ops_swarm_status', 'ops_lock_read', 'ops_lock_release', 'ops_prune_facts', 'ops_prune_apply'],
  ...['ops_logs', 'ops_exec', 'ops_hook', 'ops_swarm_hook', 'ops_swarm_logs', 'ops_swarm_exec'],
] as const;

/** Where steps run: the script sent once per shell and its entry function (compose: host.sh; swarm: + swarm.sh). */
interface StepDriver {
  entry: string;
  preamble: string;
  /** The step names its entry function knows: a call naming another fails here, before anything runs. */
  steps: ReadonlySet<string>;
  // One step shell per session and driver: the scripts are sent once per connection, each step is one round trip.
  shells: WeakMap<HostSession, Promise<StepShell>>;
  /** The steps' output is data only (the day-2 verbs): nothing of it is logged. */
  quiet?: boolean;
  /** How a failed call names its steps in the error. */
  describe?: (names: string) => string;
}
const COMPOSE: StepDriver = {
  entry: 'lading_step',
  preamble: HOST_SCRIPT,
  steps: new Set(HOST_STEPS),
  shells: new WeakMap(),
};
const SWARM: StepDriver = {
  entry: 'lading_swarm',
  preamble: `${HOST_SCRIPT}\n${SWARM_SCRIPT}`,
  steps: new Set([...HOST_STEPS, ...SWARM_STEPS]),
  shells: new WeakMap(),
};

const OPS_DRIVER = {
  entry: 'lading_ops',
  quiet: true,
  describe: (names: string) => names.replace(/ops_/g, ''),
} as const;
const OPS: StepDriver = {
  ...OPS_DRIVER,
  preamble: `${HOST_SCRIPT}\n${OPS_SCRIPT}`,
  steps: new Set([...HOST_STEPS, ...OPS_STEPS]),
  shells: new WeakMap(),
};
// on a swarm manager: swarm.sh too (ops_swarm_status reads the stack with its swarm_state)
const SWARM_OPS: StepDriver = {
  ...OPS_DRIVER,
  preamble: `${HOST_SCRIPT}\n${SWARM_SCRIPT}\n${OPS_SCRIPT}`,
  steps: new Set([...HOST_STEPS, ...OPS_STEPS]),
  shells: new WeakMap(),
};

// Data steps (history, a release's manifest, the swarm's polls) are not log material.
const QUIET = /swarm_state|swarm_index|history_read|release_manifest/;

async function stepShell(session: HostSession, host: string, driver: StepDriver): Promise<StepShell | undefined> {
  if (!session.shell) return undefined;
  let shell = driver.shells.get(session);
  if (!shell || !(await shell.then((s) => s.alive).catch(() => false))) {
    shell = session.shell().then((proc) => StepShell.start(proc, driver.preamble, host));
    driver.shells.set(session, shell);
  }
  return shell;
}

/**
 * Runs named steps of a driver's script (`then`: more script after them, such as release files in here-documents)
 * on the session's step shell, or as one exec when the session has none; a non-zero exit is a LadingError carrying
 * the host's stderr.
 */
async function runSteps(
  driver: StepDriver,
  session: HostSession,
  names: string,
  env: Record<string, string>,
  ctx: StepContext,
  then: string,
): Promise<string> {
  const unknown = names.split(/\s+/).filter((n) => n && !driver.steps.has(n));
  if (unknown.length > 0)
    throw new LadingError(`${ctx.host}: no host step named ${unknown.join(', ')} (${driver.entry})`);
  const script = `${driver.entry} ${names}\n${then}`;
  const opts = {
    env,
    timeoutMs: ctx.timeoutMs,
    ...(driver.quiet
      ? {}
      : {
          onStderr: (chunk: string) => {
            for (const line of chunk.split('\n')) if (line.trim()) ctx.reporter.info(`[${ctx.host}] ${line}`);
          },
        }),
  };
  const shell = await stepShell(session, ctx.host, driver);
  const res = shell ? await shell.run(script, opts) : await session.exec(`${driver.preamble}\n${script}`, opts);
  if (res.code !== 0) {
    const said = res.stderr.trim().split('\n').filter(Boolean).slice(-12).join('\n') || `exit status ${res.code}`;
    throw new LadingError(`${ctx.host}: ${driver.describe?.(names) ?? `step ${names}`} failed: ${said}`);
  }
  // facts' key=value lines are not log material either
  if (!driver.quiet && !QUIET.test(names)) {
    for (const line of res.stdout.split('\n')) {
      if (line.trim() && !isFactLine(line)) ctx.reporter.info(`[${ctx.host}] ${line}`);
    }
  }
  return res.stdout;
}

/** Runs named steps of one driver's script (`then`: script after them) on a session. */
export type StepRunner = (
  session: HostSession,
  names: string,
  env: Record<string, string>,
  ctx: StepContext,
  then?: string,
) => Promise<string>;

const runnerOf =
  (driver: StepDriver): StepRunner =>
  (session, names, env, ctx, then = '') =>
    runSteps(driver, session, names, env, ctx, then);

/** Runs steps of host.sh (the compose target), one long-lived shell per session. */
export const step: StepRunner = runnerOf(COMPOSE);

/**
 * Runs steps of host.sh + swarm.sh on the manager, like the compose steps: one long-lived shell per manager
 * connection (both scripts sent once), so a step costs a round trip (the swarm_state poll runs many).
 */
export const swarmStep: StepRunner = runnerOf(SWARM);

/**
 * Runs steps of ops.sh (the day-2 verbs) on a compose host or a swarm manager, on the same long-lived shell scheme;
 * their output is data, returned and never logged.
 */
export const opsStep = (target: 'compose' | 'swarm'): StepRunner => runnerOf(target === 'swarm' ? SWARM_OPS : OPS);

/** The scripts ops steps need on a compose host or a swarm manager (for a one-shot script file: logs, exec). */
export const opsScripts = (target: 'compose' | 'swarm'): string => (target === 'swarm' ? SWARM_OPS : OPS).preamble;

/**
 * Script lines that write a release's files on the host in the step that creates its directory: name and mode as
 * quoted exports, the content as base64 in a here-document (its alphabet cannot contain the terminator).
 */
export function releaseFilesScript(
  files: Array<{ name: string; content: string | Buffer; mode: number; sha256?: string; dir?: boolean }>,
): string {
  return files
    .map((f) => {
      const b64 = Buffer.from(f.content)
        .toString('base64')
        .replace(/.{1,76}/g, '$&\n');
      const vars = envAssignments({
        LADING_FILE_NAME: f.name,
        LADING_FILE_MODE: f.mode.toString(8),
        LADING_FILE_SHA256: f.sha256 ?? '',
        LADING_FILE_DIR: f.dir ? '1' : '0',
      });
      return `${vars}\nlading_write_file <<'LADING_EOF'\n${b64}LADING_EOF\n`;
    })
    .join('');
}

export function baseEnv(settings: DeploySettings, project: string): Record<string, string> {
  return {
    LADING_ROOT: settings.root,
    LADING_PROJECT: project,
    LADING_OWNER: settings.lockOwner ?? settings.owner,
    LADING_LOCK_TTL: String(settings.lockTtl),
    LADING_LOCK_WAIT: String(settings.lockWait),
    LADING_HEALTH_TIMEOUT: String(settings.healthTimeout),
    LADING_HEALTH_STABLE: String(settings.healthStable),
    LADING_KEEP: String(settings.keep),
    LADING_STEP_TIMEOUT: String(Math.round(settings.stepTimeoutMs / 1000)),
    LADING_PRUNE_IMAGES: settings.pruneImages ? '1' : '0',
    ...(settings.probeUrl ? { LADING_PROBE_URL: settings.probeUrl } : {}),
  };
}

/** The base env with a host's inventory overrides (root, project, probe URL). */
export function forHost(base: Record<string, string>, host: HostSpec): Record<string, string> {
  const env = { ...base };
  if (host.root) env.LADING_ROOT = host.root;
  if (host.project) env.LADING_PROJECT = host.project;
  if (host.probeUrl) env.LADING_PROBE_URL = host.probeUrl;
  return env;
}

/** What one host keeps: its releases, the current one, and the history (`factsStep`: the target's facts step). */
export async function releasesOf(
  label: string,
  run: (steps: string) => Promise<string>,
  factsStep = 'facts',
): Promise<HostReleases> {
  const facts = parseFacts(await run(factsStep));
  const history = parseHistory(await run('history_read'));
  return { host: label, releases: facts.releases, history, ...(facts.current ? { current: facts.current } : {}) };
}
