import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Manifest } from '../../src/lib/manifest.ts';
import { runActionBundleAsync } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { type GcsServer, keyFileJson, makeServiceAccount, startGcsServer } from '../helpers/gcs-server.ts';
import { removeProject, testEnv, unique } from '../helpers/testenv.ts';

/**
 * GCS transport with image-fetch: url — the runner only signs a V4 URL (service-account key, no network); the host
 * downloads the archive itself from the bucket (the in-repo GCS server), checks its sha256 and loads it.
 */
describe('dist/deploy: registry-less GCS images fetched by the host with a signed URL', () => {
  const env = testEnv();
  const sa = makeServiceAccount();
  let gcs: GcsServer;
  let app: ReturnType<typeof webApp>;
  let root = '';
  let keyFile = '';
  let manifest: Manifest;
  before(async () => {
    gcs = await startGcsServer({ buckets: ['lading-gcs-deploy'], signers: [sa] });
    app = webApp({ store: `gs://lading-gcs-deploy/${unique('rl')}`, gcsEndpoint: gcs.endpoint });
    root = mkdtempSync(join(tmpdir(), 'lading-gcs-root-'));
    keyFile = join(root, 'sa.json');
    writeFileSync(keyFile, keyFileJson(sa), { mode: 0o600 });
    manifest = await app.storedVersion(1);
  });
  after(async () => {
    await gcs.stop();
    removeProject(app.project);
    rmSync(root, { recursive: true, force: true });
  });

  it('deploys v1: the host fetches the object itself, nothing travels over SSH', async () => {
    const sentBefore = gcs.counters.bytesSent;
    const run = await runActionBundleAsync('deploy', {
      inputs: {
        manifest: app.writeManifest(manifest),
        hosts: `root@${env.ssh.host}:${env.ssh.port}`,
        'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
        'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
        root: join(root, 'hosts'),
        'health-timeout': '30',
        'health-stable': '1',
        'image-fetch': 'url',
        'gcs-endpoint': gcs.endpoint,
      },
      env: { GITHUB_RUN_ID: '5', GOOGLE_APPLICATION_CREDENTIALS: keyFile },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /web fetched by the host from the bucket \(.*signed URL\) and loaded/);
    assert.doesNotMatch(run.stdout.replace(/^::add-mask::.*$/gm, ''), /X-Goog-Signature=/i, 'the signed URL is masked');
    assert.equal(await app.probe(), 'v1');
    const t = manifest.images[0]!.transport;
    assert.equal(
      gcs.counters.bytesSent - sentBefore,
      t.kind === 'gcs' ? t.size : -1,
      'the host downloaded the archive once',
    );
  });
});
