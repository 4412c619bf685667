import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { S3Store } from '../../src/io/store-s3.ts';
import { createManifest } from '../../src/lib/manifest.ts';
import { storeKeys } from '../../src/lib/store-location.ts';
import { parseRetentionSettings } from '../../src/settings/store.ts';
import { runRetentionStage } from '../../src/stages/retention.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { testEnv, unique } from '../helpers/testenv.ts';

const quiet: Reporter = { info: () => {}, warning: () => {}, group: (_n, f) => f(), secret: () => {} };

describe('S3Store against s3rver', () => {
  const env = testEnv();
  process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
  const store = new S3Store(env.s3.bucket, { endpoint: env.s3.endpoint, region: env.s3.region });
  const prefix = `${unique('s3store')}/`;

  it('streams a multipart upload, is create-only, lists, copies, signs URLs and deletes', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const key = `${prefix}big.bin`;
    let progress = 0;
    const r = await store.put(key, Readable.from([data.subarray(0, 9e6), data.subarray(9e6)]), {
      ifAbsent: true,
      onProgress: (b) => (progress = b),
    });
    assert.equal(r.created, true);
    assert.equal(progress, data.length);
    assert.equal((await store.head(key))?.size, data.length);
    assert.equal((await store.put(key, 'other', { ifAbsent: true })).created, false, 'create-only keeps the first');
    await store.copy(key, `${prefix}alias.bin`);
    const keys: string[] = [];
    for await (const o of store.list(prefix)) keys.push(o.key);
    assert.deepEqual(keys, [`${prefix}alias.bin`, key]);
    const url = await store.signedUrl(`${prefix}alias.bin`, 60);
    const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.ok(fetched.equals(data), 'a presigned URL serves the bytes without credentials');
    await store.delete(`${prefix}alias.bin`);
    assert.equal(await store.head(`${prefix}alias.bin`), undefined);
  });

  it('leaves no object when the body stream fails mid-upload', async () => {
    const key = `${prefix}interrupted.bin`;
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 24 * 1024 * 1024) {
          this.destroy(new Error('docker save died'));
          return;
        }
        sent += 1024 * 1024;
        this.push(randomBytes(1024 * 1024));
      },
    });
    await assert.rejects(store.put(key, body, { ifAbsent: true, sizeHint: 64 * 1024 * 1024 }), /docker save died/);
    assert.equal(await store.head(key), undefined, 'nothing under the content name');
  });

  it('names a missing bucket and bad credentials clearly', async () => {
    const missing = new S3Store('no-such-bucket-lading', { endpoint: env.s3.endpoint });
    await assert.rejects(missing.put('k', 'x'), /bucket s3:\/\/no-such-bucket-lading does not exist/);
    await assert.rejects(missing.get('k'), /does not exist/);
    assert.equal(await store.head(`${prefix}nothing`), undefined);
    await assert.rejects(store.get(`${prefix}nothing`), (e: Error & { notFound?: boolean }) => e.notFound === true);
  });

  it('retention lists content objects no recent manifest references, and deletes them only with apply', async () => {
    const p = `${unique('ret')}`;
    const loc = `s3://${env.s3.bucket}/${p}`;
    const hex = (c: string) => c.repeat(64);
    const archive = (c: string) => storeKeys.archive(`${p}/`, 'web', `sha256:${hex(c)}`, 'zstd');
    for (const c of ['a', 'b', 'c']) {
      await store.put(archive(c), `archive ${c}`);
      await store.put(storeKeys.sidecar(archive(c)), '{}');
    }
    await store.put(storeKeys.alias(`${p}/`, 'web', 'latest', 'zstd'), 'alias');
    const manifest = (c: string, day: number) =>
      createManifest({
        source: {
          repository: 'o/r',
          ref: 'refs/heads/main',
          sha: c.repeat(40),
          created: new Date(Date.UTC(2026, 0, day)).toISOString(),
        },
        tags: [`t${c}`],
        primary: `t${c}`,
        images: [
          {
            id: 'web',
            services: ['web'],
            name: 'web',
            tags: [`t${c}`],
            digest: `sha256:${hex(c)}`,
            ref: `sha256:${hex(c)}`,
            transport: {
              kind: 's3',
              bucket: env.s3.bucket,
              key: archive(c),
              sha256: hex(c),
              size: 9,
              compression: 'zstd',
              mode: 'archive',
            },
          },
        ],
      });
    await store.put(storeKeys.manifestBySha(`${p}/`, 'b'.repeat(40)), JSON.stringify(manifest('b', 2)));
    await store.put(storeKeys.manifestBySha(`${p}/`, 'c'.repeat(40)), JSON.stringify(manifest('c', 3)));
    const inputs: Record<string, string> = { store: loc, keep: '1', 's3-endpoint': env.s3.endpoint };
    const dry = await runRetentionStage({ settings: parseRetentionSettings((k) => inputs[k]), reporter: quiet });
    assert.deepEqual(
      dry.unreferenced.map((o) => o.key).sort(),
      [archive('a'), storeKeys.sidecar(archive('a')), archive('b'), storeKeys.sidecar(archive('b'))].sort(),
    );
    assert.equal(dry.deleted, false);
    assert.ok(await store.head(archive('a')), 'a dry run deletes nothing');
    inputs.apply = 'true';
    await runRetentionStage({ settings: parseRetentionSettings((k) => inputs[k]), reporter: quiet });
    assert.equal(await store.head(archive('a')), undefined);
    assert.equal(await store.head(archive('b')), undefined);
    assert.ok(await store.head(archive('c')), 'what the kept manifest needs stays');
    assert.ok(await store.head(storeKeys.alias(`${p}/`, 'web', 'latest', 'zstd')), 'aliases are never pruned');
  });
});
