import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as tar from 'tar-stream';
import { extract as tarExtract } from 'tar-stream';
import { decompressStream, sniffCompression } from '../../io/compress.ts';

/** Reading tar streams (layers and docker-save archives), plain or compressed. */

/** Sniffs the compression from the first bytes and decompresses. */
export async function decompressed(src: Readable): Promise<Readable> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let n = 0;
  while (n < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    n += r.value.length;
  }
  const first = Buffer.concat(head);
  const rest = Readable.from(
    (async function* () {
      yield first;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
  );
  const d = decompressStream(sniffCompression(first));
  rest.on('error', (e) => d.destroy(e));
  rest.pipe(d);
  return d;
}

export async function drain(entry: Readable): Promise<void> {
  for await (const _ of entry) void _;
}

export type TarEntry = Readable & { header: tar.Header };

/** Runs fn over every entry of a tar stream, in order; an error anywhere stops the stream and rejects. */
export async function forEachTarEntry(src: Readable, fn: (entry: TarEntry) => Promise<void>): Promise<void> {
  const ex = tarExtract();
  src.on('error', (e) => ex.destroy(e));
  src.pipe(ex);
  try {
    for await (const e of ex) {
      const entry = e as unknown as TarEntry;
      await fn(entry);
      if (!entry.readableEnded) await drain(entry);
    }
  } catch (err) {
    src.destroy();
    throw err;
  }
}
export async function openLayerFile(file: string): Promise<Readable> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const d = decompressStream(sniffCompression(head));
  const src = createReadStream(file);
  src.on('error', (e) => d.destroy(e));
  src.pipe(d);
  return d;
}
