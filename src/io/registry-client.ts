import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { LadingError } from '../lib/errors.ts';
import { TAG_RE } from '../lib/image-ref.ts';
import {
  type AuthChallenge,
  isDigest,
  isInsecureHost,
  manifestAcceptHeader,
  parseAuthChallenge,
  pullScope,
  registryApiHost,
} from '../lib/registry.ts';
import { retry } from '../lib/retry.ts';
import type { RegistryCredential } from './registry-auth.ts';

/**
 * A small Docker Registry HTTP API v2 client: reads what a registry really stores (the manifest digest a
 * pull by digest will get), with the registry's own auth flows (Basic, and Bearer tokens from the realm).
 */

export interface RegistryClientOptions {
  credential?: RegistryCredential;
  /** Hosts spoken to over plain HTTP besides loopback. */
  insecure?: string[];
  fetch?: typeof fetch;
  /** Attempts per request (network errors, 5xx, 429) and the first backoff step. Default 4 tries, 250 ms. */
  retry?: { tries?: number; baseMs?: number };
  /** Timeout of one HTTP request. Default 30 s. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

export interface ManifestDocument extends ManifestInfo {
  /** The parsed manifest (an image manifest, or an index / manifest list). */
  manifest: Record<string, unknown>;
  /** The bytes the digest is over. */
  raw: Buffer;
}

export interface BlobOptions {
  /** The size the manifest's descriptor gives: a body of another length is refused. */
  size?: number;
}

/** A per-request AbortController that fires when nothing arrived for `ms` (headers, then each body chunk). */
class IdleDeadline {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly ms: number) {
    this.touch();
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(new DOMException('timed out', 'TimeoutError')), this.ms);
    this.timer.unref();
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Thrown inside one attempt for answers worth another try (5xx, 429). */
class TransientStatus extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
  ) {
    super(`HTTP ${status} ${statusText}`.trim());
  }
}

/** Network-level failures fetch reports (refused, reset, DNS, TLS, timeouts). */
function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'TimeoutError' || err.name === 'AbortError' || (err instanceof TypeError && 'cause' in err);
}

function describeNetworkError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string; errors?: Array<{ message?: string }> } };
  if (e.name === 'TimeoutError') return 'timed out';
  const cause = e.cause;
  if (cause) {
    const inner = cause.errors?.[0]?.message;
    return [cause.code, inner ?? cause.message].filter(Boolean).join(' ') || e.message;
  }
  return e.message;
}

function mediaTypeOf(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]!.trim();
}

/** Registry error bodies: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}. */
async function errorDetail(res: Response): Promise<string> {
  try {
    const text = await res.text();
    const json = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = json.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ');
    return text.slice(0, 200);
  } catch {
    return '';
  }
}

function checkRepository(repository: string): void {
  if (!REPOSITORY_RE.test(repository) || repository.length > 255) {
    throw new LadingError(`'${repository}' is not a valid repository name`);
  }
}

export class RegistryClient {
  private readonly fetchFn: typeof fetch;
  private readonly base: string;
  private readonly tries: number;
  private readonly baseMs: number;
  private readonly timeoutMs: number;
  /** Authorization header per repository, once a challenge was answered. */
  private readonly authorization = new Map<string, string>();

  constructor(
    readonly host: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.fetchFn = opts.fetch ?? fetch;
    const scheme = isInsecureHost(host, opts.insecure) ? 'http' : 'https';
    this.base = `${scheme}://${registryApiHost(host)}`;
    this.tries = opts.retry?.tries ?? 4;
    this.baseMs = opts.retry?.baseMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * The digest, media type and size of `repository:reference` as the registry stores it (a multi-platform
   * index stays an index). HEAD first; a GET (digest computed over the body) when the HEAD lacks a usable digest.
   */
  async manifestDigest(repository: string, reference: string): Promise<ManifestInfo> {
    const res = await this.manifestRequest('HEAD', repository, reference);
    const digest = res.headers.get('docker-content-digest') ?? '';
    const mediaType = mediaTypeOf(res.headers.get('content-type'));
    const size = Number(res.headers.get('content-length') ?? NaN);
    if (isDigest(digest) && mediaType !== '' && Number.isFinite(size) && size > 0) {
      if (isDigest(reference) && reference !== digest) this.mismatch(repository, reference, digest);
      return { digest, mediaType, size };
    }
    const { digest: d, mediaType: m, size: s } = await this.manifest(repository, reference);
    return { digest: d, mediaType: m, size: s };
  }

  /** The manifest itself, parsed, with its digest verified against the bytes. */
  async manifest(repository: string, reference: string): Promise<ManifestDocument> {
    const res = await this.manifestRequest('GET', repository, reference);
    const raw = Buffer.from(await res.arrayBuffer());
    const computed = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    const header = res.headers.get('docker-content-digest') ?? '';
    if (header.startsWith('sha256:') && header !== computed) this.mismatch(repository, reference, header, computed);
    if (isDigest(reference) && reference.startsWith('sha256:') && reference !== computed) {
      this.mismatch(repository, reference, computed);
    }
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new LadingError(
        `the registry ${this.host} returned a manifest for ${repository}:${reference} that is not JSON`,
      );
    }
    let mediaType = mediaTypeOf(res.headers.get('content-type'));
    if ((mediaType === '' || mediaType === 'application/json') && typeof manifest.mediaType === 'string') {
      mediaType = manifest.mediaType;
    }
    return { digest: computed, mediaType, size: raw.length, manifest, raw };
  }

  /**
   * A blob (layer or config) as a stream, verified while it streams: the stream fails at its end with a LadingError
   * when the bytes do not hash to `digest` (or are not `size` long), so a consumer that writes to a temp file and
   * renames it on success never keeps bad bytes. Redirects (to S3, GCS, a CDN) are followed by hand and the
   * registry's Authorization header never leaves its origin. The timeout applies per chunk, not to the whole body.
   */
  async blob(repository: string, digest: string, opts: BlobOptions = {}): Promise<Readable> {
    checkRepository(repository);
    if (!isDigest(digest)) throw new LadingError(`'${digest}' is not a digest`);
    const ref = `${this.host}/${repository}@${digest}`;
    let deadline: IdleDeadline | undefined;
    const signal = () => {
      deadline?.clear();
      deadline = new IdleDeadline(this.timeoutMs);
      return deadline.controller.signal;
    };
    const res = await this.withAuth(
      () => this.blobRequest(`${this.base}/v2/${repository}/blobs/${digest}`, repository, signal),
      repository,
      ref,
    );
    if (!res.ok || !res.body) {
      deadline?.clear();
      throw this.failure(res, ref, await errorDetail(res), [
        `the blob ${ref} is not in the registry`,
        'the image was pushed incompletely or garbage-collected: push it again',
      ]);
    }
    const dl = deadline!;
    dl.touch();
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const hash = createHash(algorithm);
    let length = 0;
    const tooLong = () =>
      new LadingError(
        `the blob ${ref} is longer than the ${opts.size} bytes its manifest gives`,
        'the registry (or a proxy) serves other bytes than were pushed',
      );
    const verify = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        dl.touch();
        hash.update(chunk);
        length += chunk.length;
        if (opts.size !== undefined && length > opts.size) cb(tooLong());
        else cb(null, chunk);
      },
      flush: (cb) => {
        dl.clear();
        const got = `${algorithm}:${hash.digest('hex')}`;
        if (got !== digest) {
          cb(
            new LadingError(
              `the blob ${ref} arrived with digest ${got}`,
              'the download was corrupted or the registry serves other bytes than were pushed: retry, and check any proxy or mirror',
            ),
          );
        } else if (opts.size !== undefined && length !== opts.size) {
          cb(new LadingError(`the blob ${ref} is ${length} bytes, its manifest says ${opts.size}`));
        } else cb();
      },
    });
    const body = Readable.fromWeb(res.body as never);
    body.on('error', (err) =>
      verify.destroy(
        err instanceof LadingError
          ? err
          : new LadingError(
              `the download of ${ref} from ${this.host} broke off after ${length} bytes (${describeNetworkError(err)})`,
              'retry; if it keeps failing, check the network between here and the registry',
              { cause: err },
            ),
      ),
    );
    verify.on('close', () => {
      dl.clear();
      if (!body.readableEnded) body.destroy();
    });
    body.pipe(verify);
    return verify;
  }

  /** GET with redirects followed by hand: Authorization only on the registry's own origin. */
  private async blobRequest(url: string, repository: string, signal: () => AbortSignal): Promise<Response> {
    const origin = new URL(this.base).origin;
    let current = url;
    for (let hop = 0; hop <= 5; hop++) {
      const own = new URL(current).origin === origin;
      const res = await this.send('GET', current, own ? repository : undefined, undefined, {
        accept: '*/*',
        redirect: 'manual',
        signal,
      });
      if (!REDIRECTS.has(res.status)) return res;
      const location = res.headers.get('location');
      await res.body?.cancel();
      if (!location) throw new LadingError(`the registry ${this.host} redirected a blob download without a Location`);
      current = new URL(location, current).toString();
    }
    throw new LadingError(`the registry ${this.host} redirected a blob download more than 5 times`);
  }

  /**
   * Every tag of a repository (GET /v2/<name>/tags/list, following `Link` pages). A repository the registry does
   * not know yet has no tags: [].
   */
  async tags(repository: string): Promise<string[]> {
    checkRepository(repository);
    const out: string[] = [];
    let url: string | undefined = `${this.base}/v2/${repository}/tags/list?n=1000`;
    for (let page = 0; url && page < 100; page++) {
      let res = await this.send('GET', url, repository);
      if (res.status === 401) {
        const challenge = parseAuthChallenge(res.headers.get('www-authenticate') ?? '');
        await res.body?.cancel();
        await this.answer(challenge, repository, `${this.host}/${repository}`);
        res = await this.send('GET', url, repository);
      }
      if (res.status === 404) {
        await res.body?.cancel();
        return out;
      }
      if (!res.ok) {
        const detail = await errorDetail(res);
        throw new LadingError(
          `the registry ${this.host} answered ${res.status} ${res.statusText} listing the tags of ${repository}${detail ? ` (${detail})` : ''}`,
          res.status === 401 || res.status === 403 ? `check the credential for ${this.host}` : undefined,
        );
      }
      const body = (await res.json().catch(() => ({}))) as { tags?: unknown };
      if (Array.isArray(body.tags)) out.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
      url = next ? new URL(next, this.base).toString() : undefined;
    }
    return out;
  }

  private mismatch(repository: string, reference: string, got: string, computed?: string): never {
    throw new LadingError(
      `the registry ${this.host} answered ${repository}:${reference} with digest ${got}` +
        (computed ? ` but the manifest it sent hashes to ${computed}` : ''),
      'the registry (or a proxy in between) is not serving what was pushed: check the registry host and any mirror',
    );
  }

  private ref(repository: string, reference: string): string {
    return `${this.host}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`;
  }

  private async manifestRequest(method: 'HEAD' | 'GET', repository: string, reference: string): Promise<Response> {
    checkRepository(repository);
    if (!TAG_RE.test(reference) && !isDigest(reference)) {
      throw new LadingError(`'${reference}' is neither a tag nor a digest`);
    }
    const url = `${this.base}/v2/${repository}/manifests/${reference}`;
    const ref = this.ref(repository, reference);
    const res = await this.withAuth(() => this.send(method, url, repository), repository, ref);
    if (res.ok) return res;
    const detail = method === 'GET' ? await errorDetail(res) : (await res.body?.cancel(), '');
    throw this.failure(res, ref, detail, [
      `\`${ref}\` is not in the registry`,
      'check the image name and tag, and that the push finished',
    ]);
  }

  /**
   * Sends a request; on a 401 answers the challenge (token or basic auth) and sends it once more. A second 401 means
   * the credentials were refused: that is the error, with what to check.
   */
  private async withAuth(send: () => Promise<Response>, repository: string, ref: string): Promise<Response> {
    let res = await send();
    if (res.status !== 401) return res;
    const challenge = parseAuthChallenge(res.headers.get('www-authenticate') ?? '');
    await res.body?.cancel();
    await this.answer(challenge, repository, ref);
    res = await send();
    if (res.status === 401) {
      await res.body?.cancel();
      throw new LadingError(
        `the registry ${this.host} refused the credentials for ${ref}`,
        this.opts.credential
          ? `check that ${this.opts.credential.username} may pull ${repository} and that the credential is current`
          : `${this.host} needs a login: give credentials for it`,
      );
    }
    return res;
  }

  /** The error for a failed read of `ref`: not found (message and hint given), denied, or anything else. */
  private failure(res: Response, ref: string, detail: string, notFound: [string, string]): LadingError {
    const more = detail ? ` (${detail})` : '';
    if (res.status === 404) return new LadingError(`${notFound[0]}${more}`, notFound[1]);
    if (res.status === 403) {
      return new LadingError(
        `the registry ${this.host} denied access to ${ref}${more}`,
        'the credential is valid but may not read this repository: check its permissions',
      );
    }
    return new LadingError(`the registry ${this.host} answered ${res.status} ${res.statusText} for ${ref}${more}`);
  }

  /** Sets the Authorization header for `repository` from a 401 challenge. */
  private async answer(challenge: AuthChallenge | undefined, repository: string, ref: string): Promise<void> {
    const cred = this.opts.credential;
    const basic = cred ? `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}` : undefined;
    if (!challenge) {
      throw new LadingError(
        `the registry ${this.host} asked for authentication for ${ref} in a way lading does not speak`,
        'use a registry with Basic or Bearer token auth',
      );
    }
    if (challenge.scheme === 'basic') {
      if (!basic) {
        throw new LadingError(
          `the registry ${this.host} needs a login for ${ref}`,
          `give credentials for ${this.host}`,
        );
      }
      this.authorization.set(repository, basic);
      return;
    }
    if (!challenge.realm) throw new LadingError(`the registry ${this.host} sent a Bearer challenge without a realm`);
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch {
      throw new LadingError(`the registry ${this.host} sent an invalid token realm '${challenge.realm}'`);
    }
    if (
      realm.protocol !== 'https:' &&
      !(realm.protocol === 'http:' && isInsecureHost(realm.host, this.opts.insecure))
    ) {
      throw new LadingError(
        `the registry ${this.host} sends lading to the token service ${realm.origin} over plain HTTP`,
        `lading sends credentials only over HTTPS (or to loopback / insecure hosts): list ${realm.host} as insecure if you trust it`,
      );
    }
    if (challenge.service) realm.searchParams.set('service', challenge.service);
    realm.searchParams.set('scope', pullScope(repository));
    const res = await this.send('GET', realm.toString(), undefined, basic);
    if (!res.ok) {
      const detail = await errorDetail(res);
      throw new LadingError(
        `the token service of ${this.host} (${realm.origin}) refused a pull token for ${ref}: ${res.status}${detail ? ` ${detail}` : ''}`,
        cred
          ? `check the credential for ${this.host} (user ${cred.username})`
          : `${this.host} needs a login: give credentials for it`,
      );
    }
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token || body.access_token;
    if (!token) throw new LadingError(`the token service of ${this.host} answered without a token`);
    this.authorization.set(repository, `Bearer ${token}`);
  }

  /** One HTTP request with retries for network errors, 5xx and 429; a clear error once they are used up. */
  private async send(
    method: string,
    url: string,
    repository?: string,
    authorization?: string,
    init: { accept?: string; redirect?: 'manual' | 'follow'; signal?: () => AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: init.accept ?? manifestAcceptHeader, 'User-Agent': 'lading' };
    const auth = authorization ?? (repository ? this.authorization.get(repository) : undefined);
    if (auth) headers.Authorization = auth;
    try {
      return await retry(
        async () => {
          const res = await this.fetchFn(url, {
            method,
            headers,
            signal: init.signal?.() ?? AbortSignal.timeout(this.timeoutMs),
            ...(init.redirect && { redirect: init.redirect }),
          });
          if (res.status >= 500 || res.status === 429) {
            await res.body?.cancel();
            throw new TransientStatus(res.status, res.statusText);
          }
          return res;
        },
        {
          tries: this.tries,
          baseMs: this.baseMs,
          isRetryable: (err) => err instanceof TransientStatus || isNetworkError(err),
          onRetry: (err, attempt, delay) =>
            this.opts.log?.(
              `registry ${this.host}: ${err instanceof TransientStatus ? err.message : describeNetworkError(err)}; ` +
                `retry ${attempt}/${this.tries - 1} in ${delay} ms`,
            ),
        },
      );
    } catch (err) {
      const origin = new URL(url).origin;
      if (err instanceof TransientStatus) {
        throw new LadingError(
          `the registry ${this.host} kept failing (${err.message} from ${origin}, ${this.tries} tries)`,
          'the registry has a problem on its side: check its status page or logs, and retry later',
          { cause: err },
        );
      }
      if (isNetworkError(err)) {
        const plain = origin.startsWith('http:');
        throw new LadingError(
          `the registry ${this.host} is unreachable at ${origin} (${describeNetworkError(err)}, ${this.tries} tries)`,
          `check the registry host and port, that the registry is running and reachable from this machine (DNS, proxy, firewall)` +
            (plain ? '' : `, and that it serves HTTPS — a plain-HTTP registry must be listed as insecure`),
          { cause: err },
        );
      }
      throw err;
    }
  }
}
