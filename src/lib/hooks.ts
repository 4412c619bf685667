import { composeDocs } from './compose-model.ts';
import { InputError } from './errors.ts';
import { INPUTS } from './input-table.ts';
import type { Manifest } from './manifest.ts';
import { SERVICE_RE, parseArgv } from './ops.ts';

/**
 * Deploy hooks: commands run at fixed points of a deploy, in a one-off container of the NEW release (compose: its
 * compose config, env and networks, `compose run --rm --no-deps`; swarm: on the manager, `docker run` of the service's
 * new image with its environment, on the stack's network when that is attachable — the manager is the one host):
 *   pre-deploy   once per deploy, on the first host, after its images are pulled and before anything switches
 *                (migrations); a failure aborts the deploy there
 *   pre-switch   on each host, before its containers are switched to the new release
 *   post-switch  on each host, after its switch
 *   post-deploy  once, on the first host, after every host is done (when the deploy succeeded)
 * Declared by inputs (a command each, plus hook-service and hook-timeout) or by the compose file's top-level
 * `x-lading: { hooks: { pre-deploy: { command, service, timeout } } }`; an input wins over x-lading. A runner hook
 * (a local script) is called at pre-deploy and post-deploy too, for notifications.
 */
export const HOOK_NAMES = ['pre-deploy', 'pre-switch', 'post-switch', 'post-deploy'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface Hook {
  name: HookName;
  argv: string[];
  /** The service whose image and config the one-off container gets. */
  service: string;
  /** Seconds before the hook is stopped and counts as failed. */
  timeout: number;
  /** Where it was declared (for messages): the input, or x-lading. */
  source: string;
}

export type Hooks = Partial<Record<HookName, Hook>>;

/** A hook's timeout when neither the input nor x-lading gives one: the hook-timeout input's default. */
export const DEFAULT_HOOK_TIMEOUT = INPUTS['hook-timeout'].default;

interface XHook {
  command?: unknown;
  service?: unknown;
  timeout?: unknown;
}

function xLadingHooks(manifest: Manifest): Record<string, unknown> {
  let hooks: Record<string, unknown> = {};
  for (const doc of composeDocs(manifest.compose?.files ?? [])) {
    const x = (doc as { 'x-lading'?: { hooks?: unknown } })['x-lading']?.hooks;
    if (x && typeof x === 'object') hooks = { ...hooks, ...(x as Record<string, unknown>) }; // later files win
  }
  return hooks;
}

/** The service a hook runs in by default: the first service with a built image, else the first service. */
function defaultService(manifest: Manifest): string | undefined {
  return manifest.images.flatMap((i) => i.services)[0];
}

/** The hook inputs, parsed at the edge (src/settings/host.ts): commands as given, service, timeout, runner hook. */
export interface HookInputs {
  commands: Partial<Record<HookName, string>>;
  service?: string;
  /** Seconds; given, it wins over x-lading's. */
  timeout?: number;
  /** A local script called at pre-deploy and post-deploy (and on failure). */
  runnerHook?: string;
}

/** The hooks of a deploy: the hook inputs, and the manifest's compose files' x-lading. */
export function readHooks(inputs: HookInputs, manifest: Manifest): Hooks {
  const x = xLadingHooks(manifest);
  for (const k of Object.keys(x)) {
    if (!(HOOK_NAMES as readonly string[]).includes(k)) {
      throw new InputError('x-lading', `hooks.${k} is not a hook`, `use ${HOOK_NAMES.join(', ')}`);
    }
  }
  const inputService = inputs.service;
  const inputTimeout = inputs.timeout;
  const hooks: Hooks = {};
  for (const name of HOOK_NAMES) {
    const raw = inputs.commands[name];
    const xh = x[name];
    let argv: string[] = [];
    let service = inputService;
    let timeout: unknown = inputTimeout;
    let source: string = name;
    if (raw) argv = parseArgv(name, raw);
    else if (xh !== undefined && xh !== null) {
      source = `x-lading hooks.${name}`;
      const spec: XHook = Array.isArray(xh) || typeof xh === 'string' ? { command: xh } : (xh as XHook);
      const cmd = spec.command;
      if (Array.isArray(cmd) && cmd.length > 0 && cmd.every((a) => typeof a === 'string')) argv = cmd as string[];
      else if (typeof cmd === 'string') argv = parseArgv(source, cmd);
      else throw new InputError(source, 'needs a command (a list of arguments, or words)');
      if (!inputService && typeof spec.service === 'string') service = spec.service;
      if (inputTimeout === undefined && spec.timeout !== undefined) timeout = spec.timeout;
    }
    if (argv.length === 0) continue;
    service ??= defaultService(manifest);
    if (!service || !SERVICE_RE.test(service)) {
      throw new InputError(
        'hook-service',
        `'${service ?? ''}' is not a service to run ${name} in`,
        'name a compose service',
      );
    }
    const seconds = timeout === undefined ? DEFAULT_HOOK_TIMEOUT : Number(timeout);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86400) {
      throw new InputError('hook-timeout', `'${String(timeout)}' is not a number of seconds (1 to 86400)`);
    }
    hooks[name] = { name, argv, service, timeout: seconds, source };
  }
  return hooks;
}

/** The env a runner hook script gets: what is being deployed, where, and how it went. */
export function runnerHookEnv(e: {
  hook: HookName | 'failure';
  manifest: Manifest;
  release: string;
  hosts: string[];
  project: string;
  result?: string;
  error?: string;
}): Record<string, string> {
  const env: Record<string, string> = {
    LADING_HOOK: e.hook,
    LADING_RELEASE: e.release,
    LADING_PROJECT: e.project,
    LADING_TAG: e.manifest.primary,
    LADING_SHA: e.manifest.source.sha,
    LADING_REPOSITORY: e.manifest.source.repository,
    LADING_HOSTS: e.hosts.join(','),
  };
  if (e.manifest.source.actor) env.LADING_ACTOR = e.manifest.source.actor;
  if (e.result) env.LADING_RESULT = e.result;
  if (e.error) env.LADING_ERROR = e.error.slice(0, 2000);
  return env;
}
