import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AgentConfig } from '../lib/agent-config.ts';
import { describeError, InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, validateManifest } from '../lib/manifest.ts';
import { ReplayCache, verifyWebhook, type WebhookBody } from '../lib/webhook.ts';
import type { AgentEvent } from './agent.ts';
import { fetchLocation } from './agent-source.ts';
import type { Reporter } from './reporter.ts';

/**
 * The agent's webhook listener: HTTPS with the configured cert/key (plain HTTP only on loopback), a bounded body,
 * the signature/timestamp/replay checks, then the manifest handed to the agent's queue. Answers as soon as the
 * request is queued or refused, without waiting for the deploy.
 */

export interface WebhookListener {
  server: Server;
  url: string;
  close: () => Promise<void>;
}

export interface WebhookTarget {
  readonly cfg: AgentConfig;
  readonly reporter: Reporter;
  readonly now?: () => Date;
  /** Queues a manifest; resolves when its fate is known. */
  submit(manifest: Manifest, origin: string): Promise<AgentEvent>;
}

/** Starts the webhook listener for `target` (whose state must already be loaded). */
export async function listenWebhook(target: WebhookTarget, secret: string | Buffer): Promise<WebhookListener> {
  const w = target.cfg.webhook;
  if (!w) throw new InputError('webhook', 'is not configured');
  const cache = new ReplayCache(w.timestampWindow * 2 + 60);
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(target, req, res, secret, cache).catch((err) => {
      target.reporter.warning(`webhook: ${describeError(err)}`);
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
  target.reporter.info(`webhook listening on ${url} (channel ${target.cfg.channel})`);
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

async function handle(
  target: WebhookTarget,
  req: IncomingMessage,
  res: ServerResponse,
  secret: string | Buffer,
  cache: ReplayCache,
): Promise<void> {
  const w = target.cfg.webhook!;
  const path = (req.url ?? '/').split('?')[0];
  const from = req.socket.remoteAddress ?? '?';
  const refuse = (status: number, reason: string) => {
    target.reporter.warning(`webhook from ${from}: ${status} ${reason}`);
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
  const now = (target.now ?? (() => new Date()))();
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
  if (parsed.channel && parsed.channel !== target.cfg.channel) {
    return refuse(422, `channel ${parsed.channel} is not the channel this agent follows (${target.cfg.channel})`);
  }
  let manifest: Manifest;
  try {
    manifest =
      parsed.manifest !== undefined
        ? validateManifest(parsed.manifest, 'the manifest in the request')
        : await fetchLocation(target.cfg, parsed.location!);
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
