import assert from 'node:assert/strict';
import { parseExportSettings } from '../../src/settings/export.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runExportStage } from '../../src/stages/export.ts';
import { runLoadStage } from '../../src/stages/load.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { startGcsServer, type GcsServer } from '../helpers/gcs-server.ts';
import { busyboxContext, buildJsonFor, docker, testEnv, unique } from '../helpers/testenv.ts';

const quiet: Reporter = { info: () => {}, warning: () => {}, group: (_n, f) => f(), secret: () => {} };

/** The same export → load round trip through the GCS JSON API (the in-repo server, driven by the real client). */
describe('registry-less through GCS (@google-cloud/storage against the in-repo GCS server)', () => {
  const env = testEnv();
  const bucket = 'lading-gcs';
  const name = `lading-gcs/${unique('app')}`;
  let gcs: GcsServer;
  let dir = '';
  const build = (content: string) => {
    busyboxContext(dir, { files: { 'index.html': content } });
    docker(['build', '-q', '-t', `${name}:v1`, dir]);
    const imageId = docker(['image', 'inspect', '--format', '{{.Id}}', `${name}:v1`]);
    return {
      imageId,
      json: buildJsonFor({
        id: 'web',
        name,
        imageId,
        tag: 'v1',
        sha: 'a'.repeat(40),
        services: ['web'],
        channel: 'latest',
      }),
    };
  };

  before(async () => {
    gcs = await startGcsServer({ buckets: [bucket] });
    dir = mkdtempSync(join(tmpdir(), 'lading-gcs-'));
    process.env.DOCKER_HOST = env.dockerHost;
  });
  after(async () => {
    await gcs.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const mode of ['archive', 'layers'] as const) {
    it(`${mode}: exports, re-exports nothing, loads where missing, refuses a corrupted object`, async () => {
      const { imageId, json } = build(`gcs-${mode}`);
      const inputs: Record<string, string> = {
        'build-json': json,
        store: `gs://${bucket}/${mode}`,
        'store-mode': mode,
        'gcs-endpoint': gcs.endpoint,
      };
      const read = (k: string) => inputs[k];
      const first = await runExportStage({ ...parseExportSettings(read), env: process.env, reporter: quiet });
      const t = first.images[0]!.transport;
      assert.equal(t.kind, 'gcs');
      assert.ok(first.images[0]!.uploaded > 0);
      if (mode === 'archive' && t.kind === 'gcs')
        assert.deepEqual(t.aliases, [`${mode}/images/${name}-latest.tar.zst`]);

      const before = gcs.counters.bytesReceived;
      const again = await runExportStage({ ...parseExportSettings(read), env: process.env, reporter: quiet });
      assert.equal(again.images[0]!.uploaded, 0);
      assert.equal(gcs.counters.bytesReceived, before, 're-export sends zero object bytes to GCS');

      const manifest = {
        schema: 'lading.manifest/v1' as const,
        source: { repository: 'o/r', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: new Date().toISOString() },
        tags: ['v1'],
        primary: 'v1',
        images: [{ id: 'web', services: ['web'], name, tags: ['v1'], digest: imageId, ref: imageId, transport: t }],
      };
      docker(['rmi', '-f', imageId]);
      const loaded = await runLoadStage({
        settings: { store: { gcsEndpoint: gcs.endpoint }, manifest, images: [] },
        reporter: quiet,
      });
      assert.equal(loaded[0]!.present, false);
      assert.equal(docker(['run', '--rm', imageId, '/bin/busybox', 'cat', '/srv/index.html']), `gcs-${mode}`);

      // Corrupt the stored bytes consistently (the client's crc32c agrees): only lading's sha256 can notice.
      // Layers mode: damage the image's own (last) layer; the busybox layer below is on the daemon and never sent.
      const indexKey = t.kind === 'gcs' ? t.index : undefined;
      const index = indexKey
        ? (JSON.parse(gcs.objects(bucket).get(indexKey)!.data.toString('utf8')) as { layers: Array<{ key: string }> })
        : undefined;
      const key = t.kind === 'gcs' && mode === 'archive' ? t.object : index!.layers.at(-1)!.key;
      gcs.corruptObject(bucket, key, { updateHashes: true });
      docker(['rmi', '-f', imageId]);
      await assert.rejects(
        runLoadStage({ settings: { store: { gcsEndpoint: gcs.endpoint }, manifest, images: [] }, reporter: quiet }),
        /refusing to load it/,
      );
      assert.throws(() => docker(['image', 'inspect', imageId]), 'nothing was loaded');
    });
  }

  it('says clearly when the bucket does not exist or access is denied', async () => {
    const { json } = build('denied');
    const read = (store: string) => (k: string) => ({ 'build-json': json, store, 'gcs-endpoint': gcs.endpoint })[k];
    await assert.rejects(
      runExportStage({ ...parseExportSettings(read('gs://no-such-bucket-x/p')), env: process.env, reporter: quiet }),
      /does not exist/,
    );
    gcs.createBucket('lading-denied');
    gcs.denyBucket('lading-denied');
    await assert.rejects(
      runExportStage({ ...parseExportSettings(read('gs://lading-denied/p')), env: process.env, reporter: quiet }),
      /no permission|denied|403/i,
    );
  });
});
