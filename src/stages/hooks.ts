import { runRunnerHook } from '../io/runner-hook.ts';
import { describeError, LadingError } from '../lib/errors.ts';
import { HOOK_NAMES, type HookInputs, type HookName, type Hooks, readHooks, runnerHookEnv } from '../lib/hooks.ts';
import type { Manifest } from '../lib/manifest.ts';
import { argvEnv, opsHistoryLine } from '../lib/ops.ts';
import HOST_SCRIPT from '../lib/remote/host.sh.ts';
import OPS_SCRIPT from '../lib/remote/ops.sh.ts';
import type { HostSession } from '../io/host-session.ts';
import type { Reporter } from '../io/reporter.ts';
import type { HostSteps, RecordEntry } from './host/flow.ts';
import { type StepRunner, step } from './host/steps.ts';

export interface HookOutcome {
  hook: HookName;
  host: string;
  ok: boolean;
  seconds: number;
  error?: string;
}

/**
 * How a target runs a hook's one-off container: the ops.sh step (compose: ops_hook, `compose run` of the release;
 * swarm: ops_swarm_hook, `docker run` of the service's image on the manager), the step's variables for the hook's
 * service, and the target's step runner (the history line goes through it, on the session's step shell).
 */
export interface HookDriver {
  step: string;
  vars?: (service: string) => Record<string, string>;
  run: StepRunner;
}

const COMPOSE_HOOKS: HookDriver = { step: 'ops_hook', run: step };

interface HookOptions {
  manifest: Manifest;
  release: string;
  project: string;
  owner: string;
  now: () => Date;
  driver?: HookDriver;
}

/**
 * The hooks of one deploy (src/lib/hooks.ts says when each runs): runs them on a host session in a one-off container
 * of the new release (the target's HookDriver), their output in the host's log group, each run recorded in the host's
 * history; and the runner hook, a local script, before and after.
 */
export class DeployHooks {
  readonly outcomes: HookOutcome[] = [];

  private constructor(
    private readonly hooks: Hooks,
    private readonly runnerHook: string | undefined,
    private readonly o: HookOptions,
  ) {}

  static of(inputs: HookInputs, o: HookOptions): DeployHooks {
    return new DeployHooks(readHooks(inputs, o.manifest), inputs.runnerHook, o);
  }

  /** The services the declared hooks run in (each once). */
  get services(): string[] {
    return [...new Set(HOOK_NAMES.flatMap((n) => this.hooks[n]?.service ?? []))];
  }

  /** A pre-deploy hook makes the first host go alone: nothing else starts before it passed. */
  get firstHostAlone(): boolean {
    return !!this.hooks['pre-deploy'];
  }

  has(name: HookName): boolean {
    return !!this.hooks[name];
  }

  /** Runs hook `name` (when declared) on a host whose new release is in place (files written, images pulled). */
  async run(
    name: HookName,
    session: HostSession,
    env: Record<string, string>,
    host: string,
    reporter: Reporter,
  ): Promise<void> {
    const hook = this.hooks[name];
    if (!hook) return;
    const started = Date.now();
    reporter.info(
      `[${host}] hook ${name} (${hook.source}): ${hook.argv.join(' ')} in a one-off ${hook.service} container`,
    );
    const log = (chunk: string) => {
      for (const l of chunk.split('\n')) if (l.trim()) reporter.info(`[${host}] ${name} | ${l}`);
    };
    let error: string | undefined;
    const driver = this.o.driver ?? COMPOSE_HOOKS;
    try {
      // its own exec, not a step: the container's output streams into the log as it comes, under the hook's name
      const res = await session.exec(`${HOST_SCRIPT}\n${OPS_SCRIPT}\nlading_ops ${driver.step}\n`, {
        env: {
          ...env,
          ...driver.vars?.(hook.service),
          LADING_HOOK: name,
          LADING_SERVICE: hook.service,
          LADING_HOOK_TIMEOUT: String(hook.timeout),
          ...argvEnv(hook.argv),
        },
        timeoutMs: (hook.timeout + 60) * 1000,
        onStdout: log,
        onStderr: log,
      });
      if (res.code !== 0) {
        const said = res.stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit status ${res.code}`;
        error = said.replace(/^lading: /, '');
      }
    } catch (err) {
      error = describeError(err);
    }
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    this.outcomes.push({ hook: name, host, ok: !error, seconds, ...(error ? { error } : {}) });
    const line = opsHistoryLine(this.o.now(), 'hook', error ? 'failure' : 'success', this.o.owner, {
      hook: name,
      for: this.o.release,
      command: hook.argv,
      seconds,
      ...(error ? { error: error.slice(0, 500) } : {}),
    });
    await driver
      .run(session, 'history', { ...env, LADING_HISTORY_LINE: line }, { host, reporter, timeoutMs: 60_000 })
      .catch(() => undefined);
    if (error) {
      throw new LadingError(
        `hook ${name} failed on ${host}: ${error}`,
        name === 'pre-deploy' || name === 'pre-switch'
          ? 'nothing was switched: the previous release still serves'
          : undefined,
      );
    }
    reporter.info(`[${host}] hook ${name} passed (${seconds} s)`);
  }

  /**
   * The switch of a host to the new release, recorded: switch, history and `tail` (prune, unlock) in one round trip,
   * or, with a post-switch hook, the hook between the switch and the tail.
   */
  async switchOn(h: HostSteps, manifest: Manifest, entry: RecordEntry, tail: string): Promise<void> {
    if (!this.has('post-switch')) return h.record(manifest, entry, `switch history ${tail}`);
    const at = { LADING_RELEASE: entry.release };
    await h.record(manifest, entry, 'switch history');
    await this.run('post-switch', h.session, h.env(at), h.label, h.ctx.reporter);
    await h.run(tail, at);
  }

  /** The runner hook (a local script), when given: before the deploy, and after it (post-deploy or failure). */
  async runner(
    name: 'pre-deploy' | 'post-deploy' | 'failure',
    hosts: string[],
    reporter: Reporter,
    result?: { ok: boolean; error?: string },
  ): Promise<void> {
    if (!this.runnerHook) return;
    const env = runnerHookEnv({
      hook: name,
      manifest: this.o.manifest,
      release: this.o.release,
      project: this.o.project,
      hosts,
      ...(result ? { result: result.ok ? 'success' : 'failure' } : {}),
      ...(result?.error ? { error: result.error } : {}),
    });
    const res = await runRunnerHook(this.runnerHook, env, {
      timeoutMs: 300_000,
      log: (l) => reporter.info(`runner-hook ${name} | ${l}`),
    });
    if (res.error) reporter.warning(`runner-hook ${name}: ${res.error} (the deploy goes on)`);
  }

  /**
   * The end of a deploy, whatever the target: post-deploy (when every host deployed) in its own log group on the
   * first host, over a new connection (`first`), then the runner hook (post-deploy, or failure). Returns whether the
   * deploy is ok once post-deploy ran, and the error to report.
   */
  async finish(
    ok: boolean,
    firstError: string | undefined,
    hosts: string[],
    reporter: Reporter,
    first: { label: string; connect: () => Promise<HostSession>; env: Record<string, string> },
  ): Promise<{ ok: boolean; error?: string }> {
    let error = firstError;
    if (ok && this.has('post-deploy')) {
      const hookError = await reporter.group(`hook post-deploy → ${first.label}`, async () => {
        let session: HostSession | undefined;
        try {
          session = await first.connect();
          await this.run('post-deploy', session, first.env, first.label, reporter);
          return undefined;
        } catch (err) {
          return describeError(err);
        } finally {
          await session?.close();
        }
      });
      if (hookError) {
        ok = false;
        error = hookError;
      }
    }
    await this.runner(ok ? 'post-deploy' : 'failure', hosts, reporter, { ok, ...(error ? { error } : {}) });
    return { ok, ...(error ? { error } : {}) };
  }
}
