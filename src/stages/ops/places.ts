import type { HostSession } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import type { HostSpec } from '../../lib/deploy-plan.ts';
import { InputError } from '../../lib/errors.ts';
import { baseEnv, forHost, opsStep as runOpsSteps } from '../host/steps.ts';
import type { DeploySettings, HostStageOptions } from '../host/types.ts';
import { connectManager, envFor, swarmOf } from '../swarm.ts';

/**
 * Day-2 verbs over the same pinned SSH sessions as the deploy: status, logs, exec, lock status/release and prune, for
 * compose hosts (each host of hosts/inventory) and swarm stacks (through the first manager that answers). The host
 * side is src/lib/remote/ops.sh; what its output means is src/lib/ops.ts.
 */

/** One place a verb runs: a compose host, or a swarm stack's manager. */
export interface Place {
  label: string;
  target: 'compose' | 'swarm';
  project: string;
  root: string;
  env: Record<string, string>;
  spec?: HostSpec;
  /** what `exec --host` may call it: a compose host's label and address forms; a swarm stack's managers' and docker-host */
  names: string[];
  connect(): Promise<{ session: HostSession; label: string }>;
}

/** The ways a host can be named: its label, host, host:port and user@host:port. */
const namesOf = (h: HostSpec): string[] => [h.label, h.host, `${h.host}:${h.port}`, `${h.user}@${h.host}:${h.port}`];

export interface Places {
  target: 'compose' | 'swarm';
  settings: DeploySettings;
  places: Place[];
}

export async function placesOf(opts: HostStageOptions): Promise<Places> {
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
          names: [label, ...(s.dockerHost ? [s.dockerHost] : []), ...s.deploy.hosts.flatMap(namesOf)],
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
    const env = forHost(baseEnv(settings, project), host); // the deploy's env for this host: its root, its project
    return {
      label: host.label,
      target,
      project,
      root: env.LADING_ROOT!,
      env,
      spec: host,
      names: namesOf(host),
      connect: async () => ({ session: await opts.deps.connector(host, settings, opts.reporter), label: host.label }),
    };
  });
  return { target, settings, places };
}

/** Runs ops steps in one round trip; a non-zero exit is a LadingError with the host's last stderr lines. */
export function opsStep(
  session: HostSession,
  place: Place,
  label: string,
  steps: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<string> {
  return runOpsSteps(place.target)(session, steps, env, { host: label, reporter: UNUSED, timeoutMs });
}

// ops steps log nothing (their output is data): the step runner never calls its reporter
const UNUSED: Reporter = { info: () => {}, warning: () => {}, group: (_n, f) => f(), secret: () => {} };

/** Runs `fn` for every place, at most `limit` at once, results in the places' order. */
export async function eachPlace<T>(places: Place[], limit: number, fn: (p: Place) => Promise<T>): Promise<T[]> {
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

export async function withSession<T>(place: Place, fn: (s: HostSession, label: string) => Promise<T>): Promise<T> {
  const { session, label } = await place.connect();
  try {
    return await fn(session, label);
  } finally {
    await session.close();
  }
}

export interface HostOutcome {
  host: string;
  code: number;
  error?: string;
}
