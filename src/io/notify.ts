import { InputError, LadingError } from '../lib/errors.ts';
import type { Manifest } from '../lib/manifest.ts';
import { isLoopbackHost } from '../lib/store-location.ts';
import { type SignatureFormat, signWebhook, type WebhookBody } from '../lib/webhook.ts';

// The build side of pull mode: a signed POST telling a lading agent about a manifest (lading notify, notify-url).

export interface NotifyOptions {
  url: string;
  secret: string;
  /** The manifest inline, or a location the agent reads it from. */
  manifest?: Manifest;
  location?: string;
  /** With an inline manifest: its manifest signature (<manifest>.sig), for agents that require signed manifests. */
  signature?: string;
  channel?: string;
  format?: SignatureFormat;
  /** Extra certificate(s) (PEM) to trust besides the system's, for an agent with a self-signed certificate. */
  ca?: string | Buffer;
  timeoutMs?: number;
  now?: () => Date;
  delivery?: string;
}

/** POSTs a signed webhook (the same signing code the agent verifies with); returns the agent's answer. */
export async function sendNotification(o: NotifyOptions): Promise<{ status: number; body: string }> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new InputError('url', `'${o.url}' is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new InputError(
      'url',
      `'${o.url}' is not https`,
      'the agent listens with TLS; plain http is for loopback only',
    );
  }
  const timestamp = Math.floor((o.now ?? (() => new Date()))().getTime() / 1000);
  const payload: WebhookBody = {
    ...(o.manifest ? { manifest: o.manifest } : { location: o.location! }),
    ...(o.manifest && o.signature ? { signature: o.signature.trim() } : {}),
    ...(o.channel ? { channel: o.channel } : {}),
    ...(o.format === 'github' ? { timestamp } : {}),
    ...(o.delivery ? { id: o.delivery } : {}),
  };
  const body = Buffer.from(JSON.stringify(payload));
  const headers = {
    'Content-Type': 'application/json',
    'Content-Length': String(body.length),
    'User-Agent': 'lading-notify',
    ...signWebhook(o.secret, body, {
      timestamp,
      format: o.format ?? 'lading',
      ...(o.delivery ? { delivery: o.delivery } : {}),
    }),
  };
  // node:http(s) and tls are imported here, not at the top: an ESM import of node:http makes node load its bundled
  // undici at once, a large share of the manifest bundle's start-up (bench/coldstart.bench.ts).
  const [{ request: httpRequest }, { request: httpsRequest }, { rootCertificates }] = await Promise.all([
    import('node:http'),
    import('node:https'),
    import('node:tls'),
  ]);
  return new Promise((resolve, reject) => {
    const opts = {
      method: 'POST',
      headers,
      timeout: o.timeoutMs ?? 30_000,
      ...(o.ca ? { ca: [...rootCertificates, o.ca] } : {}),
    };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        new LadingError(
          `cannot reach the agent at ${url.origin}: ${err.code ?? err.message}`,
          'check the URL, the port, the firewall and the certificate (a self-signed one must be trusted: notify --ca-file, manifest --notify-ca-file / notify-ca)',
        ),
      ),
    );
    req.end(body);
  });
}
