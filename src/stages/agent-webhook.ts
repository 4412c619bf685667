import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentConfig, RegistryHookConfig } from '../lib/agent-config.ts';
import { describeError, InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, serializeManifest, validateManifest } from '../lib/manifest.ts';
import { ReplayCache, verifyWebhook, type WebhookBody, webhookSecret } from '../lib/webhook.ts';
import { authenticate, type ImagePush, parseRegistryEvent, selectPushes } from '../lib/registry-events.ts';
import { type ImageEventOptions, manifestForPush } from './agent-image-events.ts';
import type { AgentEvent } from './agent-deploy.ts';
import { checkedManifest, fetchLocation, readSecretSource } from './agent-source.ts';
import type { Reporter } from '../io/reporter.ts';

/**
 * The agent's webhook listener: HTTPS with the configured cert/key (plain HTTP only on loopback), a bounded body,
 * the signature/timestamp/replay checks, then the manifest handed to the agent's queue. Answers as soon as the
 * request is queued or refused, without waiting for the deploy.
 */

export interface WebhookListener {
  server: Server;
  url: string;
  close: () => Promise<void>;
  /** Resolves when no registry push is still being mapped to a manifest (tests; a clean stop). */
  idle: () => Promise<void>;
}

export interface WebhookTarget {
  readonly cfg: AgentConfig;
  readonly reporter: Reporter;
  readonly now?: () => Date;
  readonly env?: NodeJS.ProcessEnv;
  /** Options for mapping registry pushes to manifests (tests shorten the wait). */
  readonly imageEvents?: Partial<ImageEventOptions>;
  /** manifest.secret-*: every manifest deployed must carry a matching manifest signature. */
  readonly manifestSecret?: string;
  /** Queues a manifest; resolves when its fate is known. */
  submit(manifest: Manifest, origin: string): Promise<AgentEvent>;
}

/** Starts the webhook listener for `target` (whose state must already be loaded). */
export async function listenWebhook(
  target: WebhookTarget,
  secret: string | Buffer | undefined,
): Promise<WebhookListener> {
  const w = target.cfg.webhook;
  if (!w) throw new InputError('webhook', 'is not configured');
  const cache = new ReplayCache(w.timestampWindow * 2 + 60);
  const hooks = new Map(w.registries.map((r, i) => [r, readHookSecret(r, i, target.env ?? process.env)] as const));
  // lading's secret and each registry's: masked in every line the agent logs from here on
  for (const s of [secret, ...hooks.values()]) if (typeof s === 'string') target.reporter.secret(s);
  const inFlight = new Set<Promise<void>>();
  const ctx: Ctx = { target, secret, cache, hooks, inFlight };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(ctx, req, res).catch((err) => {
      target.reporter.warning(`webhook: ${describeError(err)}`);
      if (!res.headersSent) answer(res, 500, { error: 'internal error' });
    });
  };
  // Imported when the webhook starts: an ESM import of node:http at start-up makes node load its bundled undici.
  const [{ createServer: createHttpServer }, { createServer: createHttpsServer }] = await Promise.all([
    import('node:http'),
    import('node:https'),
  ]);
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
  target.reporter.info(`webhook listening on ${url} (channel ${target.cfg.channel})`);
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    idle: async () => {
      while (inFlight.size) await Promise.all(inFlight);
    },
  };
}

interface Ctx {
  target: WebhookTarget;
  /** lading's own shared secret (undefined: the agent listens to registries only). */
  secret: string | Buffer | undefined;
  cache: ReplayCache;
  hooks: Map<RegistryHookConfig, string>;
  inFlight: Set<Promise<void>>;
}

async function handle(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { target, secret, cache } = ctx;
  const w = target.cfg.webhook!;
  const path = (req.url ?? '/').split('?')[0]!;
  const from = req.socket.remoteAddress ?? '?';
  const refuse = (status: number, reason: string) => {
    target.reporter.warning(`webhook from ${from}: ${status} ${reason}`);
    answer(res, status, { error: reason });
  };
  // Never log the path: Docker Hub's token is in it.
  const hook = w.registries.find((r) => (r.kind === 'dockerhub' ? path.startsWith(`${r.path}/`) : path === r.path));
  if (!hook && (path !== w.path || secret === undefined)) return refuse(404, 'not found');
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
  const now = (target.now ?? (() => new Date()))();
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (hook) return handleRegistry(ctx, hook, { req, res, path, body, from, nowSeconds, refuse });
  const verdict = verifyWebhook({
    secret: secret!,
    headers: req.headers,
    body,
    nowSeconds,
    windowSeconds: w.timestampWindow,
    cache,
  });
  if (!verdict.ok) return refuse(verdict.status, verdict.reason);
  for (const k of verdict.replayKeys) cache.add(k, nowSeconds);
  const parsed: WebhookBody = verdict.body;
  if (parsed.channel && parsed.channel !== target.cfg.channel) {
    return refuse(422, `channel ${parsed.channel} is not the channel this agent follows (${target.cfg.channel})`);
  }
  let manifest: Manifest;
  try {
    manifest =
      parsed.manifest !== undefined
        ? inlineManifest(parsed, target.manifestSecret)
        : await fetchLocation(target.cfg, parsed.location!, target.manifestSecret);
  } catch (err) {
    return refuse(422, describeError(err));
  }
  target.reporter.info(`webhook from ${from}: ${manifest.primary} (${verdict.format} signature)`);
  const done = target.submit(manifest, 'webhook');
  // Answer as soon as the request is queued or refused, without waiting for the deploy.
  const first = await Promise.race([done, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
  if (first?.outcome === 'skipped')
    return answer(res, 200, { status: 'skipped', manifest: manifest.primary, reason: first.error });
  answer(res, 202, { status: 'queued', manifest: manifest.primary });
}

/**
 * An inline manifest: the webhook secret says who sent it; with a manifest secret, the body's `signature` must also
 * match the manifest as lading serializes it (the very bytes the manifest step signed).
 */
function inlineManifest(body: WebhookBody, secret: string | undefined): Manifest {
  const manifest = validateManifest(body.manifest, 'the manifest in the request');
  if (!secret) return manifest;
  return checkedManifest(serializeManifest(manifest), body.signature, 'the manifest in the request', secret);
}

interface RegistryRequest {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  body: Buffer;
  from: string;
  nowSeconds: number;
  refuse: (status: number, reason: string) => void;
}

/**
 * A registry's own push webhook: authenticated the registry's way, parsed, filtered to the configured repositories
 * and followed tags, answered at once (202 accepted / 200 ignored); each push is then mapped to a manifest and
 * queued. Docker Hub's callback_url hears the outcome.
 */
async function handleRegistry(ctx: Ctx, hook: RegistryHookConfig, r: RegistryRequest): Promise<void> {
  const { target, cache } = ctx;
  const { req, res, body, from, nowSeconds, refuse } = r;
  const pathToken = hook.kind === 'dockerhub' ? r.path.slice(hook.path.length + 1) : undefined;
  const auth = authenticate(hook.kind, ctx.hooks.get(hook)!, {
    headers: req.headers,
    body,
    ...(pathToken !== undefined ? { pathToken } : {}),
  });
  if (!auth.ok) return refuse(auth.status, `${hook.kind}: ${auth.reason}`);
  const delivery = hook.kind === 'github' ? req.headers['x-github-delivery'] : undefined;
  const replayKey = typeof delivery === 'string' && delivery ? `gh:${delivery}` : undefined;
  if (replayKey && cache.has(replayKey, nowSeconds)) return refuse(409, 'this delivery was seen before (replay)');
  const parsed = parseRegistryEvent(hook.kind, body, req.headers);
  if (!parsed.ok) return refuse(400, `${hook.kind}: ${parsed.reason}`);
  if (replayKey) cache.add(replayKey, nowSeconds);
  const { selected, ignored } = selectPushes(parsed.pushes, hook);
  const reasons = [...parsed.ignored, ...ignored];
  const label = (p: ImagePush) => `${p.repository}:${p.tag ?? ''}${p.digest ? `@${p.digest.slice(0, 19)}…` : ''}`;
  const callback =
    parsed.callbackUrl && parsed.callbackUrl.startsWith(hook.callbackPrefix) ? parsed.callbackUrl : undefined;
  if (parsed.callbackUrl && !callback) {
    target.reporter.warning(`${hook.kind}: callback_url outside ${hook.callbackPrefix}: not called`);
  }
  if (selected.length === 0) {
    target.reporter.info(`webhook from ${from}: ${hook.kind}: nothing to deploy (${reasons.join('; ') || 'no push'})`);
    answer(res, 200, { status: 'ignored', reasons });
    if (callback) track(ctx, dockerHubCallback(target, callback, 'success', `ignored: ${reasons.join('; ')}`));
    return;
  }
  target.reporter.info(`webhook from ${from}: ${hook.kind} push of ${selected.map(label).join(', ')}`);
  answer(res, 202, {
    status: 'accepted',
    pushes: selected.map(label),
    ...(reasons.length ? { ignored: reasons } : {}),
  });
  const origin = `webhook:${hook.kind}`;
  track(
    ctx,
    (async () => {
      const outcomes: string[] = [];
      let ok = true;
      for (const push of selected) {
        const found = await manifestForPush(hook, push, {
          cfg: target.cfg,
          reporter: target.reporter,
          ...(target.now ? { now: target.now } : {}),
          ...(target.manifestSecret ? { manifestSecret: target.manifestSecret } : {}),
          ...target.imageEvents,
        }).catch((err: unknown) => `error: ${describeError(err)}`);
        if (typeof found === 'string') {
          target.reporter.warning(`${origin}: ${label(push)} deploys nothing: ${found}`);
          outcomes.push(`${label(push)}: ${found}`);
          ok = false;
          continue;
        }
        const event = await target.submit(found, origin);
        outcomes.push(`${label(push)}: ${event.outcome} ${event.manifest}${event.error ? ` (${event.error})` : ''}`);
        if (event.outcome === 'failed' || event.outcome === 'rolled-back') ok = false;
      }
      if (callback) await dockerHubCallback(target, callback, ok ? 'success' : 'failure', outcomes.join('; '));
    })(),
  );
}

function track(ctx: Ctx, p: Promise<void>): void {
  const t = p
    .catch((err: unknown) => ctx.target.reporter.warning(`webhook: ${describeError(err)}`))
    .finally(() => ctx.inFlight.delete(t));
  ctx.inFlight.add(t);
}

/** Docker Hub's callback: the outcome of the push's deploy, which Docker Hub shows in the webhook's history. */
async function dockerHubCallback(
  target: WebhookTarget,
  url: string,
  state: 'success' | 'failure' | 'error',
  description: string,
): Promise<void> {
  const body = JSON.stringify({
    state,
    description: description.slice(0, 255),
    context: `lading agent (channel ${target.cfg.channel})`,
  });
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    await res.body?.cancel();
    if (!res.ok) target.reporter.warning(`dockerhub: the callback answered HTTP ${res.status}`);
  } catch (err) {
    target.reporter.warning(`dockerhub: the callback failed: ${describeError(err)}`);
  }
}

/** A registry endpoint's secret (token, Authorization value, or GitHub secret) from its file or env var. */
function readHookSecret(hook: RegistryHookConfig, i: number, env: NodeJS.ProcessEnv): string {
  const { key, secret: raw } = readSecretSource(hook, `webhook.registries[${i}].`, env);
  const secret = raw?.trim();
  // Docker Hub's token is all that authenticates its calls: it must be long and URL-safe.
  const min = hook.kind === 'dockerhub' ? 32 : 16;
  if (!secret || secret.length < min || (hook.kind === 'dockerhub' && !/^[A-Za-z0-9_-]+$/.test(secret))) {
    throw new InputError(
      key,
      `holds no ${hook.kind === 'dockerhub' ? 'URL-safe token' : 'secret'} of at least ${min} characters`,
      'generate one: openssl rand -hex 32',
    );
  }
  return secret;
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
export function readWebhookSecret(cfg: AgentConfig, env: NodeJS.ProcessEnv): string;
export function readWebhookSecret(cfg: AgentConfig, env: NodeJS.ProcessEnv, optional: true): string | undefined;
export function readWebhookSecret(cfg: AgentConfig, env: NodeJS.ProcessEnv, optional = false): string | undefined {
  const w = cfg.webhook!;
  if (optional && !w.secretFile && !w.secretEnv) return undefined; // registries only: no lading endpoint
  const { key, secret } = readSecretSource(w, 'webhook.', env);
  return webhookSecret(key, secret, 'give the secret lading notify and the manifest step sign with');
}
