import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { PassThrough, type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { LadingError } from '../lib/errors.ts';
import { addChains, type LayerIndex, parseLayerIndex, presentPrefix } from '../lib/layer-index.ts';
import type { Transport } from '../lib/manifest.ts';
import { Digester } from './archive.ts';
import { decompressStream } from './compress.ts';
import { openObjectLocation, openStore, type ObjectStore, type StoreOptions } from './store.ts';

export type StoreTransport = Exclude<Transport, { kind: 'registry' }>;

/**
 * The store and key a registry-less transport names. The endpoint comes from the inputs only (a manifest that names
 * another is refused); the region from the inputs, else the manifest.
 */
export async function storeFor(
  t: StoreTransport,
  opts: StoreOptions = {},
): Promise<{ store: ObjectStore; key: string }> {
  switch (t.kind) {
    case 's3':
      if (t.endpoint && normalEndpoint(t.endpoint) !== normalEndpoint(opts.endpoint ?? '')) {
        // Signed requests go to the configured endpoint only: a manifest must not choose who receives them.
        throw new LadingError(
          `the manifest names the S3 endpoint ${t.endpoint} for s3://${t.bucket}, but the configured one is ${opts.endpoint ?? 'AWS (none set)'}`,
          `set s3-endpoint to ${t.endpoint} if that is really your store; lading never sends signed requests to an endpoint only a manifest names`,
        );
      }
      return {
        store: await openStore(
          { kind: 's3', bucket: t.bucket, prefix: '' },
          { ...opts, region: opts.region ?? t.region },
        ),
        key: t.key,
      };
    case 'gcs':
      return { store: await openStore({ kind: 'gcs', bucket: t.bucket, prefix: '' }, opts), key: t.object };
    case 'file':
      return openObjectLocation({ kind: 'file', bucket: '/', key: t.path });
  }
}

const normalEndpoint = (e: string) => e.trim().replace(/\/+$/, '').toLowerCase();

export class IntegrityError extends LadingError {}

function checkDigest(what: string, d: Digester, sha256: string, size?: number): void {
  if (size !== undefined && d.bytes !== size) {
    throw new IntegrityError(
      `${what} is ${d.bytes} bytes, the manifest says ${size}: refusing to load it`,
      'the object was truncated or replaced; re-export the image',
    );
  }
  if (d.digest() !== sha256) {
    throw new IntegrityError(
      `${what}: its digest differs from the manifest's (it has sha256 ${d.digest()}, the manifest says ${sha256}): refusing to load it`,
      'the object is corrupted or was replaced; re-export the image and deploy its new manifest',
    );
  }
}

/** Reads a stored object through a digester and throws the digest (or size) mismatch, if there is one. */
async function verifyWhole(store: ObjectStore, key: string, sha256: string, size?: number): Promise<void> {
  const whole = new Digester();
  try {
    await pipeline(await store.get(key), whole, new PassThrough().resume());
  } catch {
    return; // unreadable: the caller's own error says what happened
  }
  checkDigest(store.url(key), whole, sha256, size);
}

/** Layer chains the daemon already has: for each image, every prefix of its diffIDs. */
export async function presentChains(docker: (args: string[]) => Promise<string>): Promise<Set<string>> {
  const ids = (await docker(['image', 'ls', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
  const chains = new Set<string>();
  if (ids.length === 0) return chains;
  const out = await docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ...new Set(ids)]);
  for (const line of out.split('\n').filter(Boolean)) addChains(chains, (JSON.parse(line) as string[] | null) ?? []);
  return chains;
}

export async function readIndex(store: ObjectStore, key: string, sha256: string): Promise<LayerIndex> {
  const { text } = await store.getText(key);
  const got = createHash('sha256').update(text).digest('hex');
  if (got !== sha256) {
    throw new IntegrityError(
      `layer index ${store.url(key)} has sha256 ${got}, the manifest says ${sha256}: refusing to load it`,
      'the index was replaced; re-export the image',
    );
  }
  return parseLayerIndex(text);
}

/**
 * Writes a `docker load` archive for a stored image into `dest`, verifying every stored byte against the manifest:
 * archive mode copies the object (decompressed when `decompress`), layers mode builds a docker-archive holding only
 * the layers past `skipLayers` (the daemon has the rest), the config and manifest.json last. A mismatch errors the
 * stream before the archive is complete, so `docker load` never finishes on bad data.
 */
export async function writeLoadArchive(opts: {
  transport: StoreTransport;
  storeOptions?: StoreOptions;
  dest: Writable;
  /** Archive mode: send decompressed bytes (for engines/hosts that cannot read the object's compression). */
  decompress?: boolean;
  /** Layers mode: chains the target daemon has (omitted from the archive), or undefined to send every layer. */
  chains?: Set<string>;
}): Promise<{ layersSent?: number; layersTotal?: number }> {
  const t = opts.transport;
  const { store, key } = await storeFor(t, opts.storeOptions);
  if (t.mode === 'archive') {
    const d = new Digester();
    const stages: Array<NodeJS.ReadWriteStream | Readable | Writable> = [await store.get(key), d];
    const verify = new Transform({
      transform: (c: Buffer, _e: BufferEncoding, cb: TransformCallback) => cb(null, c),
      flush: (cb: TransformCallback) => {
        try {
          checkDigest(store.url(key), d, t.sha256, t.size);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
    });
    stages.push(verify);
    if (opts.decompress && t.compression !== 'none') stages.push(decompressStream(t.compression));
    // Hold the tail back until the stored bytes are verified: docker load cannot complete without it.
    stages.push(holdBack(1024 * 1024), opts.dest);
    await pipeline(stages as unknown as [Readable, ...Writable[]]);
    return {};
  }
  const index = await readIndex(store, t.index ?? key, t.sha256);
  const skip = opts.chains ? presentPrefix(index, opts.chains) : 0;
  const pack = tar.pack();
  const imageHex = index.imageId.slice(7);
  const feed = (async () => {
    const layerPaths = index.layers.map((l) => `${l.diffId.slice(7)}/layer.tar`);
    for (let i = skip; i < index.layers.length; i++) {
      const l = index.layers[i]!;
      const stored = new Digester();
      const raw = new Digester();
      const entry = pack.entry({ name: layerPaths[i]!, size: l.uncompressedSize, mode: 0o644, mtime: new Date(0) });
      try {
        await pipeline(await store.get(l.key), stored, decompressStream(l.compression), raw, entry);
      } catch (e) {
        if (e instanceof LadingError && !(e instanceof IntegrityError) && (e as { notFound?: boolean }).notFound)
          throw e;
        // A damaged object usually makes the decompressor or the archive fail first, with a vaguer error ("Size
        // mismatch" for a same-size corruption): read the object once more and say that its digest differs.
        await verifyWhole(store, l.key, l.sha256, l.size);
        throw new IntegrityError(
          `layer ${l.diffId} from ${store.url(l.key)} is damaged (${(e as Error).message}): refusing to load it`,
          'the stored layer is corrupted or was replaced; re-export the image',
        );
      }
      checkDigest(store.url(l.key), stored, l.sha256, l.size);
      if (`sha256:${raw.digest()}` !== l.diffId) {
        throw new IntegrityError(`layer ${l.diffId} decompresses to sha256:${raw.digest()}`, 're-export the image');
      }
    }
    const cfg = new Digester();
    const chunks: Buffer[] = [];
    await pipeline(
      await store.get(index.config.key),
      cfg,
      new PassThrough().on('data', (c: Buffer) => chunks.push(c)),
    );
    checkDigest(store.url(index.config.key), cfg, index.config.sha256, index.config.size);
    if (`sha256:${cfg.digest()}` !== index.imageId)
      throw new IntegrityError(`config of ${index.imageId} does not match its digest`, 're-export the image');
    pack.entry({ name: `${imageHex}.json`, mtime: new Date(0) }, Buffer.concat(chunks));
    const manifest = [{ Config: `${imageHex}.json`, RepoTags: index.repoTags, Layers: layerPaths }];
    pack.entry({ name: 'manifest.json', mtime: new Date(0) }, JSON.stringify(manifest));
    pack.finalize();
  })();
  feed.catch((e: unknown) => pack.destroy(e as Error));

  // The producer's error (integrity) explains more than the archive's (size mismatch): report it first.
  const [fed, sent] = await Promise.allSettled([feed, pipeline(pack, opts.dest)]);
  if (fed.status === 'rejected') throw fed.reason;
  if (sent.status === 'rejected') throw sent.reason;
  return { layersSent: index.layers.length - skip, layersTotal: index.layers.length };
}

/** Passes data through but keeps the last `n` bytes until the input has ended without error. */
export function holdBack(n: number): Transform {
  let held: Buffer[] = [];
  let heldBytes = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      held.push(chunk);
      heldBytes += chunk.length;
      while (held.length > 1 && heldBytes - held[0]!.length >= n) {
        const c = held.shift()!;
        heldBytes -= c.length;
        this.push(c);
      }
      cb();
    },
    flush(cb) {
      for (const c of held) this.push(c);
      held = [];
      cb();
    },
  });
}

/**
 * `docker load` fed from a stream. If the stream errors (integrity, network), the docker client is killed before it
 * sends the end of the archive, so the engine discards the partial load.
 */
export async function dockerLoad(
  produce: (stdin: Writable) => Promise<unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  const child = spawn('docker', ['load'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new LadingError(`could not run docker load: ${e.message}`, 'install docker')));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 137 : 1)));
  });
  child.stdin.on('error', () => {});
  // The producer writes into a gate, never into docker's stdin directly: on failure the client is killed while
  // its stdin is still open, so it cannot mistake the failure for a clean end of the archive.
  const gate = new PassThrough();
  gate.pipe(child.stdin, { end: false });
  try {
    await produce(gate);
    await new Promise<void>((resolve) => (gate.readableEnded ? resolve() : gate.once('end', () => resolve())));
    child.stdin.end();
  } catch (e) {
    gate.unpipe(child.stdin);
    child.kill('SIGKILL');
    await exited.catch(() => {});
    throw e;
  }
  const code = await exited;
  if (code !== 0) {
    throw new LadingError(
      `docker load failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' ')}`,
      'check that dockerd is up and has disk space',
    );
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
