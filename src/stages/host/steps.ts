import type { HostSession } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import { StepShell } from '../../io/step-shell.ts';
import { type HostSpec, parseFacts, parseHistory } from '../../lib/deploy-plan.ts';
import { LadingError } from '../../lib/errors.ts';
import HOST_SCRIPT from '../../lib/remote/host.sh.ts';
import SWARM_SCRIPT from '../../lib/remote/swarm.sh.ts';
import { envAssignments } from '../../lib/shell.ts';
import type { DeploySettings } from '../../settings/deploy.ts';
import type { HostReleases } from './types.ts';

/** Who a step runs for: the host's label (log prefix), where its lines go, and the step timeout. */
export interface StepContext {
  host: string;
  reporter: Reporter;
  timeoutMs: number;
}

// One step shell per session and script: the scripts are sent once per connection, each step is one round trip.
const shells = new WeakMap<HostSession, Promise<StepShell>>();
const swarmShells = new WeakMap<HostSession, Promise<StepShell>>();
const SWARM_PREAMBLE = `${HOST_SCRIPT}\n${SWARM_SCRIPT}`;

async function stepShell(
  session: HostSession,
  host: string,
  preamble = HOST_SCRIPT,
  cache = shells,
): Promise<StepShell | undefined> {
  if (!session.shell) return undefined;
  let shell = cache.get(session);
  if (!shell || !(await shell.then((s) => s.alive).catch(() => false))) {
    shell = session.shell().then((proc) => StepShell.start(proc, preamble, host));
    cache.set(session, shell);
  }
  return shell;
}

/**
 * Runs named steps of the host script (`then`: more script after them, such as release files in here-documents);
 * a non-zero exit is a LadingError carrying the host's stderr.
 */
export async function step(
  session: HostSession,
  name: string,
  env: Record<string, string>,
  ctx: StepContext,
  then = '',
): Promise<string> {
  const script = `lading_step ${name}\n${then}`;
  const opts = {
    env,
    timeoutMs: ctx.timeoutMs,
    onStderr: (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) ctx.reporter.info(`[${ctx.host}] ${line}`);
    },
  };
  const shell = await stepShell(session, ctx.host);
  const res = shell ? await shell.run(script, opts) : await session.exec(`${HOST_SCRIPT}\n${script}`, opts);
  if (res.code !== 0) {
    const said = res.stderr.trim().split('\n').filter(Boolean).slice(-12).join('\n') || `exit status ${res.code}`;
    throw new LadingError(`${ctx.host}: step ${name} failed: ${said}`);
  }
  // Data steps (history, a release's manifest) are not log material; facts' key=value lines neither.
  if (!/history_read|release_manifest/.test(name)) {
    for (const line of res.stdout.split('\n')) {
      if (line.trim() && !/^(compose|current|release)=/.test(line)) ctx.reporter.info(`[${ctx.host}] ${line}`);
    }
  }
  return res.stdout;
}

const QUIET = /swarm_state|swarm_index|history_read|release_manifest/;

/** Runs steps of host.sh + swarm.sh on the manager (one shell per session); a non-zero exit is a LadingError with the manager's stderr. */
export async function swarmStep(
  session: HostSession,
  names: string,
  env: Record<string, string>,
  ctx: StepContext,
  then = '',
): Promise<string> {
  const script = `lading_swarm ${names}\n${then}`;
  const opts = {
    env,
    timeoutMs: ctx.timeoutMs,
    onStderr: (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) ctx.reporter.info(`[${ctx.host}] ${line}`);
    },
  };
  // Like the compose steps: one long-lived shell per manager connection (host.sh + swarm.sh sent once), so a step
  // costs a round trip, not a new SSH channel that re-sends both scripts (the swarm_state poll runs many).
  const shell = await stepShell(session, ctx.host, SWARM_PREAMBLE, swarmShells);
  const res = shell ? await shell.run(script, opts) : await session.exec(`${SWARM_PREAMBLE}\n${script}`, opts);
  if (res.code !== 0) {
    const said = res.stderr.trim().split('\n').filter(Boolean).slice(-12).join('\n') || `exit status ${res.code}`;
    throw new LadingError(`${ctx.host}: step ${names} failed: ${said}`);
  }
  if (!QUIET.test(names)) {
    for (const line of res.stdout.split('\n')) {
      if (line.trim() && !/^(compose|current|release)=/.test(line)) ctx.reporter.info(`[${ctx.host}] ${line}`);
    }
  }
  return res.stdout;
}

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
