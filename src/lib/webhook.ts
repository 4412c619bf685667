import { createHmac, timingSafeEqual } from 'node:crypto';
import { InputError } from './errors.ts';

/**
 * The signed deploy webhook, both ends: `signWebhook` (lading notify, the build side) and `verifyWebhook` (lading
 * agent, the host side) share this code, so the two cannot drift apart.
 *
 * Two signature formats are accepted:
 * - lading: `X-Lading-Timestamp: <unix seconds>` and `X-Lading-Signature: sha256=<hex>` where the HMAC-SHA256 (key:
 *   the shared secret) is over `<timestamp>.<raw body>`, so the timestamp cannot be changed without the secret
 *   (as Stripe and Slack do). An optional `X-Lading-Delivery` id is used for replay detection.
 * - GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body alone. GitHub's format signs no header, so the
 *   timestamp must be inside the signed body (`"timestamp"`, unix seconds or ISO 8601); `X-GitHub-Delivery` is the
 *   delivery id.
 * Either way a request is refused unless its timestamp is within the window and neither its delivery id nor its
 * signature was seen before (replay). Comparisons are constant-time.
 */

export const SIGNATURE_HEADER = 'x-lading-signature';
export const TIMESTAMP_HEADER = 'x-lading-timestamp';
export const DELIVERY_HEADER = 'x-lading-delivery';
export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256';
export const GITHUB_DELIVERY_HEADER = 'x-github-delivery';

/** The shortest deploy-webhook secret lading takes, at both ends (an agent refuses to start with a shorter one). */
export const WEBHOOK_SECRET_MIN = 16;

/**
 * A deploy-webhook secret as given (one trailing newline dropped), the same rule for the agent and for every sender
 * (lading notify, the manifest step's notify-secret): at least 16 characters, or an InputError naming `key`, so a
 * sender finds out before it sends, not from the agent's 401.
 */
export function webhookSecret(key: string, given: string | undefined, hint: string): string {
  const secret = given?.replace(/\r?\n$/, '');
  if (!secret || secret.length < WEBHOOK_SECRET_MIN) {
    throw new InputError(
      key,
      secret
        ? `holds ${secret.length} characters: a webhook secret has at least ${WEBHOOK_SECRET_MIN}`
        : 'holds no secret',
      `${hint}; generate one with openssl rand -hex 32`,
    );
  }
  return secret;
}

export type SignatureFormat = 'lading' | 'github';

/** The JSON body of a deploy webhook: a manifest inline, or the location of one. */
export interface WebhookBody {
  /** The manifest document itself. */
  manifest?: unknown;
  /** s3://bucket/key, gs://bucket/object, an absolute path or an https URL of a manifest. */
  location?: string;
  /** The channel the manifest was published to; the agent refuses another channel's manifest. */
  channel?: string;
  /** Unix seconds or ISO 8601 (required in the GitHub format, where no header is signed). */
  timestamp?: number | string;
  /** Delivery id (optional; the signature is the replay key when absent). */
  id?: string;
  /**
   * With an inline manifest: its manifest signature (HMAC-SHA256 hex of the manifest as lading serializes it, what
   * the manifest step wrote to <manifest>.sig), for agents that require signed manifests.
   */
  signature?: string;
}

const hmac = (secret: string | Buffer, data: Buffer) => createHmac('sha256', secret).update(data).digest();

function signedBytes(format: SignatureFormat, timestamp: number, body: Buffer): Buffer {
  return format === 'lading' ? Buffer.concat([Buffer.from(`${timestamp}.`), body]) : body;
}

/** Headers for a signed POST of `body` (the exact bytes that will be sent). */
export function signWebhook(
  secret: string | Buffer,
  body: Buffer | string,
  opts: { timestamp: number; format?: SignatureFormat; delivery?: string },
): Record<string, string> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const format = opts.format ?? 'lading';
  const sig = `sha256=${hmac(secret, signedBytes(format, opts.timestamp, bytes)).toString('hex')}`;
  if (format === 'github') {
    return {
      [GITHUB_SIGNATURE_HEADER]: sig,
      ...(opts.delivery ? { [GITHUB_DELIVERY_HEADER]: opts.delivery } : {}),
    };
  }
  return {
    [SIGNATURE_HEADER]: sig,
    [TIMESTAMP_HEADER]: String(opts.timestamp),
    ...(opts.delivery ? { [DELIVERY_HEADER]: opts.delivery } : {}),
  };
}

export type Verdict =
  | { ok: true; body: WebhookBody; format: SignatureFormat; timestamp: number; replayKeys: string[] }
  | { ok: false; status: 400 | 401 | 409; reason: string };

/** Remembers delivery ids and signatures seen within the window (plus slack), so a replay is refused. */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly ttlSeconds: number,
    private readonly maxEntries = 10_000,
  ) {}

  has(key: string, nowSeconds: number): boolean {
    const until = this.seen.get(key);
    return until !== undefined && until > nowSeconds;
  }

  add(key: string, nowSeconds: number): void {
    for (const [k, until] of this.seen) {
      if (until <= nowSeconds || this.seen.size >= this.maxEntries) this.seen.delete(k);
      else break; // insertion order = expiry order: the rest are newer
    }
    this.seen.set(key, nowSeconds + this.ttlSeconds);
  }
}

export type Headers = Record<string, string | string[] | undefined>;

/** A request header's (first) value; node gives repeated headers as an array. */
export const header = (headers: Headers, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.floor(value);
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d{1,12}$/.test(value.trim())) return Number(value.trim());
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

const SIG_RE = /^sha256=([0-9a-f]{64})$/i;

/** Whether `given` has the form of a signature header: `sha256=<64 hex>`. */
export const isSignatureHeader = (given: string): boolean => SIG_RE.test(given.trim());

/**
 * Whether `given` (`sha256=<hex>`, as lading and GitHub send it) is the HMAC-SHA256 of `data` under `secret`,
 * compared in constant time. Also the check of GitHub's registry_package webhooks (registry-events.ts).
 */
export function signatureMatches(secret: string | Buffer, data: Buffer, given: string): boolean {
  const m = SIG_RE.exec(given.trim());
  if (!m) return false;
  const expected = hmac(secret, data);
  const got = Buffer.from(m[1]!.toLowerCase(), 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function parseBody(raw: Buffer): WebhookBody | string {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'the body is not a JSON object';
  const body = data as Record<string, unknown>;
  const hasManifest = body.manifest !== undefined;
  const hasLocation = body.location !== undefined;
  if (hasManifest === hasLocation) return 'the body must name exactly one of manifest (inline) or location';
  if (hasManifest && (typeof body.manifest !== 'object' || body.manifest === null)) return 'manifest is not an object';
  if (hasLocation && (typeof body.location !== 'string' || body.location.trim() === '')) {
    return 'location is not a string';
  }
  if (body.channel !== undefined && typeof body.channel !== 'string') return 'channel is not a string';
  if (body.id !== undefined && (typeof body.id !== 'string' || body.id.length > 200)) return 'id is not a short string';
  if (body.signature !== undefined && (typeof body.signature !== 'string' || body.signature.length > 200))
    return 'signature is not a short string';
  return body as WebhookBody;
}

/**
 * Checks one request: signature (constant time), timestamp window, replay. Does not record the request: call
 * `cache.add` for each of `replayKeys` once the request is accepted.
 */
export function verifyWebhook(args: {
  secret: string | Buffer;
  headers: Headers;
  body: Buffer;
  nowSeconds: number;
  windowSeconds: number;
  cache: ReplayCache;
}): Verdict {
  const { headers, body } = args;
  const ladingSig = header(headers, SIGNATURE_HEADER);
  const githubSig = header(headers, GITHUB_SIGNATURE_HEADER);
  if (!ladingSig && !githubSig) {
    return { ok: false, status: 401, reason: `no ${SIGNATURE_HEADER} or ${GITHUB_SIGNATURE_HEADER} header` };
  }
  const format: SignatureFormat = ladingSig ? 'lading' : 'github';
  const given = (ladingSig ?? githubSig)!;
  // Everything that fails authentication answers 401, a malformed signature or timestamp header included; 400 is
  // only for a correctly signed request whose body is malformed.
  if (!isSignatureHeader(given)) return { ok: false, status: 401, reason: 'the signature is not sha256=<64 hex>' };
  let timestamp: number | undefined;
  if (format === 'lading') {
    timestamp = parseTimestamp(header(headers, TIMESTAMP_HEADER));
    if (timestamp === undefined) {
      return { ok: false, status: 401, reason: `${TIMESTAMP_HEADER} is missing or not unix seconds` };
    }
  }
  if (!signatureMatches(args.secret, signedBytes(format, timestamp ?? 0, body), given)) {
    return { ok: false, status: 401, reason: 'the signature does not match' };
  }
  const parsed = parseBody(body);
  if (typeof parsed === 'string') return { ok: false, status: 400, reason: parsed };
  if (format === 'github') {
    timestamp = parseTimestamp(parsed.timestamp);
    if (timestamp === undefined) {
      return {
        ok: false,
        status: 400,
        reason: 'a GitHub-format request must carry "timestamp" in its signed body (GitHub signs no header)',
      };
    }
  }
  const skew = Math.abs(args.nowSeconds - timestamp!);
  if (skew > args.windowSeconds) {
    return {
      ok: false,
      status: 401,
      reason: `the timestamp is ${skew}s away from this host's clock (window ${args.windowSeconds}s)`,
    };
  }
  const delivery =
    header(headers, format === 'lading' ? DELIVERY_HEADER : GITHUB_DELIVERY_HEADER) ?? parsed.id ?? undefined;
  const replayKeys = [`sig:${given.trim().toLowerCase()}`, ...(delivery ? [`id:${delivery}`] : [])];
  if (replayKeys.some((k) => args.cache.has(k, args.nowSeconds))) {
    return { ok: false, status: 409, reason: 'this delivery was seen before (replay)' };
  }
  return { ok: true, body: parsed, format, timestamp: timestamp!, replayKeys };
}
