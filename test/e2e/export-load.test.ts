import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseManifest } from '../../src/lib/manifest.ts';
import { runCli } from '../helpers/bundles.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

/**
 * Registry-less round trips on the real dockerd and s3rver: export with the built CLI, load on a daemon that lacks
 * the image, the seed's host flow with only the aws CLI, zero-byte re-exports, per-layer dedup, corruption refused.
 */
describe('registry-less: export → fetch → load through S3 (s3rver)', () => {
  const env = testEnv();
  const name = `lading-export/${unique('app')}`;
  const prefix = unique('exp');
  const store = `s3://${env.s3.bucket}/${prefix}`;
  let repo = '';
  const s3env = {
    AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    AWS_REGION: env.s3.region,
    LADING_S3_ENDPOINT: env.s3.endpoint,
  };
  const s3 = new S3Client({
    endpoint: env.s3.endpoint,
    region: env.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  const lading = (args: string[], extra: Record<string, string> = {}) => {
    const res = runCli(args, {
      cwd: repo,
      env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined, ...s3env, ...extra },
    });
    return res;
  };
  const ok = (args: string[], extra: Record<string, string> = {}) => {
    const res = lading(args, extra);
    assert.equal(res.code, 0, `lading ${args[0]}: ${res.stderr}\n${res.stdout}`);
    return res;
  };
  /** Commits `files` and builds the image; returns the build JSON. */
  const build = (files: Record<string, string>, extra: string[] = []) => {
    busyboxContext(repo, { files, extra });
    git('add', '-A');
    git('commit', '-qm', `v${Date.now()}`);
    return ok(['build', '--images', name, '--json']).stdout;
  };
  const run = (ref: string) =>
    docker(['run', '--rm', '--network', 'host', ref, '/bin/busybox', 'cat', '/srv/index.html']);

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-export-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
  });
  after(() => {
    rmSync(repo, { recursive: true, force: true });
    spawnSync('docker', ['rmi', '--no-prune', '-f', ...docker(['images', '-q', name]).split('\n').filter(Boolean)], {
      env: { ...process.env, DOCKER_HOST: env.dockerHost },
    });
  });

  it('exports archives, loads them where the image is missing, re-exports nothing, serves the seed host flow', async () => {
    writeFileSync(join(repo, 'build.json'), build({ 'index.html': 'one' }));
    const exp = ok(['export', '--build-json', '@build.json', '--store', store, '--compression', 'gzip', '--json']);
    const exported = JSON.parse(exp.stdout) as {
      images: Array<{
        digest: string;
        uploaded: number;
        transport: { key: string; sha256: string; aliases?: string[] };
      }>;
    };
    const img = exported.images[0]!;
    assert.ok(img.uploaded > 0, 'the first export uploads the archive');
    assert.match(img.transport.key, new RegExp(`^${prefix}/images/.+/sha256-[a-f0-9]{64}\\.tar\\.gz$`));
    assert.deepEqual(img.transport.aliases, [`${prefix}/images/${name}-latest.tar.gz`], 'main gets the -latest alias');
    assert.match(exp.stderr, /MiB|KiB/, 'progress and sizes are logged');

    writeFileSync(join(repo, 'export.json'), exp.stdout);
    ok(['manifest', '--push-json', '@export.json', '--manifest-path', 'manifest.json', '--manifest-store', store]);
    const manifest = parseManifest(readFileSync(join(repo, 'manifest.json'), 'utf8'));
    assert.equal(manifest.images[0]!.transport.kind, 's3');
    assert.equal(manifest.images[0]!.ref, img.digest, 'registry-less images are pinned by image ID');

    // Re-export of the same content: nothing travels.
    const again = JSON.parse(
      ok(['export', '--build-json', '@build.json', '--store', store, '--compression', 'gzip', '--json']).stdout,
    ) as typeof exported;
    assert.equal(again.images[0]!.uploaded, 0, 're-export uploads zero bytes');
    assert.equal(again.images[0]!.transport.sha256, img.transport.sha256);

    // Load by manifest (from the store) on a daemon that lacks the image.
    docker(['rmi', '-f', img.digest]);
    const loaded = JSON.parse(
      ok(['load', '--manifest', `${store}/manifests/by-sha/${manifest.source.sha}.json`, '--json']).stdout,
    ) as Array<{ present: boolean }>;
    assert.equal(loaded[0]!.present, false);
    assert.equal(run(img.digest), 'one', 'the loaded image runs');
    const twice = JSON.parse(ok(['load', '--manifest', 'manifest.json', '--json']).stdout) as Array<{
      present: boolean;
    }>;
    assert.equal(twice[0]!.present, true, 'an image already present is not fetched again');

    // The seed's host flow, literally: only the aws CLI and docker.
    docker(['rmi', '-f', img.digest]);
    const seed = spawnSync(
      'sh',
      ['-c', 'aws --endpoint-url "$S3_ENDPOINT" s3 cp "s3://$BUCKET/$KEY" - | gunzip | docker load'],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          ...s3env,
          DOCKER_HOST: env.dockerHost,
          S3_ENDPOINT: env.s3.endpoint,
          BUCKET: env.s3.bucket,
          KEY: img.transport.aliases![0]!,
        },
      },
    );
    assert.equal(seed.status, 0, seed.stderr);
    assert.match(seed.stdout, new RegExp(`Loaded image: ${name}:latest`));
    assert.equal(run(`${name}:latest`), 'one');
  });

  it('refuses a corrupted object before docker load completes', async () => {
    writeFileSync(join(repo, 'build.json'), build({ 'index.html': 'corrupt-me' }));
    const exp = JSON.parse(ok(['export', '--build-json', '@build.json', '--store', store, '--json']).stdout) as {
      images: Array<{ digest: string; transport: { key: string } }>;
    };
    const { digest, transport } = exp.images[0]!;
    const obj = await s3.send(new GetObjectCommand({ Bucket: env.s3.bucket, Key: transport.key }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff; // flip one byte in the middle
    await s3.send(new PutObjectCommand({ Bucket: env.s3.bucket, Key: transport.key, Body: bytes }));
    writeFileSync(join(repo, 'export.json'), JSON.stringify(exp));
    ok(['manifest', '--push-json', '@export.json', '--manifest-path', 'manifest.json']);
    docker(['rmi', '-f', digest]);
    const res = lading(['load', '--manifest', 'manifest.json']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /its digest differs from the manifest's \(it has sha256 [a-f0-9]{64}, the manifest says [a-f0-9]{64}\): refusing to load it/,
    );
    const has = spawnSync('docker', ['image', 'inspect', digest], {
      env: { ...process.env, DOCKER_HOST: env.dockerHost },
    });
    assert.notEqual(has.status, 0, 'nothing was loaded');
  });

  it('layers mode: a one-layer change uploads about that layer, and a load sends only the missing layer', () => {
    const layersStore = `${store}-layers`;
    const big = randomBytes(256 * 1024).toString('base64'); // ~350 KB of incompressible text
    writeFileSync(join(repo, 'build.json'), build({ 'index.html': 'base', 'big.txt': big }));
    const first = JSON.parse(
      ok(['export', '--build-json', '@build.json', '--store', layersStore, '--store-mode', 'layers', '--json']).stdout,
    ) as {
      images: Array<{ digest: string; uploaded: number; size: number }>;
    };
    assert.ok(first.images[0]!.uploaded > 300_000, `first export uploads every layer (${first.images[0]!.uploaded})`);

    // Change only the last layer (a small file after the big one).
    writeFileSync(
      join(repo, 'Dockerfile'),
      `${readFileSync(join(repo, 'Dockerfile'), 'utf8').replace('CMD', 'COPY srv/index.html /srv/v2.html\nCMD')}`,
    );
    git('add', '-A');
    git('commit', '-qm', 'v2');
    writeFileSync(join(repo, 'build2.json'), ok(['build', '--images', name, '--json']).stdout);
    const second = JSON.parse(
      ok(['export', '--build-json', '@build2.json', '--store', layersStore, '--store-mode', 'layers', '--json']).stdout,
    ) as typeof first;
    const up = second.images[0]!.uploaded;
    assert.ok(up > 0 && up < 20_000, `the second export uploads about one small layer + config + index (${up} bytes)`);

    // Load v2 on a daemon that has v1 but not v2: only the new layer travels.
    writeFileSync(join(repo, 'export2.json'), JSON.stringify(second));
    ok(['manifest', '--push-json', '@export2.json', '--manifest-path', 'manifest2.json']);
    docker(['rmi', '-f', second.images[0]!.digest]);
    const loaded = JSON.parse(ok(['load', '--manifest', 'manifest2.json', '--json']).stdout) as Array<{
      layersSent: number;
      layersTotal: number;
    }>;
    assert.equal(loaded[0]!.layersSent, 1, `only the missing layer is sent (${JSON.stringify(loaded)})`);
    assert.equal(docker(['run', '--rm', second.images[0]!.digest, '/bin/busybox', 'cat', '/srv/v2.html']), 'base');
    const size = docker(['run', '--rm', second.images[0]!.digest, '/bin/busybox', 'wc', '-c', '/srv/big.txt']);
    assert.match(size, new RegExp(`^${big.length}\\b`));

    // The -latest alias of a layers-mode image is its index: loadable by name, verified against its sidecar.
    docker(['rmi', '-f', second.images[0]!.digest]);
    const alias = `${layersStore}/images/${name}-latest.index.json`;
    const byAlias = JSON.parse(ok(['load', '--source', alias, '--json']).stdout) as Array<{ layersSent: number }>;
    assert.equal(byAlias[0]!.layersSent, 1);
    assert.equal(docker(['run', '--rm', second.images[0]!.digest, '/bin/busybox', 'cat', '/srv/v2.html']), 'base');
  });

  it('layers mode: a same-size corrupted layer is refused saying its digest differs (not "Size mismatch")', async () => {
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: env.s3.bucket, Prefix: `${prefix}-layers/images/` }),
    );
    const aliasKey = listed.Contents!.map((o) => o.Key!).find((k) => k.endsWith('-latest.index.json'))!;
    const get = async (key: string) =>
      Buffer.from(
        await (await s3.send(new GetObjectCommand({ Bucket: env.s3.bucket, Key: key }))).Body!.transformToByteArray(),
      );
    const index = JSON.parse((await get(aliasKey)).toString('utf8')) as {
      imageId: string;
      layers: Array<{ key: string }>;
    };
    const top = index.layers.at(-1)!.key; // the layer only this image has: the one a load sends
    const bytes = await get(top);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: env.s3.bucket, Key: top, Body: bytes }));
    docker(['rmi', '-f', index.imageId]);
    const res = lading(['load', '--source', `${store}-layers/${aliasKey.slice(`${prefix}-layers/`.length)}`]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /its digest differs from the manifest's/);
    assert.doesNotMatch(res.stderr, /Size mismatch/i);
  });

  it('says clearly when the bucket does not exist, and leaves no object when docker save fails', () => {
    writeFileSync(join(repo, 'build.json'), build({ 'index.html': 'nobucket' }));
    const res = lading(['export', '--build-json', '@build.json', '--store', 's3://no-such-bucket-lading/x']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /bucket s3:\/\/no-such-bucket-lading does not exist/);
    const b = JSON.parse(readFileSync(join(repo, 'build.json'), 'utf8')) as {
      images: Array<{ imageId: string; refs: string[] }>;
    };
    b.images[0]!.imageId = `sha256:${'0'.repeat(64)}`;
    b.images[0]!.refs = [`${name}:does-not-exist`];
    writeFileSync(join(repo, 'bad.json'), JSON.stringify(b));
    const bad = lading(['export', '--build-json', '@bad.json', '--store', store]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not in the local engine|docker save .* failed/);
  });
});
