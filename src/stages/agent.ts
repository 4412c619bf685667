import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { LocalSession } from '../io/local-host.ts';
import { openStore, type ObjectStore, type StoreOptions } from '../io/store.ts';
import { credentialFor } from '../io/registry-auth.ts';
import { RegistryClient } from '../io/registry-client.ts';
import { type AgentConfig, MANIFEST_ARTIFACT_TYPE, manifestIdentity, manifestTime } from '../lib/agent-config.ts';
import { detectProvider, parseProviderOverrides } from '../lib/registry.ts';
import { describeError, InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, parseManifest, validateManifest } from '../lib/manifest.ts';
import { type ObjectLocation, parseObjectLocation } from '../lib/store-location.ts';
import { ReplayCache, verifyWebhook, type WebhookBody } from '../lib/webhook.ts';
import { type DeployResult, runDeployStage } from './deploy.ts';
import type { Reporter } from './reporter.ts';

/**
 * The pull-mode agent on a host: hears about a new manifest for its channel (polling the published channel
 * manifest with a cheap version check, or a signed webhook), and deploys it here with the deploy stage itself
 * (runDeployStage with a LocalSession: lock, release dir, pull, up, health gate, rollback, history — the very
 * steps an SSH deploy runs). One deploy at a time; requests that arrive meanwhile coalesce to the newest.
 */

// ---------------------------------------------------------------------------------------------------------------
// Reading manifests

type Check = { changed: false } | { changed: true; text: string; version?: string };

/** The channel manifest as published: checked by version (ETag / generation / mtime), read only when it changed. */
export interface ChannelSource {
  readonly describe: string;
  check(lastVersion: string | undefined): Promise<Check>;
}

function storeOptions(cfg: AgentConfig): StoreOptions {
  const m = cfg.manifest;
  const o: StoreOptions = {};
  if (m.region) o.region = m.region;
  if (m.endpoint) o.endpoint = m.endpoint;
  if (m.forcePathStyle !== undefined) o.forcePathStyle = m.forcePathStyle;
  if (m.gcsEndpoint) o.gcsEndpoint = m.gcsEndpoint;
  return o;
}

async function storeFor(location: ObjectLocation, cfg: AgentConfig): Promise<ObjectStore> {
  if (location.kind === 'https') throw new Error('not a store location');
  return openStore({ kind: location.kind, bucket: location.bucket, prefix: '' }, storeOptions(cfg));
}

/** The manifest as an OCI artifact: the tag's digest is the version; the lading manifest is its layer. */
async function registrySource(cfg: AgentConfig, reporter?: Reporter): Promise<ChannelSource> {
  const r = cfg.manifest.registry!;
  const env = process.env;
  const username = cfg.registry.usernameEnv ? env[cfg.registry.usernameEnv] : undefined;
  const password = cfg.registry.passwordEnv ? env[cfg.registry.passwordEnv] : undefined;
  const provider = detectProvider(r.host, parseProviderOverrides(cfg.registry.providers.join('\n')));
  const googleCredentials = cfg.registry.googleCredentialsFile
    ? readFileSync(cfg.registry.googleCredentialsFile, 'utf8')
    : undefined;
  const credential = await credentialFor(r.host, provider, {
    ...(username && password ? { username, password } : {}),
    ...(googleCredentials ? { googleCredentials } : {}),
    ...(cfg.registry.awsRegion ? { awsRegion: cfg.registry.awsRegion } : {}),
    mask: reporter?.secret ?? (() => {}),
  });
  const client = new RegistryClient(r.host, credential ? { credential } : {});
  return {
    describe: r.ref,
    async check(last) {
      const { digest } = await client.manifestDigest(r.repository, r.tag);
      if (digest === last) return { changed: false };
      const doc = await client.manifest(r.repository, digest);
      const layers = (doc.manifest.layers ?? []) as Array<{ mediaType?: string; digest: string; size?: number }>;
      const layer = layers.find((l) => l.mediaType === MANIFEST_ARTIFACT_TYPE);
      if (!layer) {
        throw new LadingError(
          `${r.ref} is not a lading manifest artifact (no ${MANIFEST_ARTIFACT_TYPE} layer)`,
          'point manifest.registry at the tag the build publishes the manifest to',
        );
      }
      const chunks: Buffer[] = [];
      for await (const c of await client.blob(r.repository, layer.digest, layer.size ? { size: layer.size } : {}))
        chunks.push(c as Buffer);
      return { changed: true, text: Buffer.concat(chunks).toString('utf8'), version: digest };
    },
  };
}

export async function channelSource(cfg: AgentConfig, reporter?: Reporter): Promise<ChannelSource> {
  if (cfg.manifest.registry) return registrySource(cfg, reporter);
  const loc = cfg.manifest.location!;
  if (loc.kind === 'https') {
    const url = loc.key;
    return {
      describe: url,
      async check(last) {
        const res = await fetch(url, {
          headers: last ? { 'If-None-Match': last } : {},
          signal: AbortSignal.timeout(30_000),
        }).catch((err: Error) => {
          throw new LadingError(`cannot reach ${url}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
        });
        if (res.status === 304) return { changed: false };
        if (res.status === 404) {
          await res.body?.cancel();
          throw new LadingError(`${url} does not exist (yet)`, 'the build publishes it; check the URL and channel');
        }
        if (!res.ok) {
          await res.body?.cancel();
          throw new LadingError(`${url} answered HTTP ${res.status}`);
        }
        const version = res.headers.get('etag') ?? undefined;
        const text = await res.text();
        if (version && version === last) return { changed: false };
        return { changed: true, text, ...(version ? { version } : {}) };
      },
    };
  }
  const store = await storeFor(loc, cfg);
  const key = loc.key;
  return {
    describe: store.url(key),
    async check(last) {
      const info = await store.head(key);
      if (!info) {
        throw new LadingError(
          `${store.url(key)} does not exist (yet)`,
          'the build publishes it; check the store and channel',
        );
      }
      if (info.version && info.version === last) return { changed: false };
      const { text, version } = await store.getText(key);
      return { changed: true, text, ...((version ?? info.version) ? { version: version ?? info.version } : {}) };
    },
  };
}

/** A manifest a webhook names by location: the configured store's bucket, or an https URL. */
async function fetchLocation(cfg: AgentConfig, raw: string): Promise<Manifest> {
  const loc = parseObjectLocation('location', raw);
  if (loc.kind === 'https') {
    const res = await fetch(loc.key, { signal: AbortSignal.timeout(30_000) }).catch((err: Error) => {
      throw new LadingError(`cannot fetch ${loc.key}: ${err.message}`);
    });
    if (!res.ok) throw new LadingError(`${loc.key} answered HTTP ${res.status}`);
    return parseManifest(await res.text(), loc.key);
  }
  const mine = cfg.manifest.location;
  if (!mine || mine.kind === 'https') {
    throw new InputError(
      'location',
      `'${raw}' is a store location, and this agent reads no store`,
      'send the manifest inline',
    );
  }
  if (mine.kind !== loc.kind || (loc.kind !== 'file' && mine.bucket !== loc.bucket)) {
    throw new InputError('location', `'${raw}' is outside the store this agent reads (${mine.kind}://${mine.bucket})`);
  }
  if (loc.kind === 'file' && cfg.manifest.store && !loc.key.startsWith(`${cfg.manifest.store.bucket}/`)) {
    throw new InputError('location', `'${raw}' is outside ${cfg.manifest.store.bucket}`);
  }
  const store = await storeFor(loc, cfg);
  const { text } = await store.getText(loc.key);
  return parseManifest(text, store.url(loc.key));
}

// ---------------------------------------------------------------------------------------------------------------
// State: what was deployed or tried, so the same manifest is never deployed twice (nor a failed one retried forever)

interface AgentState {
  /** Version (ETag / generation) of the channel manifest last read. */
  version?: string;
  /** Identity of the manifest last deployed successfully. */
  deployed?: string;
  /** Identities deployed or tried, newest last (bounded). */
  tried: string[];
}

async function readState(file: string): Promise<AgentState> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as Partial<AgentState>;
    return {
      tried: Array.isArray(s.tried) ? s.tried.filter((x) => typeof x === 'string') : [],
      ...(typeof s.version === 'string' ? { version: s.version } : {}),
      ...(typeof s.deployed === 'string' ? { deployed: s.deployed } : {}),
    };
  } catch {
    return { tried: [] };
  }
}

async function writeState(file: string, state: AgentState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

// ---------------------------------------------------------------------------------------------------------------
// The agent

export type Outcome = 'deployed' | 'rolled-back' | 'failed' | 'skipped';

export interface AgentEvent {
  manifest: string;
  identity: string;
  outcome: Outcome;
  origin: string;
  release?: string;
  error?: string;
}

/** The deploy stage's inputs for one manifest deployed on this machine. */
export function deployInputs(cfg: AgentConfig, manifest: Manifest, env: NodeJS.ProcessEnv): Record<string, string> {
  const d = cfg.deploy;
  const inputs: Record<string, string> = {
    manifest: JSON.stringify(manifest),
    hosts: 'localhost',
    // The local session neither reads nor needs SSH settings; the deploy stage's reader insists on them.
    'ssh-key': 'local session',
    'known-hosts': 'local session',
    root: d.root,
    'health-timeout': String(d.healthTimeout),
    'health-stable': String(d.healthStable),
    'keep-releases': String(d.keepReleases),
    rollback: String(d.rollback),
    'allow-downgrade': String(d.allowDowngrade),
    'lock-ttl': String(d.lockTtl),
    'lock-wait': String(d.lockWait),
    'step-timeout': String(d.stepTimeout),
    'run-id': cfg.runId,
  };
  if (d.project) inputs.project = d.project;
  if (d.probeUrl) inputs['probe-url'] = d.probeUrl;
  const r = cfg.registry;
  if (r.usernameEnv && r.passwordEnv) {
    const u = env[r.usernameEnv];
    const p = env[r.passwordEnv];
    if (!u || !p) {
      throw new InputError(
        `registry.${u ? 'password-env' : 'username-env'}`,
        `the env var ${u ? r.passwordEnv : r.usernameEnv} is empty`,
        'set it in the agent service environment (e.g. an EnvironmentFile)',
      );
    }
    inputs.username = u;
    inputs.password = p;
  }
  if (r.googleCredentialsFile) inputs['google-credentials'] = readFileSync(r.googleCredentialsFile, 'utf8');
  if (r.awsRegion) inputs['aws-region'] = r.awsRegion;
  if (r.providers.length) inputs['registry-providers'] = r.providers.join('\n');
  // Registry-less images usually sit in the bucket the manifests come from: reach it the same way.
  const m = cfg.manifest;
  if (m.endpoint) inputs['s3-endpoint'] = m.endpoint;
  if (m.region) inputs['s3-region'] = m.region;
  if (m.forcePathStyle !== undefined) inputs['s3-path-style'] = String(m.forcePathStyle);
  if (m.gcsEndpoint) inputs['gcs-endpoint'] = m.gcsEndpoint;
  return inputs;
}

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
  private running: Pending | undefined;
  private pending: Pending | undefined;
  private idle: Promise<void> = Promise.resolve();
  readonly events: AgentEvent[] = [];

  constructor(
    readonly cfg: AgentConfig,
    private readonly opts: {
      reporter: Reporter;
      env?: NodeJS.ProcessEnv;
      /** Runs one deploy (tests may wrap it); default: runDeployStage with a LocalSession. */
      deploy?: (manifest: Manifest) => Promise<DeployResult>;
      now?: () => Date;
    },
  ) {}

  private get env(): NodeJS.ProcessEnv {
    return this.opts.env ?? process.env;
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
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
    const dockerHost = this.cfg.deploy.dockerHost;
    const sessionEnv = { ...this.env, ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}) };
    const inputs = deployInputs(this.cfg, manifest, this.env);
    if (inputs.password) this.opts.reporter.secret(inputs.password);
    return runDeployStage({
      read: (n) => inputs[n] || undefined,
      env: {},
      reporter: this.opts.reporter,
      ...(this.opts.now ? { now: this.opts.now } : {}),
      connector: async () => new LocalSession(sessionEnv),
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
      manifest = parseManifest(check.text, source.describe);
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

  // -------------------------------------------------------------------------------------------------------------
  // Webhook

  /** Starts the webhook listener (HTTPS with the configured cert/key; plain HTTP only on loopback). */
  async listen(secret: string | Buffer): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
    const w = this.cfg.webhook;
    if (!w) throw new InputError('webhook', 'is not configured');
    await this.load(); // so a request is queued (or refused) before its answer goes out
    const cache = new ReplayCache(w.timestampWindow * 2 + 60);
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res, secret, cache).catch((err) => {
        this.opts.reporter.warning(`webhook: ${describeError(err)}`);
        if (!res.headersSent) answer(res, 500, { error: 'internal error' });
      });
    };
    const server: Server =
      w.tlsCert && w.tlsKey
        ? createHttpsServer(
            { cert: readFileSync(w.tlsCert), key: readFileSync(w.tlsKey), minVersion: 'TLSv1.2' },
            handler,
          )
        : createHttpServer(handler);
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new LadingError(
            `cannot listen on ${w.host}:${w.port}: ${err.code ?? err.message}`,
            'pick a free port, or run with the rights to bind it',
          ),
        ),
      );
      server.listen(w.port, w.host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `${w.tlsCert ? 'https' : 'http'}://${host}:${addr.port}${w.path}`;
    this.opts.reporter.info(`webhook listening on ${url} (channel ${this.cfg.channel})`);
    return {
      server,
      url,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    secret: string | Buffer,
    cache: ReplayCache,
  ): Promise<void> {
    const w = this.cfg.webhook!;
    const path = (req.url ?? '/').split('?')[0];
    const from = req.socket.remoteAddress ?? '?';
    const refuse = (status: number, reason: string) => {
      this.opts.reporter.warning(`webhook from ${from}: ${status} ${reason}`);
      answer(res, status, { error: reason });
    };
    if (path !== w.path) return refuse(404, 'not found');
    if (req.method !== 'POST') return refuse(405, 'only POST');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > w.maxBody) return tooLarge(req, res, w.maxBody, refuse);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    await new Promise<void>((resolve, reject) => {
      req.on('data', (c: Buffer) => {
        if (over) return;
        size += c.length;
        if (size > w.maxBody) {
          over = true;
          resolve();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve());
      req.on('error', reject);
    });
    if (over) return tooLarge(req, res, w.maxBody, refuse);
    const body = Buffer.concat(chunks);
    const now = (this.opts.now ?? (() => new Date()))();
    const nowSeconds = Math.floor(now.getTime() / 1000);
    const verdict = verifyWebhook({
      secret,
      headers: req.headers,
      body,
      nowSeconds,
      windowSeconds: w.timestampWindow,
      cache,
    });
    if (!verdict.ok) return refuse(verdict.status, verdict.reason);
    for (const k of verdict.replayKeys) cache.add(k, nowSeconds);
    const parsed: WebhookBody = verdict.body;
    if (parsed.channel && parsed.channel !== this.cfg.channel) {
      return refuse(422, `channel ${parsed.channel} is not the channel this agent follows (${this.cfg.channel})`);
    }
    let manifest: Manifest;
    try {
      manifest =
        parsed.manifest !== undefined
          ? validateManifest(parsed.manifest, 'the manifest in the request')
          : await fetchLocation(this.cfg, parsed.location!);
    } catch (err) {
      return refuse(422, describeError(err));
    }
    this.opts.reporter.info(`webhook from ${from}: ${manifest.primary} (${verdict.format} signature)`);
    const done = this.submit(manifest, 'webhook');
    // Answer as soon as the request is queued or refused, without waiting for the deploy.
    const first = await Promise.race([done, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
    if (first?.outcome === 'skipped')
      return answer(res, 200, { status: 'skipped', manifest: manifest.primary, reason: first.error });
    answer(res, 202, { status: 'queued', manifest: manifest.primary });
  }
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** 413, then discards what the client still sends (so it reads the answer), closing after a cap. */
function tooLarge(
  req: IncomingMessage,
  res: ServerResponse,
  max: number,
  refuse: (s: number, r: string) => void,
): void {
  let drained = 0;
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    drained += c.length;
    if (drained > 64 * 1024 * 1024) req.socket.destroy();
  });
  req.resume();
  res.setHeader('Connection', 'close');
  refuse(413, `the body is larger than ${max} bytes`);
}

/** The shared secret from the file or env var the config names (trailing newline trimmed). */
export function readWebhookSecret(cfg: AgentConfig, env: NodeJS.ProcessEnv): string {
  const w = cfg.webhook!;
  let secret: string | undefined;
  if (w.secretFile) {
    try {
      secret = readFileSync(w.secretFile, 'utf8');
    } catch (err) {
      throw new InputError(
        'webhook.secret-file',
        `cannot read ${w.secretFile} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  } else secret = env[w.secretEnv!];
  secret = secret?.replace(/\r?\n$/, '');
  if (!secret || secret.length < 16) {
    throw new InputError(
      w.secretFile ? 'webhook.secret-file' : 'webhook.secret-env',
      'holds no secret of at least 16 characters',
      'generate one: openssl rand -hex 32',
    );
  }
  return secret;
}
