import type { HostSession } from '../io/host-session.ts';
import { deferUntilGroup, type Reporter } from '../io/reporter.ts';
import {
  type HistoryAction,
  type HostSpec,
  historyEntry,
  parseFacts,
  parseHistory,
  downgradeReason,
  releaseFiles,
  releaseId,
  rollbackTarget,
} from '../lib/deploy-plan.ts';
import { checkManifestPolicy } from '../lib/compose-policy.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { loadManifest, readDeploySettings, readText } from '../settings/deploy.ts';
import { parseStoreOptions } from '../settings/common.ts';
import { forEachHost } from './host/batches.ts';
import { ImageShipper, parseImageFetch, storeImages } from './host/images.ts';
import { registryLogins } from './host/logins.ts';
import { baseEnv, forHost, releasesOf, releaseFilesScript, step, type StepContext } from './host/steps.ts';
import type { DeployResult, DeploySettings, HostReleases, HostResult, HostStageOptions } from './host/types.ts';
import { DeployHooks } from './hooks.ts';
import { type RollingSettings, bringUp, readRollingSettings, setMaintenance } from './rolling.ts';

// The compose target: deploy, rollback and releases over hosts (SSH, or this machine for the agent).

export type { DeployResult, HostReleases, HostResult, HostStageOptions } from './host/types.ts';

/**
 * Deploys a manifest to every host: lock → release dir → pull → up → health gate → switch current → history →
 * prune → unlock; on failure the previous release is brought back and the step fails. Hosts run in batches of
 * max-parallel; fail-fast stops before the next batch.
 */
export async function runDeployStage(opts: HostStageOptions): Promise<DeployResult> {
  // Notes made while preparing (registry access) are printed under the deploy header they belong to.
  const reporter = deferUntilGroup(opts.reporter);
  const now = opts.now ?? (() => new Date());
  const manifest = opts.manifest ?? (await loadManifest(opts.read));
  const settings = await readDeploySettings(opts.read, opts.env);
  for (const v of Object.values(settings.composeSecrets)) if (v) opts.reporter.secret(v);
  const zdt = readRollingSettings(opts.read);
  // Registry-less images: fetched from the store once here, verified, and sent to each host over SSH.
  const shipper = storeImages(manifest).length
    ? new ImageShipper(parseStoreOptions(opts.read), reporter, parseImageFetch(opts.read('image-fetch')))
    : undefined;
  const project = settings.project ?? manifest.compose?.project;
  if (!project)
    throw new InputError(
      'project',
      'is empty and the manifest names no compose project',
      'set project (or compose-project in the manifest step)',
    );
  const release = releaseId(now(), manifest.primary);
  releaseFiles(manifest, { project, release }); // refuses a manifest without compose files before any host
  checkManifestPolicy(manifest, settings.composePolicy, settings.composeSecrets); // compose-policy strict: refused before any host is touched
  const logins = await registryLogins(manifest, settings, reporter).catch((err: unknown) => {
    reporter.flush();
    throw err;
  });
  const connector = opts.connector;
  const common = baseEnv(settings, project);
  // pre-deploy / pre-switch / post-switch / post-deploy (src/stages/hooks.ts); a pre-deploy hook runs on the first
  // host, which then goes alone (as a canary): no other host starts before it passed
  const hooks = DeployHooks.read(opts.read, { manifest, release, project, owner: settings.owner, now });
  if (hooks.firstHostAlone) settings.canary = Math.max(settings.canary, 1);

  const images = manifest.images.map((i) => i.ref).join('\n');
  // The release files once per compose project, not once per host (a fleet shares them).
  const scripts = new Map<string, string>();
  const filesScript = (p: string) => {
    if (!scripts.has(p)) {
      const extraEnv = settings.composeSecrets;
      scripts.set(p, releaseFilesScript(releaseFiles(manifest, { project: p, release, extraEnv }).files));
    }
    return scripts.get(p)!;
  };

  async function deployHost(host: HostSpec, reporter: Reporter): Promise<HostResult> {
    const base = forHost(common, host);
    const started = Date.now();
    const result: HostResult = { host: host.label, status: 'failed', release, seconds: 0 };
    const ctx = { host: host.label, reporter, timeoutMs: settings.stepTimeoutMs };
    let session: HostSession | undefined;
    let locked = false;
    try {
      session = await connector(host, settings, reporter);
      locked = true; // unlock only ever removes a lock this run owns
      const facts = parseFacts(await step(session, 'lock facts', base, ctx));
      base.LADING_LOCK_HELD = '1'; // from here on, every mutating step checks (and renews) the lock first
      if (facts.current) result.previous = facts.current;
      base.LADING_COMPOSE = facts.compose;
      reporter.info(`[${host.label}] ${facts.compose}; current release: ${facts.current ?? '(none)'}`);
      if (facts.current && !settings.allowDowngrade) {
        const running = await step(session, 'release_manifest', { ...base, LADING_RELEASE: facts.current }, ctx)
          .then((text) => parseManifest(text, `release ${facts.current}`))
          .catch(() => undefined); // a release without a readable manifest cannot be compared
        const why = running && downgradeReason(manifest, running);
        if (why) {
          throw new LadingError(`refusing to downgrade: ${why}`, 'set allow-downgrade: true, or use command rollback');
        }
      }
      const external = manifest.compose?.external ?? [];
      if (external.length > 0) {
        // mount sources outside the project are the host's: all there, or nothing changes
        await step(session, 'check_paths', { ...base, LADING_PATHS: external.map((e) => e.path).join('\n') }, ctx);
      }
      const env = { ...base, LADING_RELEASE: release };
      await step(session, 'mkrelease', env, ctx, filesScript(base.LADING_PROJECT!)); // the release dir and its files
      if (shipper) await shipImages(shipper, manifest, session, env, ctx);
      await step(session, 'pull', { ...env, ...logins, LADING_IMAGES: images }, ctx);
      if (host === settings.hosts[0]) await hooks.run('pre-deploy', session, env, host.label, reporter);
      await hooks.run('pre-switch', session, env, host.label, reporter);
      try {
        await upAndGate(session, manifest, env, zdt, ctx);
      } catch (err) {
        const why = describeError(err);
        await record(session, 'deploy', 'failure', release, result.previous, why);
        if (settings.rollbackOnFailure && facts.current) {
          reporter.warning(`[${host.label}] deploy of ${release} failed; rolling back to ${facts.current}`);
          const back = { ...base, LADING_RELEASE: facts.current };
          try {
            const previous = parseManifest(
              await step(session, 'release_manifest', back, ctx),
              `release ${facts.current}`,
            );
            await step(
              session,
              'pull',
              { ...back, ...logins, LADING_IMAGES: previous.images.map((i) => i.ref).join('\n') },
              ctx,
            );
            await upAndGate(session, previous, back, zdt, ctx, true);
            await record(session, 'auto-rollback', 'success', facts.current, release, undefined, previous);
          } catch (rollbackErr) {
            throw new LadingError(
              `${why}\nrolling back to ${facts.current} failed too: ${describeError(rollbackErr)}`,
              'the host needs a look: lading releases shows what is there',
            );
          }
          result.status = 'rolled-back';
          result.error = why;
          return result;
        }
        throw err;
      }
      // switch current, record, prune and unlock in one round trip (a post-switch hook runs between)
      const post = hooks.has('post-switch');
      await record(
        session,
        'deploy',
        'success',
        release,
        result.previous,
        undefined,
        manifest,
        post ? 'switch history' : 'switch history prune unlock',
      );
      if (post) {
        await hooks.run('post-switch', session, env, host.label, reporter);
        await step(session, 'prune unlock', env, ctx);
      }
      locked = false;
      result.status = 'deployed';
      return result;
    } catch (err) {
      result.status = 'failed';
      result.error = describeError(err);
      return result;
    } finally {
      if (session && locked) await step(session, 'unlock', base, ctx).catch(() => undefined);
      await session?.close();
      result.seconds = Math.round((Date.now() - started) / 100) / 10;
    }

    async function record(
      s: HostSession,
      action: HistoryAction,
      res: 'success' | 'failure',
      rel: string,
      previous?: string,
      error?: string,
      of: Manifest = manifest,
      steps = 'history',
    ) {
      const line = JSON.stringify(
        historyEntry(of, {
          time: now(),
          action,
          result: res,
          release: rel,
          previous,
          error,
          run: settings.owner,
        }),
      );
      await step(s, steps, { ...base, LADING_RELEASE: release, LADING_HISTORY_LINE: line }, ctx);
    }
  }

  try {
    const labels = settings.hosts.map((h) => h.label);
    await hooks.runner('pre-deploy', labels, reporter);
    const results = await forEachHost(settings, reporter, (h) => `deploy ${release} → ${h.label}`, deployHost);
    let ok = results.every((r) => r.status === 'deployed');
    let hookError: string | undefined;
    if (ok && hooks.has('post-deploy')) {
      const first = settings.hosts[0]!;
      hookError = await reporter.group(`hook post-deploy → ${first.label}`, async () => {
        let session: HostSession | undefined;
        try {
          session = await connector(first, settings, reporter);
          const env = { ...forHost(common, first), LADING_RELEASE: release };
          await hooks.run('post-deploy', session, env, first.label, reporter);
          return undefined;
        } catch (err) {
          return describeError(err);
        } finally {
          await session?.close();
        }
      });
      if (hookError) ok = false;
    }
    const firstError = hookError ?? results.find((r) => r.error)?.error;
    await hooks.runner(ok ? 'post-deploy' : 'failure', labels, reporter, {
      ok,
      ...(firstError ? { error: firstError } : {}),
    });
    return { release, hosts: results, ok, ...(hooks.outcomes.length ? { hooks: hooks.outcomes } : {}) };
  } finally {
    await shipper?.close();
  }
}

/** upAndGate (src/stages/rolling.ts) with this host's steps. */
function upAndGate(
  session: HostSession,
  manifest: Manifest,
  env: Record<string, string>,
  zdt: RollingSettings,
  ctx: StepContext,
  reuse = false,
): Promise<void> {
  return bringUp((names, e) => step(session, names, e, ctx), manifest, env, zdt, reuse);
}

/** Makes the manifest's registry-less images present on one host (see ImageShipper). */
async function shipImages(
  shipper: ImageShipper,
  manifest: Manifest,
  session: HostSession,
  env: Record<string, string>,
  ctx: StepContext,
): Promise<void> {
  await shipper.ensure(
    manifest,
    { label: ctx.host, dir: `${env.LADING_ROOT}/${env.LADING_PROJECT}`, session },
    (name, extra) => step(session, name, { ...env, ...extra }, ctx),
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
  const { reporter } = opts;
  const now = opts.now ?? (() => new Date());
  const settings = await readDeploySettings(opts.read, opts.env);
  const project = projectFrom(settings);
  const to = opts.read('to') ?? 'previous';
  const zdt = readRollingSettings(opts.read);
  const common = baseEnv(settings, project);
  let chosen = '';
  const results = await forEachHost(
    settings,
    reporter,
    (h) => `rollback ${h.label} to ${to}`,
    async (host, reporter) => {
      const started = Date.now();
      const result: HostResult = { host: host.label, status: 'failed', seconds: 0 };
      const ctx = { host: host.label, reporter, timeoutMs: settings.stepTimeoutMs };
      const base = forHost(common, host);
      let session: HostSession | undefined;
      let locked = false;
      try {
        session = await opts.connector(host, settings, reporter);
        locked = true; // unlock only ever removes a lock this run owns
        const facts = parseFacts(await step(session, 'lock facts', base, ctx));
        base.LADING_LOCK_HELD = '1';
        const history = parseHistory(await step(session, 'history_read', base, ctx));
        const target = rollbackTarget(history, facts.releases, facts.current, to);
        chosen = target;
        result.release = target;
        if (facts.current) result.previous = facts.current;
        const env = { ...base, LADING_RELEASE: target };
        const manifest = parseManifest(
          await step(session, 'release_manifest', env, ctx),
          `${host.label}: release ${target}`,
        );
        const logins = await registryLogins(manifest, settings, reporter);
        if (storeImages(manifest).length) {
          const shipper = new ImageShipper(
            parseStoreOptions(opts.read),
            reporter,
            parseImageFetch(opts.read('image-fetch')),
          );
          await shipImages(shipper, manifest, session, env, ctx).finally(() => shipper.close());
        }
        await step(
          session,
          'pull',
          { ...env, ...logins, LADING_IMAGES: manifest.images.map((i) => i.ref).join('\n') },
          ctx,
        );
        const record = (res: 'success' | 'failure', error?: string) =>
          step(
            session!,
            'history',
            {
              ...base,
              LADING_HISTORY_LINE: JSON.stringify(
                historyEntry(manifest, {
                  time: now(),
                  action: 'rollback',
                  result: res,
                  release: target,
                  previous: facts.current,
                  error,
                  run: settings.owner,
                }),
              ),
            },
            ctx,
          );
        try {
          await upAndGate(session, manifest, env, zdt, ctx, true);
        } catch (err) {
          await record('failure', describeError(err));
          if (facts.current) {
            reporter.warning(`[${host.label}] rollback to ${target} failed; bringing ${facts.current} back`);
            const back = { ...base, LADING_RELEASE: facts.current };
            await step(session, 'up health', back, ctx);
          }
          throw err;
        }
        await step(session, 'switch', env, ctx);
        await record('success');
        result.status = 'deployed';
        return result;
      } catch (err) {
        result.error = describeError(err);
        return result;
      } finally {
        if (session && locked) await step(session, 'unlock', base, ctx).catch(() => undefined);
        await session?.close();
        result.seconds = Math.round((Date.now() - started) / 100) / 10;
      }
    },
  );
  return { release: chosen, hosts: results, ok: results.every((r) => r.status === 'deployed') };
}

export async function runReleasesStage(opts: HostStageOptions): Promise<HostReleases[]> {
  const settings = await readDeploySettings(opts.read, opts.env);
  const common = baseEnv(settings, projectFrom(settings));
  const out: HostReleases[] = [];
  for (const host of settings.hosts) {
    const ctx = { host: host.label, reporter: opts.reporter, timeoutMs: settings.stepTimeoutMs };
    const base = forHost(common, host);
    let session: HostSession | undefined;
    try {
      const s = (session = await opts.connector(host, settings, opts.reporter));
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
export async function runMaintenanceStage(opts: HostStageOptions): Promise<DeployResult> {
  const settings = await readDeploySettings(opts.read, opts.env);
  const project = projectFrom(settings);
  const zdt = readRollingSettings(opts.read);
  const mode = (opts.read('maintenance') ?? '').trim();
  if (mode !== 'on' && mode !== 'off') throw new InputError('maintenance', `'${mode}' is not on or off`);
  const page = mode === 'on' ? await readText(opts.read, 'maintenance-page') : undefined;
  const common = baseEnv(settings, project);
  const results = await forEachHost(
    settings,
    opts.reporter,
    (h) => `maintenance ${mode} → ${h.label}`,
    async (host, reporter) => {
      const started = Date.now();
      const result: HostResult = { host: host.label, status: 'failed', seconds: 0 };
      const ctx = { host: host.label, reporter, timeoutMs: settings.stepTimeoutMs };
      const base = forHost(common, host);
      let session: HostSession | undefined;
      try {
        const s = (session = await opts.connector(host, settings, reporter));
        const facts = parseFacts(await step(s, 'facts', base, ctx));
        if (!facts.current) throw new LadingError(`${base.LADING_PROJECT} has no current release on ${host.label}`);
        result.release = facts.current;
        const env = { ...base, LADING_RELEASE: facts.current };
        const manifest = parseManifest(await step(s, 'release_manifest', env, ctx), `release ${facts.current}`);
        await setMaintenance(
          (n, e) => step(s, n, e, ctx),
          env,
          manifest,
          base.LADING_PROJECT!,
          zdt,
          mode === 'on',
          page,
        );
        result.status = 'deployed';
      } catch (err) {
        result.error = describeError(err);
      } finally {
        await session?.close();
        result.seconds = Math.round((Date.now() - started) / 100) / 10;
      }
      return result;
    },
  );
  return { release: mode, hosts: results, ok: results.every((r) => r.status === 'deployed') };
}
