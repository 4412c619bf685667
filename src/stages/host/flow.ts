import type { HostSession } from '../../io/host-session.ts';
import type { Reporter } from '../../io/reporter.ts';
import {
  type Facts,
  type HistoryAction,
  type HistoryEntry,
  downgradeReason,
  historyEntry,
  parseFacts,
  parseHistory,
} from '../../lib/deploy-plan.ts';
import { LadingError, describeError } from '../../lib/errors.ts';
import { type Manifest, parseManifest } from '../../lib/manifest.ts';
import { type RunStep, type StepContext, type StepRunner, step, swarmStep } from './steps.ts';
import type { HostResult } from './types.ts';

/**
 * The per-host release flow every target shares: connect → lock + facts → (the target's ship / pull / up / health)
 * → switch + record → unlock, with the step outputs parsed into typed values here. A driver says how the steps run
 * (the compose host's host.sh, or host.sh + swarm.sh on a swarm manager); the targets (deploy.ts, swarm.ts) hold
 * only what differs between them.
 */
export interface HostDriver {
  /** Runs named steps (space-separated, one round trip) on a session; stdout back, a failure as a LadingError. */
  run: StepRunner;
  /** The lock and the facts in one round trip (swarm: facts first, so a host that is no manager is refused before
   * the lock creates anything). */
  lockFacts: string;
  /** The facts alone (no lock). */
  facts: string;
}

export const COMPOSE_DRIVER: HostDriver = { run: step, lockFacts: 'lock facts', facts: 'facts' };
export const SWARM_DRIVER: HostDriver = { run: swarmStep, lockFacts: 'swarm_facts lock', facts: 'swarm_facts' };

/** What a host's history records about one deploy or rollback (time and run are the flow's). */
export interface RecordEntry {
  action: HistoryAction;
  result: 'success' | 'failure';
  release: string;
  previous?: string;
  error?: string;
}

/** What every host of a stage shares: the driver, the base env, and who and when the history names. */
export interface FlowOptions {
  driver: HostDriver;
  base: Record<string, string>;
  timeoutMs: number;
  owner: string | undefined;
  now: () => Date;
}

/** The typed steps of the release flow on one connected host. */
export class HostSteps {
  private locked = false;
  readonly base: Record<string, string>;

  constructor(
    readonly session: HostSession,
    readonly ctx: StepContext,
    private readonly opts: FlowOptions,
  ) {
    this.base = { ...opts.base };
  }

  get label(): string {
    return this.ctx.host;
  }

  /** The base env with `extra` on top. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return { ...this.base, ...extra };
  }

  /** Runs named steps with the base env and `extra`; a successful `unlock` among them releases the lock. */
  async run(names: string, extra: Record<string, string> = {}, then = ''): Promise<string> {
    const out = await this.opts.driver.run(this.session, names, this.env(extra), this.ctx, then);
    if (names.split(' ').includes('unlock')) this.locked = false;
    return out;
  }

  /** Steps with a full env of the caller's (the rolling flow, image shipping and hooks build their own). */
  readonly runner: RunStep = (names, env) => this.opts.driver.run(this.session, names, env, this.ctx);

  /** Takes the project's lock (waiting up to lock-wait) and reads the facts in the same round trip. */
  async lock(): Promise<Facts> {
    this.locked = true; // unlock only ever removes a lock this run owns
    const facts = parseFacts(await this.run(this.opts.driver.lockFacts));
    this.base.LADING_LOCK_HELD = '1'; // from here on, every mutating step checks (and renews) the lock first
    return facts;
  }

  async facts(): Promise<Facts> {
    return parseFacts(await this.run(this.opts.driver.facts));
  }

  async history(): Promise<HistoryEntry[]> {
    return parseHistory(await this.run('history_read'));
  }

  /** The manifest a release on the host was deployed from. */
  async releaseManifest(release: string, what = `release ${release}`): Promise<Manifest> {
    return parseManifest(await this.run('release_manifest', { LADING_RELEASE: release }), what);
  }

  /** Refuses to deploy `next` over an older running release (allow-downgrade lifts it). */
  async refuseDowngrade(next: Manifest, current: string | undefined, allow: boolean): Promise<void> {
    if (!current || allow) return;
    // a release without a readable manifest cannot be compared
    const running = await this.releaseManifest(current).catch(() => undefined);
    const why = running && downgradeReason(next, running);
    if (why)
      throw new LadingError(`refusing to downgrade: ${why}`, 'set allow-downgrade: true, or use command rollback');
  }

  /** Appends a history line (of manifest `of`), in one round trip with `steps` around it (switch, prune, unlock). */
  async record(of: Manifest, e: RecordEntry, steps = 'history'): Promise<void> {
    const line = JSON.stringify(historyEntry(of, { ...e, time: this.opts.now(), run: this.opts.owner }));
    await this.run(steps, { LADING_RELEASE: e.release, LADING_HISTORY_LINE: line });
  }

  /** Releases a lock this run took and still holds (best effort: the lock's TTL ends it otherwise). */
  async unlock(): Promise<void> {
    if (!this.locked) return;
    await this.run('unlock').catch(() => undefined);
    this.locked = false;
  }
}

/**
 * One host through the flow: connect, `fn` with the host's steps, and always unlock (a lock this run still holds)
 * and close. What `fn` throws becomes the host's failed result; the seconds are filled in.
 */
export async function onHost(
  opts: FlowOptions,
  result: HostResult,
  reporter: Reporter,
  connect: () => Promise<{ session: HostSession; label: string }>,
  fn: (h: HostSteps, result: HostResult) => Promise<void>,
): Promise<HostResult> {
  const started = Date.now();
  let h: HostSteps | undefined;
  try {
    const { session, label } = await connect();
    result.host = label;
    h = new HostSteps(session, { host: label, reporter, timeoutMs: opts.timeoutMs }, opts);
    await fn(h, result);
  } catch (err) {
    result.status = 'failed';
    result.error = describeError(err);
  } finally {
    if (h) {
      await h.unlock();
      await h.session.close();
    }
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
  }
  return result;
}
