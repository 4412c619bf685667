import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '../../src/lib/manifest.ts';
import { runActionBundleAsync } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { docker, removeProject, testEnv, unique } from '../helpers/testenv.ts';

/**
 * The deploy from an S3 manifest with registry-less images, over the real sshd: the runner fetches each archive once,
 * verifies it, sends it over SSH; the host verifies it again and loads it. No registry, no cloud credentials on the host.
 */
describe('dist/deploy: registry-less (S3 manifest + S3 images) over SSH', () => {
  const env = testEnv();
  const prefix = unique('rl');
  const app = webApp({ store: `s3://${env.s3.bucket}/${prefix}` });
  const s3 = new S3Client({
    endpoint: env.s3.endpoint,
    region: env.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });
  let root = '';
  const m: Manifest[] = [];
  const location = (n: number) => `s3://${env.s3.bucket}/${prefix}/manifests/v${n}.json`;
  const runEnv = {
    GITHUB_RUN_ID: '91',
    GITHUB_RUN_ATTEMPT: '1',
    AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    AWS_REGION: env.s3.region,
  };
  const inputs = (extra: Record<string, string>) => ({
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '30',
    'health-stable': '1',
    's3-endpoint': env.s3.endpoint,
    ...extra,
  });
  const deploy = (n: number) =>
    runActionBundleAsync('deploy', { inputs: inputs({ manifest: location(n) }), env: runEnv });

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-rl-root-'));
    m.push(await app.storedVersion(1), await app.storedVersion(2), await app.storedVersion(3, { healthy: false }));
    for (const [i, mf] of m.entries()) {
      const key = location(i + 1).slice(`s3://${env.s3.bucket}/`.length);
      await s3.send(new PutObjectCommand({ Bucket: env.s3.bucket, Key: key, Body: JSON.stringify(mf) }));
    }
  });
  after(() => {
    removeProject(app.project);
    rmSync(root, { recursive: true, force: true });
  });

  it('v1 → v2 → broken v3 rolled back to v2 → manual rollback to v1 re-ships v1 from the store', async () => {
    const v1 = await deploy(1);
    assert.equal(v1.code, 0, v1.stdout + v1.stderr);
    assert.match(v1.stdout, /web sent \(.*\) and loaded/, 'the image was shipped over SSH');
    assert.equal(await app.probe(), 'v1');

    const v2 = await deploy(2);
    assert.equal(v2.code, 0, v2.stdout + v2.stderr);
    assert.equal(await app.probe(), 'v2');

    const again = await deploy(2);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /web sha256:[a-f0-9]{12} is present/, 'a present image is not sent again');

    const v3 = await deploy(3);
    assert.equal(v3.code, 1);
    assert.match(v3.stdout, /rolled-back/);
    assert.equal(await app.probe(), 'v2');

    // v1's image is gone from the host: the rollback fetches it from the store again.
    docker(['rmi', '-f', m[0]!.images[0]!.digest]);
    // This time the host downloads it itself, with a presigned URL (masked in the log), and verifies it.
    const back = await runActionBundleAsync('deploy', {
      inputs: inputs({ command: 'rollback', to: 'v1-abcdef0', project: app.project, 'image-fetch': 'url' }),
      env: runEnv,
    });
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.match(back.stdout, /web fetched by the host from the bucket \(.*signed URL\) and loaded/);
    assert.doesNotMatch(back.stdout.replace(/^::add-mask::.*$/gm, ''), /X-Amz-Signature=/, 'the signed URL is masked');
    assert.equal(await app.probe(), 'v1');
    assert.deepEqual(readdirSync(join(root, app.project, '.incoming')), [], 'no upload is left on the host');
  });
});
