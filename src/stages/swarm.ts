import { checkManifestPolicy } from '../lib/compose-policy.ts';
import type { Connector, HostSession } from '../io/host-session.ts';
import { LocalSession } from '../io/local-host.ts';
import { deferUntilGroup, type Reporter } from '../io/reporter.ts';
import { deployEnv, envMasks, releaseId, rollbackTarget } from '../lib/deploy-plan.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import { legacyEnvWarning, type Manifest } from '../lib/manifest.ts';
import {
  type Convergence,
  type StackRender,
  type SwarmState,
  convergence,
  describeConvergence,
  parseServiceIndex,
  parseSwarmState,
  parseTaskLogs,
  renderStack,
  swarmHookRun,
} from '../lib/swarm-plan.ts';
import { storeImages } from './host/images.ts';
import { type FlowOptions, type HostSteps, SWARM_DRIVER, onHost } from './host/flow.ts';
import { baseEnv, releaseFilesScript, releasesOf, swarmStep } from './host/steps.ts';
import type {
  DeployResult,
  DeployStageOptions,
  HostDeps,
  HostReleases,
  HostSettings,
  HostStageOptions,
  ShippingSettings,
  SwarmSettings,
} from './host/types.ts';
import { DeployHooks } from './hooks.ts';

/**
 * Docker Swarm as a deploy target. The manager is reached like a compose host (SSH with pinned keys, or this
 * machine with docker-host as DOCKER_HOST) and keeps the same layout under root/project: releases/<id>/ with the
 * rendered, digest-pinned stack files, current, history.jsonl and the lock. Swarm rolls tasks over and back by
 * itself; lading deploys the stack, waits for it to converge and records what happened.
 */

/** The swarm settings of a swarm stage (parsed at the edge with target swarm). */
export function swarmOf(settings: HostSettings): SwarmSettings {
  if (!settings.swarm) throw new InputError('target', 'is not swarm', 'set target: swarm for a swarm stack');
  return settings.swarm;
}

/** The first manager that answers (hosts are tried in order: any manager of a swarm can deploy to it). */
export async function connectManager(
  s: SwarmSettings,
  reporter: Reporter,
  connector: Connector,
): Promise<{ session: HostSession; label: string }> {
  if (s.local) {
    return { session: new LocalSession({ ...process.env, DOCKER_HOST: s.dockerHost! }), label: s.dockerHost! };
  }
  const errors: string[] = [];
  for (const host of s.deploy.hosts) {
    try {
      return { session: await connector(host, s.deploy, reporter), label: host.label };
    } catch (err) {
      errors.push(`${host.label}: ${describeError(err)}`);
      if (s.deploy.hosts.length > 1) reporter.warning(`manager ${host.label} is not reachable; trying the next one`);
    }
  }
  throw new LadingError(`no swarm manager reachable:\n${errors.join('\n')}`);
}

/** Registry-less images are pinned by image ID: the stack deploy must not look them up in a registry. */
function resolveEnv(manifest: Manifest, env: Record<string, string>): Record<string, string> {
  return storeImages(manifest).length > 0 ? { ...env, LADING_RESOLVE_IMAGE: 'never' } : env;
}

/**
 * Registry-less images on a swarm: every node that can run tasks needs them before the stack deploy. A single-node
 * swarm gets them through the manager's connection; a bigger one through a connection to each node listed in hosts
 * (the manager first). A swarm with more nodes than lading can reach is refused: publish to a registry instead.
 */
async function loadOnNodes(
  manifest: Manifest,
  h: HostSteps,
  env: Record<string, string>,
  s: SwarmSettings,
  deps: HostDeps,
  shipping: ShippingSettings,
): Promise<void> {
  if (storeImages(manifest).length === 0) return;
  const nodes = (await h.runner('swarm_nodes', env)).split('\n').filter(Boolean);
  const shipper = deps.shipper(shipping.store, h.ctx.reporter, shipping.fetch);
  const ship = (session: HostSession, label: string) =>
    shipper.ensure(manifest, { label, dir: `${env.LADING_ROOT}/${env.LADING_PROJECT}`, session }, (name, extra) =>
      swarmStep(session, name, { ...env, ...extra }, { ...h.ctx, host: label }),
    );
  try {
    if (nodes.length <= 1) {
      await ship(h.session, h.label);
      return;
    }
    const others = s.local ? [] : s.deploy.hosts.filter((x) => x.label !== h.label);
    if (others.length + 1 < nodes.length) {
      throw new LadingError(
        `the swarm has ${nodes.length} nodes (${nodes.join(', ')}) and this manifest's images travel without a registry: ` +
          `each node must load them, but only ${others.length + 1} can be reached (hosts)`,
        'list every node in hosts (the manager first) so lading can load the images on each, or publish them to a registry',
      );
    }
    await ship(h.session, h.label);
    for (const x of others) {
      const session = await deps.connector(x, s.deploy, h.ctx.reporter);
      try {
        await ship(session, x.label);
      } finally {
        await session.close();
      }
    }
  } finally {
    await shipper.close();
  }
}

export function envFor(s: SwarmSettings, project: string): Record<string, string> {
  const env = baseEnv(s.deploy, project);
  if (s.dockerHost) env.LADING_DOCKER_HOST = s.dockerHost;
  return env;
}

/**
 * Deploys release `release` (its files already on the manager) and waits until the stack converges, swarm gives
 * up on it, or health-timeout passes.
 */
async function deployAndWait(
  h: HostSteps,
  env: Record<string, string>,
  logins: Record<string, string>,
  stack: Pick<StackRender, 'pins' | 'orders'>,
  s: SwarmSettings,
  sleep: HostDeps['sleep'],
): Promise<Convergence & { logs?: string }> {
  const project = env.LADING_PROJECT!;
  const before = parseServiceIndex(await h.runner('swarm_index', env));
  await h.runner('swarm_deploy', { ...env, ...logins });
  const deadline = Date.now() + s.deploy.healthTimeout * 1000;
  const opts = { stack: project, pins: stack.pins, services: Object.keys(stack.orders), before };
  let said = '';
  for (;;) {
    const state = parseSwarmState(await h.runner('swarm_state', env));
    const verdict: Convergence & { logs?: string } = convergence(state, opts);
    if (verdict.state === 'failed') verdict.logs = await failedTaskLogs(h, env, state, project);
    const line = describeConvergence(verdict);
    if (line !== said) h.ctx.reporter.info(`[${h.label}] ${line}`);
    said = line;
    if (verdict.state !== 'pending') return verdict;
    if (Date.now() >= deadline) {
      return {
        ...verdict,
        logs: await failedTaskLogs(h, env, state, project),
        state: 'failed',
        services: verdict.services.map((v) =>
          v.state === 'pending' ? { ...v, detail: `${v.detail} — not converged within ${s.deploy.healthTimeout}s` } : v,
        ),
      };
    }
    await sleep(2000);
  }
}

function failure(verdict: Convergence & { logs?: string }): string {
  const errors = [...new Set(verdict.errors)].slice(0, 8);
  return (
    `${describeConvergence(verdict)}${errors.length ? `\ntask errors:\n  ${errors.join('\n  ')}` : ''}` +
    (verdict.logs ? `\nlast log lines of the failed tasks:\n  ${verdict.logs.split('\n').join('\n  ')}` : '')
  );
}

/**
 * The last lines the stack's failed tasks logged (newest three tasks, five lines each): what `task: non-zero exit
 * (1)` does not say. Best effort: a failure to read them never hides the failure itself.
 */
async function failedTaskLogs(
  h: HostSteps,
  env: Record<string, string>,
  state: SwarmState,
  stack: string,
): Promise<string | undefined> {
  const failed = state.tasks
    .filter((t) => t.Name.startsWith(`${stack}_`) && t.Error && /^(failed|rejected)/i.test(t.CurrentState.trim()))
    .slice(0, 3);
  if (failed.length === 0) return undefined;
  const out = await h
    .runner('swarm_task_logs', { ...env, LADING_TASKS: failed.map((t) => t.ID).join(' ') })
    .catch(() => '');
  const names = new Map(failed.map((t) => [t.ID, t.Name]));
  const lines = parseTaskLogs(out).map((l) => `${names.get(l.task) ?? l.task}: ${l.line.slice(0, 300)}`);
  return lines.length ? lines.join('\n') : undefined;
}

function logPlan(stack: StackRender, host: string, reporter: Reporter): void {
  for (const [svc, o] of Object.entries(stack.orders)) reporter.info(`[${host}] ${svc}: update ${o.order} (${o.why})`);
  if (stack.missing.length > 0) {
    reporter.warning(`compose variables not set by the manifest (left empty): ${stack.missing.join(', ')}`);
  }
}

/**
 * Deploys a manifest to a swarm: lock → render the stack (pinned by digest) into a release dir → pre-deploy and
 * pre-switch hooks → docker stack deploy with short-lived registry auth → wait for convergence → switch current,
 * history (post-switch hook), prune → unlock → post-deploy hook; the runner hook before and after. When
 * swarm rolls the update back (or it does not converge), the previous release is redeployed where swarm did not
 * already restore it, the history says so, and the step fails with the task errors.
 */
export async function runSwarmDeployStage(opts: DeployStageOptions): Promise<DeployResult> {
  // Notes made while preparing (registry access) are printed under the deploy header they belong to.
  const reporter = deferUntilGroup(opts.reporter);
  const { now } = opts.deps;
  const { manifest } = opts;
  const s = swarmOf(opts.settings);
  const project = s.deploy.project ?? manifest.compose?.project;
  if (!project) {
    throw new InputError(
      'project',
      'is empty and the manifest names no compose project',
      'set project (the stack name), or compose-project in the manifest step',
    );
  }
  // a compose-env name without a value: refused before any host; the values resolve into the stack
  const extraEnv = deployEnv(manifest, s.deploy);
  for (const v of envMasks(s.deploy.composeEnv, s.deploy.composeSecrets)) opts.reporter.secret(v);
  const legacy = legacyEnvWarning(manifest);
  if (legacy) reporter.warning(legacy);
  checkManifestPolicy(manifest, s.deploy.composePolicy, extraEnv); // compose-policy strict
  const release = releaseId(now(), manifest.primary);
  const composeEnv = s.deploy.composeEnv;
  const stack = renderStack(manifest, { project, release, policy: s.policy, env: composeEnv }); // refuses before any host
  // Hooks (src/stages/hooks.ts) run on the manager, each in a one-off `docker run` of its service's new image with
  // the service's environment (an env file in the release dir) on the stack's network when it is attachable:
  // pre-deploy and pre-switch before docker stack deploy, post-switch after the stack converged, post-deploy last.
  const hookRuns = new Map<string, ReturnType<typeof swarmHookRun>>();
  const hooks = DeployHooks.of(opts.settings.hooks, {
    manifest,
    release,
    project,
    owner: s.deploy.owner,
    now,
    driver: { step: 'ops_swarm_hook', vars: (svc) => hookRuns.get(svc)!.vars, run: swarmStep },
  });
  for (const svc of hooks.services) hookRuns.set(svc, swarmHookRun(stack, svc)); // refuses before any host
  const hookFiles = [...hookRuns.values()].map((r) => ({ name: r.envFileName, content: r.envFile, mode: 0o600 }));
  const logins = await opts.deps.logins(manifest, s.deploy, reporter).catch((err: unknown) => {
    reporter.flush();
    throw err;
  });
  const flow = swarmFlow(s, project, now);
  const managers = s.local ? [s.dockerHost!] : s.deploy.hosts.map((h) => h.label);
  await hooks.runner('pre-deploy', managers, reporter);
  const r = await reporter.group(`deploy ${release} → swarm stack ${project}`, () =>
    onHost(
      flow,
      { host: '', status: 'failed', release, seconds: 0 },
      reporter,
      () => connectManager(s, reporter, opts.deps.connector),
      async (h, result) => {
        const facts = await h.lock();
        if (facts.current) result.previous = facts.current;
        reporter.info(`[${h.label}] swarm manager; current release: ${facts.current ?? '(none)'}`);
        await h.refuseDowngrade(manifest, facts.current, s.deploy.allowDowngrade);
        logPlan(stack, h.label, reporter);
        const at = { LADING_RELEASE: release };
        const env = h.env(at);
        // the dir and its files (+ the hooks' env files)
        await h.run('mkrelease', at, releaseFilesScript([...stack.files, ...hookFiles]));
        await loadOnNodes(manifest, h, env, s, opts.deps, opts.settings.shipping);
        if (hookRuns.size > 0) {
          const images = new Set([...hookRuns.values()].map((r) => r.vars.LADING_HOOK_IMAGE!));
          await h.run('pull', { ...at, ...logins, LADING_IMAGES: [...images].join('\n') });
        }
        await hooks.run('pre-deploy', h.session, env, h.label, reporter); // a failure: nothing deployed
        await hooks.run('pre-switch', h.session, env, h.label, reporter);
        const verdict = await deployAndWait(h, resolveEnv(manifest, env), logins, stack, s, opts.deps.sleep);
        const entry = { action: 'deploy', release, previous: facts.current } as const;
        if (verdict.state === 'ok') {
          await hooks.switchOn(h, manifest, { ...entry, result: 'success' }, 'prune');
          result.status = 'deployed';
          return;
        }
        const why = failure(verdict);
        await h.record(manifest, { ...entry, result: 'failure', error: why });
        result.error = why;
        if (!s.deploy.rollbackOnFailure || !facts.current) return;
        // Swarm rolls back only the services whose update failed; redeploy the previous release so the whole stack
        // is on it again (a no-op for services swarm already restored).
        reporter.warning(`[${h.label}] deploy of ${release} failed; back to ${facts.current}`);
        const back = h.env({ LADING_RELEASE: facts.current });
        try {
          const previous = await h.releaseManifest(facts.current);
          const prevStack = renderStack(previous, {
            project,
            release: facts.current,
            policy: s.policy,
            env: composeEnv,
          });
          const prevLogins = await opts.deps.logins(previous, s.deploy, reporter);
          await loadOnNodes(previous, h, back, s, opts.deps, opts.settings.shipping);
          const again = await deployAndWait(h, resolveEnv(previous, back), prevLogins, prevStack, s, opts.deps.sleep);
          if (again.state !== 'ok') throw new LadingError(failure(again));
          const undo = { action: 'auto-rollback', release: facts.current, previous: release } as const;
          await h.record(previous, { ...undo, result: 'success' });
        } catch (err) {
          result.error = `${why}\nredeploying ${facts.current} failed too: ${describeError(err)}`;
          return;
        }
        result.status = 'rolled-back';
      },
    ),
  );
  const { ok } = await hooks.finish(r.status === 'deployed', r.error, managers, reporter, {
    label: r.host,
    connect: async () => (await connectManager(s, reporter, opts.deps.connector)).session,
    env: { ...envFor(s, project), LADING_RELEASE: release }, // the lock is released by then
  });
  return { release, hosts: [r], ok, ...(hooks.outcomes.length ? { hooks: hooks.outcomes } : {}) };
}

/** The swarm target's flow options: host.sh + swarm.sh's steps on the manager, the history's run and clock. */
function swarmFlow(s: SwarmSettings, project: string, now = () => new Date()): FlowOptions {
  return {
    driver: SWARM_DRIVER,
    base: envFor(s, project),
    timeoutMs: s.deploy.stepTimeoutMs,
    owner: s.deploy.owner,
    now,
  };
}

function stackName(s: SwarmSettings): string {
  if (!s.deploy.project) throw new InputError('project', 'is empty', 'name the stack (the compose project deployed)');
  return s.deploy.project;
}

/**
 * Redeploys an earlier release's pinned stack (`to`: previous, a release id, a tag or a sha) and waits for it to
 * converge: no build, no registry lookups beyond fresh short-lived logins.
 */
export async function runSwarmRollbackStage(opts: HostStageOptions): Promise<DeployResult> {
  const { reporter } = opts;
  const { now } = opts.deps;
  const s = swarmOf(opts.settings);
  const project = stackName(s);
  const to = opts.settings.rollbackTo;
  const r = await reporter.group(`rollback swarm stack ${project} to ${to}`, () =>
    onHost(
      swarmFlow(s, project, now),
      { host: '', status: 'failed', seconds: 0 },
      reporter,
      () => connectManager(s, reporter, opts.deps.connector),
      async (h, result) => {
        const facts = await h.lock();
        const target = rollbackTarget(await h.history(), facts.releases, facts.current, to);
        result.release = target;
        if (facts.current) result.previous = facts.current;
        const env = h.env({ LADING_RELEASE: target });
        const manifest = await h.releaseManifest(target);
        const stack = renderStack(manifest, {
          project,
          release: target,
          policy: s.policy,
          env: s.deploy.composeEnv,
        });
        const logins = await opts.deps.logins(manifest, s.deploy, reporter);
        await loadOnNodes(manifest, h, env, s, opts.deps, opts.settings.shipping);
        const verdict = await deployAndWait(h, resolveEnv(manifest, env), logins, stack, s, opts.deps.sleep);
        const entry = { action: 'rollback', release: target, previous: facts.current } as const;
        if (verdict.state !== 'ok') {
          const why = failure(verdict);
          await h.record(manifest, { ...entry, result: 'failure', error: why });
          throw new LadingError(`rollback to ${target} did not converge: ${why}`);
        }
        await h.record(manifest, { ...entry, result: 'success' }, 'switch history');
        result.status = 'deployed';
      },
    ),
  );
  return { release: r.release ?? '', hosts: [r], ok: r.status === 'deployed' };
}

/** The releases of a stack on its manager, the current one, and the history (who deployed what, when). */
export async function runSwarmReleasesStage(opts: HostStageOptions): Promise<HostReleases[]> {
  const s = swarmOf(opts.settings);
  const base = envFor(s, stackName(s));
  let session: HostSession | undefined;
  let label = s.dockerHost ?? s.deploy.hosts[0]!.label;
  try {
    const m = await connectManager(s, opts.reporter, opts.deps.connector);
    session = m.session;
    label = m.label;
    const ctx = { host: label, reporter: opts.reporter, timeoutMs: s.deploy.stepTimeoutMs };
    const manager = session;
    return [await releasesOf(label, (name) => swarmStep(manager, name, base, ctx), 'swarm_facts')];
  } catch (err) {
    return [{ host: label, releases: [], history: [], error: describeError(err) }];
  } finally {
    await session?.close();
  }
}
