import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type AuthSettings, credentialFor } from '../io/registry-auth.ts';
import type { PtyRequest, RemoteProcess } from '../io/remote-process.ts';
import type { SshTarget } from '../io/ssh.ts';
import { type ShellProcess, StepShell } from '../io/step-shell.ts';
import {
  type HistoryAction,
  type HostSpec,
  historyEntry,
  PROJECT_RE,
  parseFacts,
  parseHistory,
  parseHosts,
  parseInventory,
  parseMaxFailures,
  planBatches,
  downgradeReason,
  ROOT_RE,
  releaseFiles,
  releaseId,
  rollbackTarget,
} from '../lib/deploy-plan.ts';
import { InputError, LadingError, describeError } from '../lib/errors.ts';
import { parseBool, parseInteger, parsePairs } from '../lib/inputs.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { detectProvider, parseProviderOverrides, registryHostOf } from '../lib/registry.ts';
import HOST_SCRIPT from '../lib/remote/host.sh.ts';
import { envAssignments } from '../lib/shell.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { readRegistryAuth } from './registry-inputs.ts';
import { readManifestFrom, readManifestLimits } from './manifest-source.ts';
import { readStoreOptions } from './store-inputs.ts';
import { ImageShipper, parseImageFetch, storeImages } from './store-images.ts';
import { deferUntilGroup, type Reporter } from './reporter.ts';
import { DeployHooks, type HookOutcome } from './hooks.ts';
import { type RollingSettings, readRollingSettings, rollOut, rollingPlan, setMaintenance } from './rolling.ts';

/** What the deploy needs from a connected host: run a host step, upload a file. */
export interface HostSession {
  exec(
    script: string,
    opts: {
      env?: Record<string, string>;
      timeoutMs?: number;
      onStdout?: (s: string) => void;
      onStderr?: (s: string) => void;
    },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  upload(remotePath: string, content: string | Buffer, mode: number): Promise<void>;
  /** Streams a local file up (image archives): memory stays flat in the file's size. Atomic like upload. */
  uploadFile(remotePath: string, localPath: string, mode: number): Promise<void>;
  /** A long-lived /bin/sh -s for many steps (optional: without it every step is a fresh exec). */
  shell?(): Promise<ShellProcess>;
  /** Runs an uploaded script with live streams (logs --follow, exec; optional: those verbs need it). */
  spawn?(path: string, opts: { pty?: PtyRequest }): Promise<RemoteProcess>;
  close(): Promise<void> | void;
}

/** SSH settings shared by every host (an SshTarget without host, port and user). */
export type SshSettings = Omit<SshTarget, 'host' | 'port' | 'user'>;

export interface DeploySettings {
  hosts: HostSpec[];
  ssh: SshSettings;
  root: string;
  project?: string;
  keep: number;
  /** Remove the images only pruned releases pinned (those no kept release and no container uses). */
  pruneImages: boolean;
  /** compose-secrets: written to the release's 0600 .env, never to the manifest. */
  composeSecrets: Record<string, string>;
  lockTtl: number;
  lockWait: number;
  healthTimeout: number;
  healthStable: number;
  probeUrl?: string;
  stepTimeoutMs: number;
  maxParallel: number;
  failFast: boolean;
  /** Hosts that may fail (or roll back) before no further batch starts (fail-fast = 0). */
  maxFailures: number;
  /** Hosts deployed first, on their own; any failure among them stops the rollout. */
  canary: number;
  rollbackOnFailure: boolean;
  allowDowngrade: boolean;
  owner: string;
  /** The lock's owner token: the run id and a random part, unique to this deploy (matrix jobs share a run id). */
  lockOwner?: string;
  auth: Omit<AuthSettings, 'mask' | 'log'>;
  overrides: ReturnType<typeof parseProviderOverrides>;
}

export interface HostResult {
  host: string;
  status: 'deployed' | 'rolled-back' | 'failed' | 'skipped';
  release?: string;
  previous?: string;
  error?: string;
  seconds: number;
}

async function readText(read: InputReader, name: string): Promise<string | undefined> {
  const v = read(name);
  if (!v) return undefined;
  if (v.includes('\n') || v.trimStart().startsWith('-----') || v.includes(' ')) return v;
  try {
    return await readFile(v, 'utf8'); // a path to the file
  } catch {
    return v;
  }
}

export async function readDeploySettings(
  read: InputReader,
  env: Record<string, string | undefined>,
): Promise<DeploySettings> {
  const privateKey = await readText(read, 'ssh-key');
  if (!privateKey) throw new InputError('ssh-key', 'is empty', 'pass the private key (its text, or a file path)');
  const knownHosts = (await readText(read, 'known-hosts')) ?? '';
  const insecure = parseBool('insecure-ignore-host-key', read('insecure-ignore-host-key'), false);
  if (!knownHosts.trim() && !insecure) {
    throw new InputError(
      'known-hosts',
      'is empty: lading pins host keys and will not connect to an unknown host',
      'pass known_hosts lines (ssh-keyscan -p PORT HOST prints them; check them out of band)',
    );
  }
  const root = read('root') ?? '/srv/lading';
  if (!ROOT_RE.test(root))
    throw new InputError('root', `'${root}' must be an absolute path of letters, digits and . _ - /`);
  const project = read('project');
  if (project && !PROJECT_RE.test(project))
    throw new InputError('project', `'${project}' must be lowercase letters, digits, _ and -`);
  const ssh: DeploySettings['ssh'] = { privateKey, knownHosts, insecureIgnoreHostKey: insecure };
  const passphrase = read('ssh-passphrase');
  if (passphrase) ssh.passphrase = passphrase;
  const port = parseInteger('ssh-port', read('ssh-port'), 22, { min: 1, max: 65535 });
  const user = read('ssh-user') ?? 'root';
  const jump = read('jump-host');
  if (jump) {
    const [j] = parseHosts(jump, { user, port: 22 });
    ssh.jump = { host: j!.host, port: j!.port, user: j!.user, privateKey, knownHosts, insecureIgnoreHostKey: insecure };
    if (passphrase) ssh.jump.passphrase = passphrase;
  }
  const auth = readRegistryAuth(read);
  const settings: DeploySettings = {
    hosts: await hostsFrom(read, { user, port }),
    ssh,
    root,
    keep: parseInteger('keep-releases', read('keep-releases'), 5, { min: 1, max: 100 }),
    pruneImages: parseBool('prune-images', read('prune-images'), false),
    composeSecrets: Object.fromEntries(
      parsePairs('compose-secrets', read('compose-secrets')).map(([k, v]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
          throw new InputError('compose-secrets', `'${k}' is not a variable name`);
        return [k, v];
      }),
    ),
    lockTtl: parseInteger('lock-ttl', read('lock-ttl'), 900, { min: 10, max: 86400 }),
    lockWait: parseInteger('lock-wait', read('lock-wait'), 300, { min: 0, max: 86400 }),
    healthTimeout: parseInteger('health-timeout', read('health-timeout'), 120, { min: 1, max: 3600 }),
    healthStable: parseInteger('health-stable', read('health-stable'), 3, { min: 0, max: 600 }),
    stepTimeoutMs: parseInteger('step-timeout', read('step-timeout'), 900, { min: 10, max: 86400 }) * 1000,
    maxParallel: parseInteger('max-parallel', read('max-parallel'), 1, { min: 1, max: 1000 }),
    failFast: parseBool('fail-fast', read('fail-fast'), true),
    maxFailures: 0,
    canary: parseInteger('canary', read('canary'), 0, { min: 0, max: 100000 }),
    rollbackOnFailure: parseBool('rollback', read('rollback'), true),
    allowDowngrade: parseBool('allow-downgrade', read('allow-downgrade'), false),
    owner: (
      read('run-id') ??
      (env.GITHUB_RUN_ID ? `gh-${env.GITHUB_RUN_ID}.${env.GITHUB_RUN_ATTEMPT ?? 1}` : `pid-${process.pid}`)
    ).replace(/[^A-Za-z0-9._-]/g, '_'),
    auth,
    overrides: parseProviderOverrides(read('registry-providers')),
  };
  settings.lockOwner = `${settings.owner}-${randomBytes(4).toString('hex')}`;
  settings.maxFailures = parseMaxFailures(read('max-failures'), settings.hosts.length, settings.failFast);
  if (project) settings.project = project;
  const probe = read('probe-url');
  if (probe) {
    if (!/^https?:\/\/\S+$/.test(probe)) throw new InputError('probe-url', `'${probe}' is not an http(s) URL`);
    settings.probeUrl = probe;
  }
  return settings;
}

async function hostsFrom(read: InputReader, defaults: { user: string; port: number }): Promise<HostSpec[]> {
  const inventory = await readText(read, 'inventory');
  const hosts = [
    ...(read('hosts') ? parseHosts(read('hosts'), defaults) : []),
    ...(inventory ? parseInventory(inventory, defaults) : []),
  ];
  if (hosts.length === 0) throw new InputError('hosts', 'no host given', 'list hosts, or pass an inventory');
  const seen = new Set<string>();
  for (const h of hosts) {
    const key = `${h.user}@${h.host}:${h.port}/${h.root ?? ''}/${h.project ?? ''}`;
    if (seen.has(key)) throw new InputError('hosts', `${h.label} is listed twice`);
    seen.add(key);
  }
  return hosts;
}

export async function loadManifest(read: InputReader): Promise<Manifest> {
  return readManifestFrom('manifest', read('manifest'), {
    storeOptions: readStoreOptions(read),
    ...readManifestLimits(read),
  });
}

// One step shell per session: the host script is sent once per connection, each step is one round trip.
const shells = new WeakMap<HostSession, Promise<StepShell>>();

async function stepShell(session: HostSession, host: string): Promise<StepShell | undefined> {
  if (!session.shell) return undefined;
  let shell = shells.get(session);
  if (!shell || !(await shell.then((s) => s.alive).catch(() => false))) {
    shell = session.shell().then((proc) => StepShell.start(proc, HOST_SCRIPT, host));
    shells.set(session, shell);
  }
  return shell;
}

/**
 * Runs named steps of the host script (`then`: more script after them, such as release files in here-documents);
 * a non-zero exit is a LadingError carrying the host's stderr.
 */
async function step(
  session: HostSession,
  name: string,
  env: Record<string, string>,
  ctx: { host: string; reporter: Reporter; timeoutMs: number },
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

/** What every host-facing stage (deploy, rollback, releases; compose and swarm) is given. */
export interface HostStageOptions {
  read: InputReader;
  env: Record<string, string | undefined>;
  reporter: Reporter;
  connector: Connector;
  now?: () => Date;
}

export type Connector = (host: HostSpec, settings: DeploySettings, reporter: Reporter) => Promise<HostSession>;

/** Short-lived registry logins for the hosts, minted on the runner. */
export async function registryLogins(
  manifest: Manifest,
  settings: DeploySettings,
  reporter: Reporter,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const registries = [
    ...new Set(manifest.images.flatMap((i) => (i.transport.kind === 'registry' ? [registryHostOf(i.name)] : []))),
  ];
  let n = 0;
  for (const host of registries) {
    const provider = settings.overrides[host.toLowerCase()] ?? detectProvider(host, settings.overrides);
    const cred = await credentialFor(host, provider, {
      ...settings.auth,
      hostsFromManifest: true,
      mask: reporter.secret,
      log: reporter.info,
    });
    if (!cred) continue;
    n++;
    env[`LADING_LOGIN_${n}_HOST`] = cred.host;
    env[`LADING_LOGIN_${n}_USER`] = cred.username;
    env[`LADING_LOGIN_${n}_PASS`] = cred.password;
  }
  env.LADING_LOGIN_COUNT = String(n);
  return env;
}

export interface DeployResult {
  release: string;
  hosts: HostResult[];
  ok: boolean;
  /** The deploy hooks that ran (src/stages/hooks.ts), in order. */
  hooks?: HookOutcome[];
}

/**
 * Deploys a manifest to every host: lock → release dir → pull → up → health gate → switch current → history →
 * prune → unlock; on failure the previous release is brought back and the step fails. Hosts run in batches of
 * max-parallel; fail-fast stops before the next batch.
 */
export async function runDeployStage(opts: HostStageOptions): Promise<DeployResult> {
  // Notes made while preparing (registry access) are printed under the deploy header they belong to.
  const reporter = deferUntilGroup(opts.reporter);
  const now = opts.now ?? (() => new Date());
  const manifest = await loadManifest(opts.read);
  const settings = await readDeploySettings(opts.read, opts.env);
  for (const v of Object.values(settings.composeSecrets)) if (v) opts.reporter.secret(v);
  const zdt = readRollingSettings(opts.read);
  // Registry-less images: fetched from the store once here, verified, and sent to each host over SSH.
  const shipper = storeImages(manifest).length
    ? new ImageShipper(readStoreOptions(opts.read), reporter, parseImageFetch(opts.read('image-fetch')))
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

/**
 * Runs `fn` for every host in batches of max-parallel; with fail-fast, hosts after a failed batch are skipped.
 * One host at a time logs live inside its group; hosts of a parallel batch log into a buffer each, printed as one
 * group when the host is done, so groups never interleave (a `started` line shows progress meanwhile).
 */
async function forEachHost(
  settings: DeploySettings,
  reporter: Reporter,
  title: (h: HostSpec) => string,
  fn: (h: HostSpec, reporter: Reporter) => Promise<HostResult>,
): Promise<HostResult[]> {
  const results: HostResult[] = [];
  let stopped = '';
  for (const b of planBatches(settings.hosts.length, settings)) {
    const batch = b.hosts.map((i) => settings.hosts[i]!);
    const failed = results.filter((r) => r.status === 'failed' || r.status === 'rolled-back').length;
    if (!stopped && failed > settings.maxFailures) {
      stopped = `${failed} host(s) failed, over the error budget of ${settings.maxFailures} (max-failures / fail-fast)`;
    }
    if (!stopped && failed > 0 && results.some((r, i) => i < settings.canary && r.status !== 'deployed')) {
      stopped = 'a canary host failed';
    }
    if (stopped) {
      for (const h of batch)
        results.push({ host: h.label, status: 'skipped', seconds: 0, error: `not started: ${stopped}` });
      continue;
    }
    if (batch.length === 1) {
      results.push(await reporter.group(title(batch[0]!), () => fn(batch[0]!, reporter)));
      continue;
    }
    const run = async (h: HostSpec) => {
      const buffer = bufferedReporter(reporter);
      reporter.info(`${title(h)}: started`);
      let result: HostResult | undefined;
      try {
        result = await fn(h, buffer.reporter);
        return result;
      } finally {
        await buffer.flush(`${title(h)}: ${result?.status ?? 'failed'} (${result?.seconds ?? 0} s)`);
      }
    };
    results.push(...(await Promise.all(batch.map(run))));
  }
  return results;
}

/** A Reporter that keeps lines until `flush` prints them as one group (secrets are registered at once). */
function bufferedReporter(parent: Reporter): { reporter: Reporter; flush: (title: string) => Promise<void> } {
  const lines: Array<{ warning: boolean; line: string }> = [];
  return {
    reporter: {
      info: (line) => lines.push({ warning: false, line }),
      warning: (line) => lines.push({ warning: true, line }),
      group: (name, fn) => {
        lines.push({ warning: false, line: `== ${name}` });
        return fn();
      },
      secret: (value) => parent.secret(value),
    },
    flush: (title) =>
      parent.group(title, async () => {
        for (const l of lines.splice(0)) {
          if (l.warning) parent.warning(l.line);
          else parent.info(l.line);
        }
      }),
  };
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

/**
 * Brings a release up and through the health gate: `up health` (recreate), or with rolling services the rolling
 * flow (src/stages/rolling.ts). `reuse`: an earlier release whose rolling containers still run is switched back.
 */
async function upAndGate(
  session: HostSession,
  manifest: Manifest,
  env: Record<string, string>,
  zdt: RollingSettings,
  ctx: { host: string; reporter: Reporter; timeoutMs: number },
  reuse = false,
): Promise<void> {
  const plan = rollingPlan(manifest, env.LADING_PROJECT!, zdt);
  if (!plan) {
    await step(session, 'up health', env, ctx);
    return;
  }
  await rollOut((names, e) => step(session, names, e, ctx), env, plan, { reuse });
}

/** Makes the manifest's registry-less images present on one host (see ImageShipper). */
async function shipImages(
  shipper: ImageShipper,
  manifest: Manifest,
  session: HostSession,
  env: Record<string, string>,
  ctx: { host: string; reporter: Reporter; timeoutMs: number },
): Promise<void> {
  await shipper.ensure(
    manifest,
    { label: ctx.host, dir: `${env.LADING_ROOT}/${env.LADING_PROJECT}`, session },
    (name, extra) => step(session, name, { ...env, ...extra }, ctx),
  );
}

/** The base env with a host's inventory overrides (root, project, probe URL). */
function forHost(base: Record<string, string>, host: HostSpec): Record<string, string> {
  const env = { ...base };
  if (host.root) env.LADING_ROOT = host.root;
  if (host.project) env.LADING_PROJECT = host.project;
  if (host.probeUrl) env.LADING_PROBE_URL = host.probeUrl;
  return env;
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
        await step(session, 'lock', base, ctx);
        base.LADING_LOCK_HELD = '1';
        locked = true;
        const facts = parseFacts(await step(session, 'facts', base, ctx));
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
            readStoreOptions(opts.read),
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

export interface HostReleases {
  host: string;
  current?: string;
  releases: string[];
  history: ReturnType<typeof parseHistory>;
  error?: string;
}

/** What is on each host: releases on disk, the current one, and the history (who deployed what, when). */
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
