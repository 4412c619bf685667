import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DEFAULT_MANIFEST_MAX_BYTES, fetchText, tooLarge } from './manifest-fetch.ts';
import { type ObjectStore, openObjectLocation, StoreError, type StoreOptions } from './store.ts';
import { InputError, LadingError } from '../lib/errors.ts';
import { type Manifest, parseManifest } from '../lib/manifest.ts';
import { SIGNATURE_SUFFIX, verifyManifestSignature } from '../lib/manifest-signature.ts';
import { parseObjectLocation, shownUrl } from '../lib/store-location.ts';

// Where a manifest's detached signature sits: `<manifest>.sig` beside it, over https, in a store or on disk. Each
// reader gives undefined when there is none (the verdict is then "missing"), and an error that says why when there
// is one it cannot read: a signature it could not read is not the same as an unsigned manifest.

/** `<url>.sig` beside a manifest fetched from `url` (after its redirects); undefined when the server has none. */
export async function signatureAt(url: string): Promise<string | undefined> {
  const u = new URL(url);
  u.pathname += SIGNATURE_SUFFIX;
  const sig = await fetchText(u.href, { maxBytes: 1024, json: false });
  if (sig.status === 200) return sig.text;
  if (sig.status === 404 || sig.status === 410) return undefined;
  throw new LadingError(
    `the manifest's signature ${shownUrl(u)} answered HTTP ${sig.status}`,
    u.search
      ? "the manifest URL is signed (its query): a presigned or signed URL grants that one object, not its .sig — give the manifest's s3:// or gs:// location instead, or serve both where a plain GET reaches them"
      : 'serve <manifest>.sig beside the manifest where the same GET reaches it',
  );
}

/** `<key>.sig` beside a manifest in a store; undefined when the store has none. */
export async function storeSignature(store: ObjectStore, key: string): Promise<string | undefined> {
  return (
    await store.getText(`${key}${SIGNATURE_SUFFIX}`).catch((err: unknown) => {
      if (err instanceof StoreError && err.notFound) return undefined;
      throw err; // no permission, no bucket, the store unreachable: said as such, not as an unsigned manifest
    })
  )?.text;
}

/** `<path>.sig` beside a manifest file; undefined when there is none. `input` names the manifest's input in errors. */
export async function fileSignature(path: string, input: string): Promise<string | undefined> {
  return readFile(`${path}${SIGNATURE_SUFFIX}`, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new InputError(
      input,
      `has a signature file ${path}${SIGNATURE_SUFFIX} that cannot be read (${err.code ?? err.message})`,
      'make it readable by the user lading runs as',
    );
  });
}

export interface ManifestReadOptions {
  storeOptions?: StoreOptions;
  cwd?: string;
  /** Larger manifests are refused (default 16 MiB). */
  maxBytes?: number;
  /** When set, a fetched manifest must carry a valid detached signature (`<location>.sig`, HMAC-SHA256). */
  secret?: string;
}

/**
 * Reads the manifest an input names, in any of the forms the build can hand over: its JSON, a file (relative to
 * `cwd`), an https URL, or a store object (s3://bucket/key, gs://bucket/object — the manifest-location output).
 * Bounded (size, and for URLs: https, redirects, timeout; see io/manifest-fetch.ts), signature-checked when a
 * secret is configured, and validated on the way in: a deploy refuses a manifest it does not understand (or
 * cannot trust) before touching anything.
 */
export async function readManifestFrom(
  input: string,
  raw: string | undefined,
  opts: ManifestReadOptions = {},
): Promise<Manifest> {
  const value = raw?.trim();
  if (!value) {
    throw new InputError(
      input,
      'is empty',
      'pass the manifest the build wrote: a file, its JSON, s3://…, gs://… or https://…',
    );
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MANIFEST_MAX_BYTES;
  const bounded = (text: string, where: string) => {
    if (Buffer.byteLength(text) > maxBytes) throw tooLarge(where, maxBytes);
    return text;
  };
  // The input's own JSON is the user's (not fetched from anywhere others can write): no signature needed.
  if (value.startsWith('{')) return parseManifest(bounded(value, `the ${input} input`), `the ${input} input`);
  let text: string;
  let signature: () => Promise<string | undefined>;
  // What errors name: the input as given, but a URL without its query (a signed URL's signature).
  let source = value;
  if (/^https?:\/\//.test(value)) {
    source = shownUrl(value);
    const res = await fetchText(value, { maxBytes });
    if (res.status !== 200) {
      throw new LadingError(
        `fetching the manifest at ${source} answered HTTP ${res.status}`,
        'the URL may be wrong or expired',
      );
    }
    text = res.text;
    signature = () => signatureAt(res.url);
  } else if (/^(s3|gs):\/\//.test(value)) {
    const { store, key } = await openObjectLocation(parseObjectLocation(input, value), opts.storeOptions);
    const info = await store.head(key);
    if (info && info.size > maxBytes) throw tooLarge(value, maxBytes);
    text = bounded((await store.getText(key)).text, value);
    signature = () => storeSignature(store, key);
  } else {
    const path = resolve(opts.cwd ?? process.cwd(), value);
    const s = await stat(path).catch(() => {
      throw new InputError(input, `${value} does not exist`, 'give the manifest file the build wrote (manifest-path)');
    });
    if (s.size > maxBytes) throw tooLarge(value, maxBytes);
    text = await readFile(path, 'utf8');
    signature = () => fileSignature(path, input);
  }
  const manifest = parseManifest(text, source);
  if (opts.secret) verifyManifestSignature(text, await signature(), opts.secret, source);
  return manifest;
}
