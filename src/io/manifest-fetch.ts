import { LadingError } from '../lib/errors.ts';
import { isLoopbackHost, shownUrl } from '../lib/store-location.ts';

/**
 * The one way lading fetches over HTTP (manifests for deploy, extract and the agent; extract's `source: https://`
 * archives): https only (plain http on loopback, for tests), at most MAX_REDIRECTS redirects that stay on https
 * (openUrl). A manifest (fetchText) also gets a timeout for the whole exchange, a size limit checked while reading,
 * and a fail-fast look at the first bytes (a manifest is a JSON object: an HTML login page or a binary is refused
 * before it is read to the end).
 */
export const DEFAULT_MANIFEST_MAX_BYTES = 16 * 1024 * 1024;
const MAX_REDIRECTS = 5;

export interface FetchLimits {
  maxBytes?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Whether the body must look like JSON (default true); a signature file is plain text. */
  json?: boolean;
}

export interface FetchedText {
  status: number;
  text: string;
  etag?: string;
  /** The URL that answered (after redirects). */
  url: string;
}

/** Throws unless `raw` is https, or http to a loopback host. */
export function checkFetchUrl(raw: string, what = 'the manifest URL'): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LadingError(`${what} '${shownUrl(raw)}' is not a valid URL`, 'give the full https:// address');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url;
  throw new LadingError(
    `${what} ${url.origin} is not https`,
    'serve it over https (plain http is accepted on loopback only): in transit, anyone could change what is fetched',
  );
}

/**
 * GETs `raw` with the transport rules (https only, at most MAX_REDIRECTS redirects that stay on https) and answers
 * the first response that is not a redirect, its body unread: fetchText reads a manifest from it within limits, the
 * extract stage streams an image archive.
 */
export async function openUrl(
  raw: string,
  opts: { headers?: Record<string, string>; signal?: AbortSignal; what?: string } = {},
): Promise<{ res: Response; url: URL }> {
  let url = checkFetchUrl(raw, opts.what);
  for (let hop = 0; ; hop++) {
    const res = await fetch(url, {
      headers: opts.headers ?? {},
      redirect: 'manual',
      signal: opts.signal ?? null,
    }).catch((err: Error) => {
      const why = (err.cause as Error | undefined)?.message ?? err.message;
      throw new LadingError(
        err.name === 'TimeoutError'
          ? `${shownUrl(url)} did not answer in time`
          : `cannot fetch ${shownUrl(url)}: ${why}`,
        'check the URL and the network',
      );
    });
    if (res.status < 300 || res.status >= 400 || res.status === 304) return { res, url };
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (!location) throw new LadingError(`${shownUrl(url)} answered HTTP ${res.status} without a Location`);
    if (hop >= MAX_REDIRECTS) throw new LadingError(`${shownUrl(raw)} redirects more than ${MAX_REDIRECTS} times`);
    const next = new URL(location, url);
    if (url.protocol === 'https:' && next.protocol !== 'https:') {
      throw new LadingError(
        `${shownUrl(url)} redirects to ${next.origin}, which is not https`,
        'lading fetches over https only, redirects included',
      );
    }
    url = checkFetchUrl(next.href, 'the redirect');
  }
}

/** GETs `raw` within the limits; answers 304 and 404 as statuses (the caller decides), other failures throw. */
export async function fetchText(raw: string, limits: FetchLimits = {}): Promise<FetchedText> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MANIFEST_MAX_BYTES;
  const signal = AbortSignal.timeout(limits.timeoutMs ?? 30_000);
  const { res, url } = await openUrl(raw, { ...(limits.headers && { headers: limits.headers }), signal });
  if (res.status === 304 || res.status === 404 || !res.ok) {
    await res.body?.cancel();
    return { status: res.status, text: '', url: url.href };
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(shownUrl(url), maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let checked = limits.json === false;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += c.length;
    if (size > maxBytes) throw tooLarge(shownUrl(url), maxBytes);
    chunks.push(Buffer.from(c));
    if (!checked) {
      const head = Buffer.concat(chunks).toString('utf8').trimStart();
      if (head.length > 0) {
        if (!head.startsWith('{')) {
          throw new LadingError(
            `${shownUrl(url)} is not a JSON manifest (it starts with ${JSON.stringify(head.slice(0, 20))})`,
            'the URL may point to a login page or another file: give the manifest the build wrote',
          );
        }
        checked = true;
      }
    }
  }
  const etag = res.headers.get('etag') ?? undefined;
  return { status: res.status, text: Buffer.concat(chunks).toString('utf8'), url: url.href, ...(etag && { etag }) };
}

export function tooLarge(where: string, maxBytes: number): LadingError {
  return new LadingError(
    `${where} is larger than ${maxBytes} bytes`,
    'a manifest is small; raise manifest-max-size only if yours really is this big',
  );
}
