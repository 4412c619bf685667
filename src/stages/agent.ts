import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AgentState, readState, writeState } from '../io/agent-state.ts';
import { type AgentConfig, manifestIdentity, manifestTime } from '../lib/agent-config.ts';
import { describeError } from '../lib/errors.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { type AgentEvent, deployHere, type Outcome } from './agent-deploy.ts';
import { type ChannelSource, checkedManifest, readManifestSecret } from './agent-source.ts';
import type { ImageEventOptions } from './agent-image-events.ts';
import { listenWebhook, type WebhookListener } from './agent-webhook.ts';
import type { DeployResult, HostSettings } from './host/types.ts';
import type { Reporter } from '../io/reporter.ts';

/**
 * The pull-mode agent on a host: hears about a new manifest for its channel (polling the published channel
 * manifest with a cheap version check — agent-source.ts —, or a signed webhook — agent-webhook.ts), and deploys it
 * here (agent-deploy.ts). One deploy at a time; requests that arrive meanwhile coalesce to the newest. What was
 * deployed or tried is remembered in the state file (io/agent-state.ts).
 */

export type { AgentEvent, Outcome };

interface Pending {
  manifest: Manifest;
  identity: string;
  origin: string;
  resolve: (e: AgentEvent) => void;
  waiters: Array<(e: AgentEvent) => void>;
}

export class Agent {
  private state: AgentState = { tried: [] };
  private loaded = false;
  /** manifest.secret-*: read when the agent starts; every manifest it deploys must be signed with it. */
  private manifestSecret: string | undefined;
  private running: Pending | undefined;
  private pending: Pending | undefined;
  private idle: Promise<void> = Promise.resolve();
  readonly events: AgentEvent[] = [];

  constructor(
    readonly cfg: AgentConfig,
    private readonly opts: {
      reporter: Reporter;
      env?: NodeJS.ProcessEnv;
      /** The deploy's typed settings, built from the config for each deploy (src/settings/agent.ts). */
      hostSettings: (env: NodeJS.ProcessEnv) => Promise<HostSettings>;
      /** Runs one deploy (tests may wrap it); default: runDeployStage with a LocalSession. */
      deploy?: (manifest: Manifest) => Promise<DeployResult>;
      now?: () => Date;
      /** Mapping registry pushes to manifests (tests shorten the wait). */
      imageEvents?: Partial<ImageEventOptions>;
    },
  ) {}

  private get env(): NodeJS.ProcessEnv {
    return this.opts.env ?? process.env;
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.manifestSecret = readManifestSecret(this.cfg, this.env); // configured but unreadable: nothing is deployed
    if (this.manifestSecret) this.opts.reporter.secret(this.manifestSecret);
    this.state = await readState(this.cfg.stateFile);
    this.loaded = true;
  }

  private async save(): Promise<void> {
    this.state.tried = this.state.tried.slice(-100);
    await writeState(this.cfg.stateFile, this.state);
  }

  /** Identity of the release this host runs now (it may have been deployed over SSH before the agent came). */
  private async runningIdentity(manifest: Manifest): Promise<string | undefined> {
    const project = this.cfg.deploy.project ?? manifest.compose?.project;
    if (!project) return undefined;
    try {
      const text = await readFile(join(this.cfg.deploy.root, project, 'current', 'manifest.json'), 'utf8');
      return manifestIdentity(parseManifest(text, 'the current release'));
    } catch {
      return undefined;
    }
  }

  private async runDeploy(manifest: Manifest): Promise<DeployResult> {
    if (this.opts.deploy) return this.opts.deploy(manifest);
    return deployHere(this.cfg, manifest, {
      settings: await this.opts.hostSettings(this.env),
      reporter: this.opts.reporter,
      env: this.env,
      ...(this.opts.now ? { now: this.opts.now } : {}),
    });
  }

  /**
   * Queues a manifest for deployment. At most one deploy runs; while it runs, one more waits, and a newer
   * manifest replaces the waiting one (an older one is dropped). Resolves when that manifest's fate is known.
   */
  async submit(manifest: Manifest, origin: string): Promise<AgentEvent> {
    await this.load();
    const identity = manifestIdentity(manifest);
    const skip = (why: string): AgentEvent => {
      this.opts.reporter.info(`${origin}: ${manifest.primary} not deployed: ${why}`);
      const e: AgentEvent = { manifest: manifest.primary, identity, outcome: 'skipped', origin, error: why };
      this.events.push(e);
      return e;
    };
    if (manifest.channel && manifest.channel !== this.cfg.channel) {
      return skip(`it is for channel ${manifest.channel}, this agent follows ${this.cfg.channel}`);
    }
    if (this.running?.identity === identity || this.pending?.identity === identity) {
      return skip('the same manifest is already being deployed or queued');
    }
    if (this.state.tried.includes(identity)) {
      return skip(this.state.deployed === identity ? 'it is already deployed' : 'it was tried before (see the log)');
    }
    const active = this.pending ?? this.running;
    if (active && manifestTime(manifest) < manifestTime(active.manifest)) {
      return skip(
        `a newer manifest (${active.manifest.primary}) is ${active === this.pending ? 'queued' : 'being deployed'}`,
      );
    }
    return new Promise<AgentEvent>((resolve) => {
      const item: Pending = { manifest, identity, origin, resolve, waiters: [] };
      if (this.pending) {
        const old = this.pending;
        this.opts.reporter.info(`${origin}: ${manifest.primary} replaces the queued ${old.manifest.primary}`);
        const e: AgentEvent = {
          manifest: old.manifest.primary,
          identity: old.identity,
          outcome: 'skipped',
          origin: old.origin,
          error: `superseded by ${manifest.primary}`,
        };
        this.events.push(e);
        old.resolve(e);
      }
      this.pending = item;
      if (!this.running) this.idle = this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const item = this.pending;
      this.pending = undefined;
      this.running = item;
      let event: AgentEvent;
      try {
        event = await this.deployOne(item);
      } catch (err) {
        event = {
          manifest: item.manifest.primary,
          identity: item.identity,
          outcome: 'failed',
          origin: item.origin,
          error: describeError(err),
        };
        this.opts.reporter.warning(`${item.origin}: ${item.manifest.primary}: ${event.error}`);
      }
      this.running = undefined;
      this.events.push(event);
      item.resolve(event);
    }
  }

  private async deployOne(item: Pending): Promise<AgentEvent> {
    const { manifest, identity, origin } = item;
    const base = { manifest: manifest.primary, identity, origin };
    if ((await this.runningIdentity(manifest)) === identity) {
      this.state.deployed = identity;
      this.state.tried.push(identity);
      await this.save();
      this.opts.reporter.info(`${origin}: ${manifest.primary} is what this host runs already`);
      return { ...base, outcome: 'skipped', error: 'already running' };
    }
    this.opts.reporter.info(
      `${origin}: deploying ${manifest.primary} (${manifest.source.sha.slice(0, 12)}, channel ${manifest.channel ?? this.cfg.channel})`,
    );
    const res = await this.runDeploy(manifest);
    const host = res.hosts[0];
    this.state.tried.push(identity);
    const outcome: Outcome =
      host?.status === 'deployed' ? 'deployed' : host?.status === 'rolled-back' ? 'rolled-back' : 'failed';
    if (outcome === 'deployed') this.state.deployed = identity;
    await this.save();
    const event: AgentEvent = { ...base, outcome, release: res.release, ...(host?.error ? { error: host.error } : {}) };
    if (outcome === 'deployed')
      this.opts.reporter.info(`${origin}: deployed ${manifest.primary} as release ${res.release} in ${host?.seconds}s`);
    else this.opts.reporter.warning(`${origin}: ${manifest.primary} ${outcome}: ${host?.error ?? 'unknown error'}`);
    return event;
  }

  /** Waits until no deploy runs or waits. */
  async settled(): Promise<void> {
    while (this.running || this.pending) await this.idle;
  }

  /** One poll: reads the channel manifest if its version changed, and deploys it when it is new. */
  async pollOnce(source: ChannelSource): Promise<AgentEvent | undefined> {
    await this.load();
    const check = await source.check(this.state.version);
    if (!check.changed) return undefined;
    let manifest: Manifest;
    try {
      manifest = checkedManifest(check.text, check.signature, source.describe, this.manifestSecret);
    } catch (err) {
      // Remember the version: a broken document is reported once, not on every poll.
      if (check.version) this.state.version = check.version;
      await this.save();
      throw err;
    }
    if (check.version) this.state.version = check.version;
    await this.save();
    return this.submit(manifest, 'poll');
  }

  /** Polls every interval until the signal aborts; errors are logged and polling goes on. */
  async pollLoop(source: ChannelSource, intervalSeconds: number, signal: AbortSignal): Promise<void> {
    this.opts.reporter.info(`polling ${source.describe} every ${intervalSeconds}s (channel ${this.cfg.channel})`);
    while (!signal.aborted) {
      try {
        await this.pollOnce(source);
      } catch (err) {
        this.opts.reporter.warning(`poll: ${describeError(err)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalSeconds * 1000);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
  }

  /** Starts the webhook listener (HTTPS with the configured cert/key; plain HTTP only on loopback). */
  async listen(secret: string | Buffer | undefined): Promise<WebhookListener> {
    await this.load(); // so a request is queued (or refused) before its answer goes out
    return listenWebhook(
      {
        cfg: this.cfg,
        reporter: this.opts.reporter,
        ...(this.opts.now ? { now: this.opts.now } : {}),
        ...(this.opts.env ? { env: this.opts.env } : {}),
        ...(this.opts.imageEvents ? { imageEvents: this.opts.imageEvents } : {}),
        ...(this.manifestSecret ? { manifestSecret: this.manifestSecret } : {}),
        submit: (manifest, origin) => this.submit(manifest, origin),
      },
      secret,
    );
  }
}
