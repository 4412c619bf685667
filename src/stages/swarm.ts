import { checkManifestPolicy } from '../lib/compose-policy.ts';
import type { Connector, HostSession } from '../io/host-session.ts';
import { LocalSession } from '../io/local-host.ts';
import { deferUntilGroup, type Reporter } from '../io/reporter.ts';
import {
  type HistoryAction,
  downgradeReason,
  historyEntry,
  parseFacts,
  parseHistory,
  releaseId,
  rollbackTarget,
} from '../lib/deploy-plan.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import { readHooks, refuseHooksOnSwarm } from '../lib/hooks.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import {
  type Convergence,
  type StackRender,
  type SwarmState,
  convergence,
  describeConvergence,
  parseSwarmState,
  renderStack,
} from '../lib/swarm-plan.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { loadManifest } from '../settings/deploy.ts';
import { parseStoreOptions } from '../settings/common.ts';
import { readSwarmSettings } from '../settings/swarm.ts';
import { ImageShipper, parseImageFetch, storeImages } from './host/images.ts';
import { registryLogins } from './host/logins.ts';
import { baseEnv, releaseFilesScript, releasesOf, type StepContext, swarmStep } from './host/steps.ts';
import type { DeployResult, HostReleases, HostResult, HostStageOptions, SwarmSettings } from './host/types.ts';

/**
 * Docker Swarm as a deploy target. The manager is reached like a compose host (SSH with pinned keys, or this
 * machine with docker-host as DOCKER_HOST) and keeps the same layout under root/project: releases/<id>/ with the
 * rendered, digest-pinned stack files, current, history.jsonl and the lock. Swarm rolls tasks over and back by
 * itself; lading deploys the stack, waits for it to converge and records what happened.
 */

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
  manager: HostSession,
  env: Record<string, string>,
  ctx: StepContext,
  s: SwarmSettings,
  connector: Connector,
  read: InputReader,
): Promise<void> {
  if (storeImages(manifest).length === 0) return;
  const nodes = (await swarmStep(manager, 'swarm_nodes', env, ctx)).split('\n').filter(Boolean);
  const shipper = new ImageShipper(parseStoreOptions(read), ctx.reporter, parseImageFetch(read('image-fetch')));
  const ship = (session: HostSession, label: string) =>
    shipper.ensure(manifest, { label, dir: `${env.LADING_ROOT}/${env.LADING_PROJECT}`, session }, (name, extra) =>
      swarmStep(session, name, { ...env, ...extra }, { ...ctx, host: label }),
    );
  try {
    if (nodes.length <= 1) {
      await ship(manager, ctx.host);
      return;
    }
    const others = s.local ? [] : s.deploy.hosts.filter((h) => h.label !== ctx.host);
    if (others.length + 1 < nodes.length) {
      throw new LadingError(
        `the swarm has ${nodes.length} nodes (${nodes.join(', ')}) and this manifest's images travel without a registry: ` +
          `each node must load them, but only ${others.length + 1} can be reached (hosts)`,
        'list every node in hosts (the manager first) so lading can load the images on each, or publish them to a registry',
      );
    }
    await ship(manager, ctx.host);
    for (const h of others) {
      const session = await connector(h, s.deploy, ctx.reporter);
      try {
        await ship(session, h.label);
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

const indexOf = (stdout: string): Record<string, number> =>
  Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((p) => p.length === 2)
      .map(([name, index]) => [name!, Number(index)]),
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Deploys release `release` (its files already on the manager) and waits until the stack converges, swarm gives
 * up on it, or health-timeout passes.
 */
async function deployAndWait(
  session: HostSession,
  env: Record<string, string>,
  logins: Record<string, string>,
  stack: Pick<StackRender, 'pins' | 'orders'>,
  s: SwarmSettings,
  ctx: StepContext,
): Promise<Convergence & { logs?: string }> {
  const project = env.LADING_PROJECT!;
  const before = indexOf(await swarmStep(session, 'swarm_index', env, ctx));
  await swarmStep(session, 'swarm_deploy', { ...env, ...logins }, ctx);
  const deadline = Date.now() + s.deploy.healthTimeout * 1000;
  const opts = { stack: project, pins: stack.pins, services: Object.keys(stack.orders), before };
  let said = '';
  for (;;) {
    const state = parseSwarmState(await swarmStep(session, 'swarm_state', env, ctx));
    const verdict: Convergence & { logs?: string } = convergence(state, opts);
    if (verdict.state === 'failed') verdict.logs = await failedTaskLogs(session, env, ctx, state, project);
    const line = describeConvergence(verdict);
    if (line !== said) ctx.reporter.info(`[${ctx.host}] ${line}`);
    said = line;
    if (verdict.state !== 'pending') return verdict;
    if (Date.now() >= deadline) {
      return {
        ...verdict,
        logs: await failedTaskLogs(session, env, ctx, state, project),
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
  session: HostSession,
  env: Record<string, string>,
  ctx: StepContext,
  state: SwarmState,
  stack: string,
): Promise<string | undefined> {
  const failed = state.tasks
    .filter((t) => t.Name.startsWith(`${stack}_`) && t.Error && /^(failed|rejected)/i.test(t.CurrentState.trim()))
    .slice(0, 3);
  if (failed.length === 0) return undefined;
  const out = await swarmStep(
    session,
    'swarm_task_logs',
    { ...env, LADING_TASKS: failed.map((t) => t.ID).join(' ') },
    ctx,
  ).catch(() => '');
  const names = new Map(failed.map((t) => [t.ID, t.Name]));
  const lines: string[] = [];
  let task = '';
  for (const l of out.split('\n')) {
    const m = /^--- (\S+)$/.exec(l);
    if (m) task = names.get(m[1]!) ?? m[1]!;
    else if (l.trim()) lines.push(`${task}: ${l.slice(0, 300)}`);
  }
  return lines.length ? lines.join('\n') : undefined;
}

function logPlan(stack: StackRender, host: string, reporter: Reporter): void {
  for (const [svc, o] of Object.entries(stack.orders)) reporter.info(`[${host}] ${svc}: update ${o.order} (${o.why})`);
  if (stack.missing.length > 0) {
    reporter.warning(`compose variables not set by the manifest (left empty): ${stack.missing.join(', ')}`);
  }
}

/**
 * Deploys a manifest to a swarm: lock → render the stack (pinned by digest) into a release dir → docker stack
 * deploy with short-lived registry auth → wait for convergence → switch current, history, prune → unlock. When
 * swarm rolls the update back (or it does not converge), the previous release is redeployed where swarm did not
 * already restore it, the history says so, and the step fails with the task errors.
 */
export async function runSwarmDeployStage(opts: HostStageOptions): Promise<DeployResult> {
  // Notes made while preparing (registry access) are printed under the deploy header they belong to.
  const reporter = deferUntilGroup(opts.reporter);
  const now = opts.now ?? (() => new Date());
  const manifest = opts.manifest ?? (await loadManifest(opts.read));
  const s = await readSwarmSettings(opts.read, opts.env);
  const project = s.deploy.project ?? manifest.compose?.project;
  if (!project) {
    throw new InputError(
      'project',
      'is empty and the manifest names no compose project',
      'set project (the stack name), or compose-project in the manifest step',
    );
  }
  checkManifestPolicy(manifest, s.deploy.composePolicy, s.deploy.composeSecrets); // compose-policy strict
  const release = releaseId(now(), manifest.primary);
  const stack = renderStack(manifest, { project, release, policy: s.policy }); // refuses before any host
  refuseHooksOnSwarm(readHooks(opts.read, manifest));
  const logins = await registryLogins(manifest, s.deploy, reporter).catch((err: unknown) => {
    reporter.flush();
    throw err;
  });
  const base = envFor(s, project);
  const started = Date.now();
  const result: HostResult = { host: '', status: 'failed', release, seconds: 0 };
  return reporter
    .group(`deploy ${release} → swarm stack ${project}`, async () => {
      let session: HostSession | undefined;
      let locked = false;
      try {
        const m = await connectManager(s, reporter, opts.connector);
        session = m.session;
        result.host = m.label;
        const ctx: StepContext = { host: m.label, reporter, timeoutMs: s.deploy.stepTimeoutMs };
        const record = (
          action: HistoryAction,
          res: 'success' | 'failure',
          rel: string,
          previous?: string,
          error?: string,
          of: Manifest = manifest,
          steps = 'history',
        ) =>
          swarmStep(
            session!,
            steps,
            {
              ...base,
              LADING_RELEASE: rel,
              LADING_HISTORY_LINE: JSON.stringify(
                historyEntry(of, {
                  time: now(),
                  action,
                  result: res,
                  release: rel,
                  previous,
                  error,
                  run: s.deploy.owner,
                }),
              ),
            },
            ctx,
          );
        // facts first (a host that is no swarm manager is refused before the lock creates anything), one round trip
        locked = true; // unlock only ever removes a lock this run owns
        const facts = parseFacts(await swarmStep(session, 'swarm_facts lock', base, ctx));
        base.LADING_LOCK_HELD = '1';
        if (facts.current) result.previous = facts.current;
        reporter.info(`[${m.label}] swarm manager; current release: ${facts.current ?? '(none)'}`);
        if (facts.current && !s.deploy.allowDowngrade) {
          const running = await swarmStep(session, 'release_manifest', { ...base, LADING_RELEASE: facts.current }, ctx)
            .then((text) => parseManifest(text, `release ${facts.current}`))
            .catch(() => undefined);
          const why = running && downgradeReason(manifest, running);
          if (why)
            throw new LadingError(
              `refusing to downgrade: ${why}`,
              'set allow-downgrade: true, or use command rollback',
            );
        }
        logPlan(stack, m.label, reporter);
        const env = { ...base, LADING_RELEASE: release };
        await swarmStep(session, 'mkrelease', env, ctx, releaseFilesScript(stack.files)); // the dir and its files
        await loadOnNodes(manifest, session, env, ctx, s, opts.connector, opts.read);
        const verdict = await deployAndWait(session, resolveEnv(manifest, env), logins, stack, s, ctx);
        if (verdict.state === 'ok') {
          await record('deploy', 'success', release, facts.current, undefined, manifest, 'switch history prune');
          result.status = 'deployed';
          return result;
        }
        const why = failure(verdict);
        await record('deploy', 'failure', release, facts.current, why);
        result.error = why;
        if (!s.deploy.rollbackOnFailure || !facts.current) return result;
        // Swarm rolls back only the services whose update failed; redeploy the previous release so the whole stack
        // is on it again (a no-op for services swarm already restored).
        reporter.warning(`[${m.label}] deploy of ${release} failed; back to ${facts.current}`);
        const back = { ...base, LADING_RELEASE: facts.current };
        try {
          const previous = parseManifest(
            await swarmStep(session, 'release_manifest', back, ctx),
            `release ${facts.current}`,
          );
          const prevStack = renderStack(previous, { project, release: facts.current, policy: s.policy });
          const prevLogins = await registryLogins(previous, s.deploy, reporter);
          await loadOnNodes(previous, session, back, ctx, s, opts.connector, opts.read);
          const again = await deployAndWait(session, resolveEnv(previous, back), prevLogins, prevStack, s, ctx);
          if (again.state !== 'ok') throw new LadingError(failure(again));
          await record('auto-rollback', 'success', facts.current, release, undefined, previous);
        } catch (err) {
          result.error = `${why}\nredeploying ${facts.current} failed too: ${describeError(err)}`;
          return result;
        }
        result.status = 'rolled-back';
        return result;
      } catch (err) {
        result.status = 'failed';
        result.error = describeError(err);
        return result;
      } finally {
        if (session && locked) {
          const ctx = { host: result.host, reporter, timeoutMs: s.deploy.stepTimeoutMs };
          await swarmStep(session, 'unlock', base, ctx).catch(() => undefined);
        }
        await session?.close();
        result.seconds = Math.round((Date.now() - started) / 100) / 10;
      }
    })
    .then((r) => ({ release, hosts: [r], ok: r.status === 'deployed' }));
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
  const now = opts.now ?? (() => new Date());
  const s = await readSwarmSettings(opts.read, opts.env);
  const project = stackName(s);
  const to = opts.read('to') ?? 'previous';
  const base = envFor(s, project);
  const started = Date.now();
  const result: HostResult = { host: '', status: 'failed', seconds: 0 };
  const r = await reporter.group(`rollback swarm stack ${project} to ${to}`, async () => {
    let session: HostSession | undefined;
    let locked = false;
    let ctx: StepContext = { host: '', reporter, timeoutMs: s.deploy.stepTimeoutMs };
    try {
      const m = await connectManager(s, reporter, opts.connector);
      session = m.session;
      result.host = m.label;
      ctx = { ...ctx, host: m.label };
      // facts first (a host that is no swarm manager is refused before the lock creates anything), one round trip
      locked = true; // unlock only ever removes a lock this run owns
      const facts = parseFacts(await swarmStep(session, 'swarm_facts lock', base, ctx));
      base.LADING_LOCK_HELD = '1';
      const history = parseHistory(await swarmStep(session, 'history_read', base, ctx));
      const target = rollbackTarget(history, facts.releases, facts.current, to);
      result.release = target;
      if (facts.current) result.previous = facts.current;
      const env = { ...base, LADING_RELEASE: target };
      const manifest = parseManifest(await swarmStep(session, 'release_manifest', env, ctx), `release ${target}`);
      const stack = renderStack(manifest, { project, release: target, policy: s.policy });
      const logins = await registryLogins(manifest, s.deploy, reporter);
      await loadOnNodes(manifest, session, env, ctx, s, opts.connector, opts.read);
      const verdict = await deployAndWait(session, resolveEnv(manifest, env), logins, stack, s, ctx);
      const line = (res: 'success' | 'failure', error?: string) =>
        JSON.stringify(
          historyEntry(manifest, {
            time: now(),
            action: 'rollback',
            result: res,
            release: target,
            previous: facts.current,
            error,
            run: s.deploy.owner,
          }),
        );
      if (verdict.state !== 'ok') {
        const why = failure(verdict);
        await swarmStep(session, 'history', { ...env, LADING_HISTORY_LINE: line('failure', why) }, ctx);
        throw new LadingError(`rollback to ${target} did not converge: ${why}`);
      }
      await swarmStep(session, 'switch history', { ...env, LADING_HISTORY_LINE: line('success') }, ctx);
      result.status = 'deployed';
      return result;
    } catch (err) {
      result.error = describeError(err);
      return result;
    } finally {
      if (session && locked) await swarmStep(session, 'unlock', base, ctx).catch(() => undefined);
      await session?.close();
      result.seconds = Math.round((Date.now() - started) / 100) / 10;
    }
  });
  return { release: r.release ?? '', hosts: [r], ok: r.status === 'deployed' };
}

/** The releases of a stack on its manager, the current one, and the history (who deployed what, when). */
export async function runSwarmReleasesStage(opts: HostStageOptions): Promise<HostReleases[]> {
  const s = await readSwarmSettings(opts.read, opts.env);
  const base = envFor(s, stackName(s));
  let session: HostSession | undefined;
  let label = s.dockerHost ?? s.deploy.hosts[0]!.label;
  try {
    const m = await connectManager(s, opts.reporter, opts.connector);
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
