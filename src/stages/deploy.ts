import type { HostSession } from '../io/host-session.ts';
import { deferUntilGroup, type Reporter } from '../io/reporter.ts';
import { deployEnv, envMasks, type HostSpec, releaseFiles, releaseId, rollbackTarget } from '../lib/deploy-plan.ts';
import { checkManifestPolicy } from '../lib/compose-policy.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import { legacyEnvWarning, type Manifest } from '../lib/manifest.ts';
import { forEachHost } from './host/batches.ts';
import { storeImages } from './host/images.ts';
import { COMPOSE_DRIVER, type FlowOptions, type HostSteps, onHost } from './host/flow.ts';
import { baseEnv, forHost, releasesOf, releaseFilesScript, step } from './host/steps.ts';
import type {
  DeployResult,
  DeploySettings,
  DeployStageOptions,
  HostReleases,
  HostResult,
  HostStageOptions,
  ImageShip,
  MaintenanceSettings,
} from './host/types.ts';
import { DeployHooks } from './hooks.ts';
import { bringUp, setMaintenance } from './rolling.ts';
import { DEFAULT_START_INTERVAL, START_INTERVAL_API, startIntervalOverride } from '../lib/health-start.ts';

// The compose target: deploy, rollback and releases over hosts (SSH, or this machine for the agent).

export type { DeployResult, DeployStageOptions, HostReleases, HostResult, HostStageOptions } from './host/types.ts';

/**
 * Deploys a manifest to every host: lock → release dir → pull → up → health gate → switch current → history →
 * prune → unlock; on failure the previous release is brought back and the step fails. Hosts run in batches of
 * max-parallel; fail-fast stops before the next batch.
 */
export async function runDeployStage(opts: DeployStageOptions): Promise<DeployResult> {
  // Notes made while preparing (registry access) are printed under the deploy header they belong to.
  const reporter = deferUntilGroup(opts.reporter);
  const { now } = opts.deps;
  const { manifest } = opts;
  const settings = { ...opts.settings.deploy }; // this deploy's copy: a pre-deploy hook raises its canary
  const zdt = opts.settings.rolling;
  // Registry-less images: fetched from the store once here, verified, and sent to each host over SSH.
  const { shipping } = opts.settings;
  const shipper = storeImages(manifest).length
    ? opts.deps.shipper(shipping.store, reporter, shipping.fetch)
    : undefined;
  const project = settings.project ?? manifest.compose?.project;
  if (!project)
    throw new InputError(
      'project',
      'is empty and the manifest names no compose project',
      'set project (or compose-project in the manifest step)',
    );
  const release = releaseId(now(), manifest.primary);
  const extraEnv = deployEnv(manifest, settings); // a compose-env name without a value: refused before any host
  // refuses a manifest without compose files, and a value the release's .env cannot hold, before any host
  releaseFiles(manifest, { project, release, extraEnv });
  for (const v of envMasks(settings.composeEnv, settings.composeSecrets)) opts.reporter.secret(v);
  const legacy = legacyEnvWarning(manifest);
  if (legacy) reporter.warning(legacy);
  checkManifestPolicy(manifest, settings.composePolicy, extraEnv); // compose-policy strict: refused before any host is touched
  const logins = await opts.deps.logins(manifest, settings, reporter).catch((err: unknown) => {
    reporter.flush();
    throw err;
  });
  const { connector } = opts.deps;
  const common = baseEnv(settings, project);
  // pre-deploy / pre-switch / post-switch / post-deploy (src/stages/hooks.ts); a pre-deploy hook runs on the first
  // host, which then goes alone (as a canary): no other host starts before it passed
  const hooks = DeployHooks.of(opts.settings.hooks, { manifest, release, project, owner: settings.owner, now });
  if (hooks.firstHostAlone) settings.canary = Math.max(settings.canary, 1);

  const images = refs(manifest);
  // The release files once per compose project, not once per host (a fleet shares them).
  const scripts = new Map<string, string>();
  const filesScript = (p: string, healthOverride?: string) => {
    const key = `${p}\n${healthOverride ?? ''}`;
    if (!scripts.has(key)) {
      const files = releaseFiles(manifest, { project: p, release, extraEnv, healthOverride }).files;
      scripts.set(key, releaseFilesScript(files));
    }
    return scripts.get(key)!;
  };
  // start_interval where the engine honours it: asked of each host's engine only when a healthcheck would get one
  const composeTexts = (manifest.compose?.files ?? []).map((f) => ({ content: f.content ?? '' }));
  const wantApi = startIntervalOverride(START_INTERVAL_API, composeTexts) !== undefined;

  const deployHost = async (h: HostSteps, result: HostResult, reporter: Reporter, host: HostSpec) => {
    if (wantApi) h.base.LADING_WANT_API = '1'; // the facts step also says the engine's API version
    const facts = await h.lock();
    if (facts.current) result.previous = facts.current;
    h.base.LADING_COMPOSE = facts.compose;
    reporter.info(`[${host.label}] ${facts.compose}; current release: ${facts.current ?? '(none)'}`);
    const healthOverride = wantApi ? startIntervalOverride(facts.api, composeTexts) : undefined;
    if (wantApi) {
      reporter.info(
        healthOverride
          ? `[${host.label}] docker API ${facts.api}: healthchecks get start_interval ${DEFAULT_START_INTERVAL} while starting`
          : `[${host.label}] docker API ${facts.api ?? '(unknown)'} has no start_interval (needs ${START_INTERVAL_API}): the gate runs healthchecks itself, early`,
      );
    }
    await h.refuseDowngrade(manifest, facts.current, settings.allowDowngrade);
    const external = manifest.compose?.external ?? [];
    if (external.length > 0) {
      // mount sources outside the project are the host's: all there, or nothing changes
      await h.run('check_paths', { LADING_PATHS: external.map((e) => e.path).join('\n') });
    }
    const at = { LADING_RELEASE: release };
    const env = h.env(at);
    await h.run('mkrelease', at, filesScript(h.base.LADING_PROJECT!, healthOverride)); // the release dir and its files
    if (shipper) await shipImages(shipper, manifest, h, env);
    await h.run('pull', { ...at, ...logins, LADING_IMAGES: images });
    if (host === settings.hosts[0]) await hooks.run('pre-deploy', h.session, env, host.label, reporter);
    await hooks.run('pre-switch', h.session, env, host.label, reporter);
    const entry = { action: 'deploy', release, previous: result.previous } as const;
    try {
      await bringUp(h.runner, manifest, env, zdt);
    } catch (err) {
      const why = describeError(err);
      await h.record(manifest, { ...entry, result: 'failure', error: why });
      if (!settings.rollbackOnFailure || !facts.current) throw err;
      reporter.warning(`[${host.label}] deploy of ${release} failed; rolling back to ${facts.current}`);
      try {
        const previous = await h.releaseManifest(facts.current);
        const back = { LADING_RELEASE: facts.current };
        await h.run('pull', { ...back, ...logins, LADING_IMAGES: refs(previous) });
        await bringUp(h.runner, previous, h.env(back), zdt, true);
        const undo = { action: 'auto-rollback', release: facts.current, previous: release } as const;
        await h.record(previous, { ...undo, result: 'success' });
      } catch (rollbackErr) {
        throw new LadingError(
          `${why}\nrolling back to ${facts.current} failed too: ${describeError(rollbackErr)}`,
          'the host needs a look: lading releases shows what is there',
        );
      }
      result.status = 'rolled-back';
      result.error = why;
      return;
    }
    // switch current, record, prune and unlock in one round trip (a post-switch hook runs between)
    await hooks.switchOn(h, manifest, { ...entry, result: 'success' }, 'prune unlock');
    result.status = 'deployed';
  };

  try {
    const labels = settings.hosts.map((h) => h.label);
    await hooks.runner('pre-deploy', labels, reporter);
    const title = (h: HostSpec) => `deploy ${release} → ${h.label}`;
    const results = await eachHost({ deps: opts.deps, reporter }, settings, common, title, { release }, deployHost);
    const first = settings.hosts[0]!;
    const { ok } = await hooks.finish(
      results.every((r) => r.status === 'deployed'),
      results.find((r) => r.error)?.error,
      labels,
      reporter,
      {
        label: first.label,
        connect: () => connector(first, settings, reporter),
        env: { ...forHost(common, first), LADING_RELEASE: release },
      },
    );
    return { release, hosts: results, ok, ...(hooks.outcomes.length ? { hooks: hooks.outcomes } : {}) };
  } finally {
    await shipper?.close();
  }
}

const refs = (m: Manifest) => m.images.map((i) => i.ref).join('\n');

/** Makes the manifest's registry-less images present on one host (see ImageShipper). */
async function shipImages(shipper: ImageShip, manifest: Manifest, h: HostSteps, env: Record<string, string>) {
  await shipper.ensure(
    manifest,
    { label: h.label, dir: `${env.LADING_ROOT}/${env.LADING_PROJECT}`, session: h.session },
    (name, extra) => h.runner(name, { ...env, ...extra }),
  );
}

/** The compose target's flow options: host.sh's steps, the stage's base env, the history's run and clock. */
function composeFlow(settings: DeploySettings, base: Record<string, string>, now = () => new Date()): FlowOptions {
  return { driver: COMPOSE_DRIVER, base, timeoutMs: settings.stepTimeoutMs, owner: settings.owner, now };
}

/**
 * Every host of a compose stage through the per-host flow (onHost), in batches with the canary and error budget of
 * forEachHost; `fn` gets the host's steps, its result (`init` on top of a failed one) and its reporter.
 */
function eachHost(
  opts: Pick<HostStageOptions, 'deps' | 'reporter'>,
  settings: DeploySettings,
  common: Record<string, string>,
  title: (h: HostSpec) => string,
  init: Partial<HostResult>,
  fn: (h: HostSteps, result: HostResult, reporter: Reporter, host: HostSpec) => Promise<void>,
): Promise<HostResult[]> {
  const flow = composeFlow(settings, common, opts.deps.now);
  return forEachHost(settings, opts.reporter, title, (host, reporter) =>
    onHost(
      { ...flow, base: forHost(common, host) },
      { host: host.label, status: 'failed', seconds: 0, ...init },
      reporter,
      async () => ({ session: await opts.deps.connector(host, settings, reporter), label: host.label }),
      (h, result) => fn(h, result, reporter, host),
    ),
  );
}

function projectFrom(settings: DeploySettings): string {
  if (!settings.project) throw new InputError('project', 'is empty', 'name the compose project deployed on the hosts');
  return settings.project;
}

/**
 * Rolls every host back to an earlier release still on it (`to`: previous, a release id, a tag or a sha), without
 * any build: lock → pull its pinned images → up → health gate → switch current → history → unlock.
 */
export async function runRollbackStage(opts: HostStageOptions): Promise<DeployResult> {
  const settings = opts.settings.deploy;
  const project = projectFrom(settings);
  const to = opts.settings.rollbackTo;
  const zdt = opts.settings.rolling;
  const common = baseEnv(settings, project);
  let chosen = '';
  const results = await eachHost(
    opts,
    settings,
    common,
    (h) => `rollback ${h.label} to ${to}`,
    {},
    async (h, result, reporter, host) => {
      const facts = await h.lock();
      const target = rollbackTarget(await h.history(), facts.releases, facts.current, to);
      chosen = target;
      result.release = target;
      if (facts.current) result.previous = facts.current;
      const at = { LADING_RELEASE: target };
      const env = h.env(at);
      const manifest = await h.releaseManifest(target, `${host.label}: release ${target}`);
      const logins = await opts.deps.logins(manifest, settings, reporter);
      if (storeImages(manifest).length) {
        const { shipping } = opts.settings;
        const shipper = opts.deps.shipper(shipping.store, reporter, shipping.fetch);
        await shipImages(shipper, manifest, h, env).finally(() => shipper.close());
      }
      await h.run('pull', { ...at, ...logins, LADING_IMAGES: refs(manifest) });
      const entry = { action: 'rollback', release: target, previous: facts.current } as const;
      try {
        await bringUp(h.runner, manifest, env, zdt, true);
      } catch (err) {
        await h.record(manifest, { ...entry, result: 'failure', error: describeError(err) });
        if (facts.current) {
          reporter.warning(`[${host.label}] rollback to ${target} failed; bringing ${facts.current} back`);
          // the way it came up (rolling services: switched back to their still-running containers), not a plain
          // `up`, which would scale a rolling service down under the proxy
          const running = await h.releaseManifest(facts.current, `${host.label}: release ${facts.current}`);
          await bringUp(h.runner, running, h.env({ LADING_RELEASE: facts.current }), zdt, true);
        }
        throw err;
      }
      await h.record(manifest, { ...entry, result: 'success' }, 'switch history');
      result.status = 'deployed';
    },
  );
  return { release: chosen, hosts: results, ok: results.every((r) => r.status === 'deployed') };
}

export async function runReleasesStage(opts: HostStageOptions): Promise<HostReleases[]> {
  const settings = opts.settings.deploy;
  const common = baseEnv(settings, projectFrom(settings));
  const out: HostReleases[] = [];
  for (const host of settings.hosts) {
    const ctx = { host: host.label, reporter: opts.reporter, timeoutMs: settings.stepTimeoutMs };
    const base = forHost(common, host);
    let session: HostSession | undefined;
    try {
      const s = (session = await opts.deps.connector(host, settings, opts.reporter));
      out.push(await releasesOf(host.label, (name) => step(s, name, base, ctx)));
    } catch (err) {
      out.push({ host: host.label, releases: [], history: [], error: describeError(err) });
    } finally {
      await session?.close();
    }
  }
  return out;
}

/**
 * Maintenance mode on or off for the current release's host names on every host (`maintenance`: on | off;
 * `maintenance-page`: the HTML answered with 503, a file path or the text).
 */
export async function runMaintenanceStage(
  opts: HostStageOptions & { maintenance: MaintenanceSettings },
): Promise<DeployResult> {
  const settings = opts.settings.deploy;
  const project = projectFrom(settings);
  const zdt = opts.settings.rolling;
  const mode = opts.maintenance.on ? 'on' : 'off';
  const { page } = opts.maintenance;
  const common = baseEnv(settings, project);
  const results = await eachHost(
    opts,
    settings,
    common,
    (h) => `maintenance ${mode} → ${h.label}`,
    {},
    async (h, result, _reporter, host) => {
      const facts = await h.facts();
      if (!facts.current) throw new LadingError(`${h.base.LADING_PROJECT} has no current release on ${host.label}`);
      result.release = facts.current;
      const env = h.env({ LADING_RELEASE: facts.current });
      const manifest = await h.releaseManifest(facts.current);
      await setMaintenance(h.runner, env, manifest, h.base.LADING_PROJECT!, zdt, mode === 'on', page);
      result.status = 'deployed';
    },
  );
  return { release: mode, hosts: results, ok: results.every((r) => r.status === 'deployed') };
}
