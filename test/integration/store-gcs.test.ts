import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GcsStore } from '../../src/io/store-gcs.ts';
import { StoreError } from '../../src/io/store.ts';
import {
  type GcsServer,
  keyFileJson,
  makeServiceAccount,
  type ServiceAccount,
  startGcsServer,
} from '../helpers/gcs-server.ts';
import { unique } from '../helpers/testenv.ts';

const CHUNK = 256 * 1024;

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A stream of `data` in small pieces, like a compressor's output. */
function pieces(data: Buffer, size = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

/** Yields `bytes` bytes, then fails, like `docker save` dying halfway. */
function failingAfter(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.destroy(new Error('docker save exited with code 1'));
        return;
      }
      sent += 64 * 1024;
      this.push(randomBytes(64 * 1024));
    },
  });
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsStore(p: Promise<unknown>, match: RegExp, notFound = false): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.match(err.describe(), match);
    assert.equal(err.notFound, notFound);
    return err;
  }
  assert.fail(`expected a StoreError matching ${match}`);
}

describe('GcsStore against the GCS test server (real @google-cloud/storage client)', () => {
  let server: GcsServer;
  let sa: ServiceAccount;
  let store: GcsStore;
  const bucket = 'lading-gcs-test';
  const denied = 'lading-gcs-denied';

  // Credentials reach the store the way they do on a runner: through the default chain (a key file named by
  // GOOGLE_APPLICATION_CREDENTIALS, as google-github-actions/auth leaves one). Requests to the test server carry no
  // auth; the key only signs URLs.
  const keyDir = mkdtempSync(join(tmpdir(), 'lading-gcs-key-'));
  const savedCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  const keyFile = (name: string, account: ServiceAccount) => {
    const path = join(keyDir, `${name}.json`);
    writeFileSync(path, keyFileJson(account), { mode: 0o600 });
    return path;
  };

  before(async () => {
    sa = makeServiceAccount();
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile('trusted', sa);
    server = await startGcsServer({ buckets: [bucket, denied], signers: [sa] });
    store = new GcsStore(bucket, { gcsEndpoint: server.endpoint }, { chunkSize: CHUNK, maxRetries: 1 });
  });
  after(async () => {
    await server.stop();
    if (savedCredentials === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = savedCredentials;
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('uploads a multi-MB stream as a chunked resumable upload and reads back the same bytes', async () => {
    const key = `${unique('images')}/big.tar.zst`;
    const data = randomBytes(3 * 1024 * 1024 + 12345);
    const before = { ...server.counters.requests };
    let progress = 0;
    const r = await store.put(key, pieces(data), { ifAbsent: true, onProgress: (n) => (progress = n) });
    assert.equal(r.created, true);
    assert.ok(r.version, 'a generation is returned');
    const puts = (server.counters.requests['upload.resumable.put'] ?? 0) - (before['upload.resumable.put'] ?? 0);
    assert.ok(puts >= 12, `expected one PUT per 256 KiB chunk, saw ${puts}`);
    assert.equal(progress, data.length);

    const info = await store.head(key);
    assert.equal(info?.size, data.length);
    assert.equal(info?.version, r.version);
    assert.ok(info?.updated instanceof Date);
    assert.equal(sha(await readAll(await store.get(key))), sha(data));
    assert.equal(server.objects(bucket).get(key)?.contentType, 'application/octet-stream');
  });

  it('create-only put of an existing object returns created:false and uploads no bytes', async () => {
    const key = `${unique('images')}/same.tar.zst`;
    const data = randomBytes(700 * 1024);
    assert.equal((await store.put(key, pieces(data), { ifAbsent: true })).created, true);
    const gen = server.objects(bucket).get(key)!.generation;
    const bytes = server.counters.bytesReceived;
    const again = await store.put(key, pieces(randomBytes(700 * 1024)), { ifAbsent: true });
    assert.equal(again.created, false);
    assert.equal(server.counters.bytesReceived, bytes, 'no content bytes sent for an existing object');
    assert.equal(server.objects(bucket).get(key)!.generation, gen, 'the object was not replaced');
    // A small in-memory body takes the multipart path; create-only holds there too.
    const small = `${key}.json`;
    assert.equal(
      (await store.put(small, '{"a":1}', { ifAbsent: true, contentType: 'application/json' })).created,
      true,
    );
    assert.equal((await store.put(small, '{"a":2}', { ifAbsent: true })).created, false);
    assert.equal((await store.getText(small)).text, '{"a":1}');
  });

  it('create-only loses a race cleanly: another writer between the check and the upload → created:false', async () => {
    const key = `${unique('race')}/sha256-z.tar.zst`;
    let raced = false;
    const body = new Readable({
      read() {
        if (!raced) {
          raced = true;
          server.putObject(bucket, key, 'theirs'); // lands after put's existence check, before the session starts
        }
        this.push(randomBytes(64 * 1024));
      },
    });
    const r = await store.put(key, body, { ifAbsent: true });
    assert.equal(r.created, false);
    assert.equal(server.objects(bucket).get(key)?.data.toString(), 'theirs');
    assert.equal(server.openUploads(), 0);
  });

  it('a chunk that fails with 503 is retried and the upload completes intact', async () => {
    const key = `${unique('retry')}/sha256-r.tar.zst`;
    const data = randomBytes(CHUNK * 3 + 5);
    const puts = server.counters.requests['upload.resumable.put'] ?? 0;
    server.failNext('upload.resumable.put', 1, 503);
    assert.equal((await store.put(key, pieces(data), { ifAbsent: true })).created, true);
    assert.ok((server.counters.requests['upload.resumable.put'] ?? 0) - puts >= 5, 'the failed chunk was sent again');
    assert.equal(sha(server.objects(bucket).get(key)!.data), sha(data));
  });

  it('put without ifAbsent replaces the object; getText returns the text and its generation', async () => {
    const key = `${unique('manifests')}/channels/prod.json`;
    const multipart = server.counters.requests['upload.multipart'] ?? 0;
    const first = await store.put(key, '{"v":1}', { contentType: 'application/json' });
    const second = await store.put(key, Buffer.from('{"v":2}'), { contentType: 'application/json' });
    assert.equal(server.counters.requests['upload.multipart'], multipart + 2, 'small bodies use multipart uploads');
    assert.notEqual(first.version, second.version);
    const got = await store.getText(key);
    assert.deepEqual(got, { text: '{"v":2}', version: second.version });
    assert.equal(server.objects(bucket).get(key)?.contentType, 'application/json');
  });

  it('uploads an empty stream and a large in-memory buffer', async () => {
    const empty = `${unique('e')}/empty`;
    assert.equal((await store.put(empty, Readable.from([]))).created, true);
    assert.equal((await store.head(empty))?.size, 0);
    assert.equal((await readAll(await store.get(empty))).length, 0);
    const bigKey = `${unique('e')}/buffer`;
    const big = randomBytes(6 * 1024 * 1024);
    assert.equal((await store.put(bigKey, big)).created, true);
    assert.equal(sha(await readAll(await store.get(bigKey))), sha(big));
  });

  it('lists every object under a prefix across pages, in name order', async () => {
    const prefix = `${unique('list')}/`;
    const paged = new GcsStore(bucket, { gcsEndpoint: server.endpoint }, { pageSize: 2 });
    const keys = ['a', 'b/1', 'b/2', 'c', 'd.json'].map((k) => prefix + k);
    for (const k of keys) await store.put(k, k);
    await store.put(`${prefix.slice(0, -1)}-other/x`, 'x');
    const lists = server.counters.requests['object.list'] ?? 0;
    const seen = [];
    for await (const o of paged.list(prefix)) seen.push(o);
    assert.deepEqual(
      seen.map((o) => o.key),
      keys,
    );
    assert.equal(seen[2]?.size, keys[2]!.length);
    assert.ok(seen.every((o) => o.version && o.updated instanceof Date));
    assert.equal(server.counters.requests['object.list'], lists + 3, '5 objects in pages of 2');
    const none = [];
    for await (const o of store.list(`${unique('nothing')}/`)) none.push(o);
    assert.deepEqual(none, []);
  });

  it('copies server-side (no bytes through the client) and deletes (missing objects ignored)', async () => {
    const from = `${unique('copy')}/sha256-abc.tar.zst`;
    const to = `${unique('copy')}/web-latest.tar.zst`;
    const data = randomBytes(300 * 1024);
    await store.put(from, pieces(data));
    const bytes = server.counters.bytesReceived;
    await store.copy(from, to);
    assert.equal(server.counters.bytesReceived, bytes);
    assert.equal(sha(await readAll(await store.get(to))), sha(data));
    await store.delete(to);
    assert.equal(await store.head(to), undefined);
    await store.delete(to);
    await rejectsStore(store.copy(`${unique('copy')}/missing`, to), /does not exist/, true);
  });

  it('a body stream that errors leaves no object and no open upload session', async () => {
    const key = `${unique('broken')}/sha256-x.tar.zst`;
    const bytes = server.counters.bytesReceived;
    await rejectsStore(store.put(key, failingAfter(1024 * 1024), { ifAbsent: true }), /docker save exited with code 1/);
    assert.ok(server.counters.bytesReceived > bytes, 'chunks were sent before the failure');
    assert.equal(server.objects(bucket).has(key), false);
    assert.equal(await store.head(key), undefined);
    assert.equal(server.openUploads(), 0, 'the resumable session was cancelled');
    // A failure before the first chunk was sent also leaves nothing.
    await rejectsStore(store.put(key, failingAfter(0)), /docker save exited/);
    assert.equal(server.objects(bucket).has(key), false);
  });

  it('a missing object: head resolves undefined, get/getText throw notFound naming gs://bucket/key', async () => {
    const key = `${unique('missing')}/nope.json`;
    assert.equal(await store.head(key), undefined);
    await rejectsStore(store.get(key), new RegExp(`gs://${bucket}/${key} does not exist — check the location`), true);
    await rejectsStore(store.getText(key), /does not exist/, true);
  });

  it('a download whose bytes do not match the stored crc32c fails with a StoreError', async () => {
    const key = `${unique('corrupt')}/sha256-y.tar.zst`;
    await store.put(key, pieces(randomBytes(512 * 1024)));
    server.corruptObject(bucket, key);
    const stream = await store.get(key);
    await rejectsStore(readAll(stream), /reading gs:\/\/lading-gcs-test\/.* failed: the data's checksum did not match/);
    // With matching hashes the client cannot tell; the bytes arrive changed (lading's sha256 check is the end-to-end guard).
    const key2 = `${key}.2`;
    const data = randomBytes(1000);
    await store.put(key2, data);
    server.corruptObject(bucket, key2, { offset: 0, updateHashes: true });
    const got = await readAll(await store.get(key2));
    assert.equal(got[0], data[0]! ^ 0xff);
  });

  it('a missing bucket gives a clear error for every operation', async () => {
    const gone = new GcsStore('lading-no-such-bucket', { gcsEndpoint: server.endpoint }, { maxRetries: 0 });
    const msg = /bucket gs:\/\/lading-no-such-bucket does not exist .* — create it or fix the store location/;
    await rejectsStore(gone.head('a'), msg);
    await rejectsStore(gone.put('a', 'x'), msg);
    await rejectsStore(gone.put('a', pieces(randomBytes(1000)), { ifAbsent: true }), msg);
    await rejectsStore(gone.get('a'), msg);
    await rejectsStore(gone.delete('a'), msg);
    await rejectsStore(
      (async () => {
        for await (const _ of gone.list('')) void _;
      })(),
      msg,
    );
  });

  it('no permission (403) says which role to grant', async () => {
    server.denyBucket(denied);
    try {
      const store403 = new GcsStore(denied, { gcsEndpoint: server.endpoint }, { maxRetries: 0 });
      const msg =
        /no permission for (writing|reading) gs:\/\/lading-gcs-denied\/k: [^{]*storage\.objects\.\w+.* — grant roles\/storage\.objectAdmin/;
      await rejectsStore(store403.put('k', 'x'), msg);
      await rejectsStore(store403.put('k', pieces(randomBytes(1000))), msg);
      await rejectsStore(store403.head('k'), msg);
      await rejectsStore(store403.get('k'), msg);
    } finally {
      server.denyBucket(denied, false);
    }
  });

  it('an unreachable endpoint is a network error, not a stack trace', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = new GcsStore(bucket, { gcsEndpoint: `http://127.0.0.1:${port}` }, { maxRetries: 0 });
    await rejectsStore(dead.head('k'), /cannot reach Cloud Storage at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('a V4 signed URL lets a client without credentials fetch the object (and only that, only unaltered)', async () => {
    const key = `${unique('signed')}/web-latest.tar.zst`;
    const data = randomBytes(200 * 1024);
    await store.put(key, pieces(data));
    const url = await store.signedUrl(key, 300);
    assert.ok(url);
    assert.match(url, /X-Goog-Signature=[0-9a-f]+/);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), sha(data));
    const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(10, 20));

    const other = url.replace(encodeURI(key), encodeURI(`${key}.other`));
    assert.equal((await fetch(other)).status, 403, 'the signature covers the object name');
    const tampered = url.replace(/X-Goog-Expires=\d+/, 'X-Goog-Expires=600');
    assert.equal((await fetch(tampered)).status, 403, 'the signature covers the expiry');
    const trusted = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile('stranger', makeServiceAccount('x@y.iam.gserviceaccount.com'));
    try {
      const stranger = new GcsStore(bucket, { gcsEndpoint: server.endpoint });
      assert.equal((await fetch((await stranger.signedUrl(key, 60))!)).status, 403, 'an untrusted signer is refused');
    } finally {
      process.env.GOOGLE_APPLICATION_CREDENTIALS = trusted;
    }
  });

  it('an expired signed URL is refused', async () => {
    const key = `${unique('signed')}/old`;
    await store.put(key, 'x');
    const url = (await store.signedUrl(key, 1))!;
    await new Promise((r) => setTimeout(r, 2100));
    const res = await fetch(url);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /ExpiredToken/);
  });

  it('the test server keeps resumable-upload semantics: 256 KiB quanta, 308 + Range, status queries, create-only', async () => {
    const name = `${unique('proto')}/obj`;
    const q = `name=${encodeURIComponent(name)}&uploadType=resumable&ifGenerationMatch=0`;
    const start = await fetch(`${server.endpoint}/upload/storage/v1/b/${bucket}/o?${q}`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(start.status, 200);
    const session = start.headers.get('location')!;
    const data = randomBytes(CHUNK + 1000);
    // A non-final chunk that is not a multiple of 256 KiB: only the whole quanta are kept.
    const first = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': `bytes 0-${CHUNK + 99}/*` },
      body: data.subarray(0, CHUNK + 100),
    });
    assert.equal(first.status, 308);
    assert.equal(first.headers.get('range'), `bytes=0-${CHUNK - 1}`);
    const status = await fetch(session, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    assert.equal(status.status, 308);
    assert.equal(status.headers.get('range'), `bytes=0-${CHUNK - 1}`);
    assert.equal(server.objects(bucket).has(name), false, 'nothing visible before the final chunk');
    const last = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': `bytes ${CHUNK}-${data.length - 1}/${data.length}` },
      body: data.subarray(CHUNK),
    });
    assert.equal(last.status, 200);
    const meta = (await last.json()) as { size: string; generation: string; crc32c: string };
    assert.equal(meta.size, String(data.length));
    assert.deepEqual(server.objects(bucket).get(name)?.data, data);
    // Create-only is checked when a session starts.
    const again = await fetch(`${server.endpoint}/upload/storage/v1/b/${bucket}/o?${q}`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(again.status, 412);
    // Range reads on the download path, and a delimiter listing with prefixes.
    const range = await fetch(
      `${server.endpoint}/download/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}?alt=media`,
      {
        headers: { range: 'bytes=-10' },
      },
    );
    assert.equal(range.status, 206);
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), data.subarray(-10));
    const dir = name.split('/')[0]!;
    const list = (await (
      await fetch(
        `${server.endpoint}/storage/v1/b/${bucket}/o?prefix=${encodeURIComponent(dir.slice(0, 5))}&delimiter=/`,
      )
    ).json()) as { prefixes?: string[] };
    assert.ok(list.prefixes?.includes(`${dir}/`));
    const missing = await fetch(`${server.endpoint}/storage/v1/b/no-such-bucket`);
    assert.equal(missing.status, 404);
    assert.deepEqual(((await missing.json()) as { error: { code: number } }).error.code, 404);
  });

  it('signing without credentials that can sign gives a clear error', async () => {
    const saved = { ...process.env };
    process.env.METADATA_SERVER_DETECTION = 'none'; // never probe a metadata server from the test
    process.env.GOOGLE_APPLICATION_CREDENTIALS = '/nonexistent/lading-key.json';
    try {
      const anon = new GcsStore(bucket, { gcsEndpoint: server.endpoint }, { maxRetries: 0 });
      await rejectsStore(
        anon.signedUrl('k', 60),
        /cannot sign a URL for gs:\/\/lading-gcs-test\/k: .* — sign with a service account/,
      );
    } finally {
      process.env = saved;
    }
  });
});
