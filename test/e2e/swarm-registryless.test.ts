import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import { runCli } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { testEnv, unique } from '../helpers/testenv.ts';

/** target swarm with a registry-less manifest: the images are loaded on the (single) node, pinned by image ID. */
describe('target swarm: registry-less images are loaded on the node, then the stack runs them by image ID', () => {
  const env = testEnv();
  const app = webApp({ store: `s3://${env.s3.bucket}/${unique('swarm-rl')}` });
  const swarm = (args: string[]) =>
    spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: env.swarmDockerHost }, encoding: 'utf8' });
  const stack = `version: "3.8"
services:
  web:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${app.port}", "-h", "/srv"]
    networks: [hostnet]
    stop_grace_period: 1s
networks:
  hostnet:
    external: true
    name: host
`;
  let root = '';
  let manifest: Manifest;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-swarm-rl-'));
    manifest = await app.storedVersion(1);
    manifest.compose!.files = [composeFile('docker-compose.yml', stack)];
  });
  after(() => {
    swarm(['stack', 'rm', app.project]);
    for (
      let i = 0;
      i < 30 && swarm(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${app.project}`]).stdout.trim();
      i++
    ) {
      spawnSync('sleep', ['1']);
    }
    swarm(['image', 'rm', '-f', manifest.images[0]!.digest]);
    rmSync(root, { recursive: true, force: true });
  });

  it('deploys v1 from the store onto a node that never had it', async () => {
    assert.notEqual(
      swarm(['image', 'inspect', manifest.images[0]!.digest]).status,
      0,
      'the swarm node lacks the image',
    );
    const file = join(root, 'manifest.json');
    writeFileSync(file, JSON.stringify(manifest));
    const res = runCli(
      [
        'deploy',
        '--target',
        'swarm',
        '--docker-host',
        env.swarmDockerHost,
        '--manifest',
        file,
        '--root',
        root,
        '--s3-endpoint',
        env.s3.endpoint,
        '--health-timeout',
        '60',
      ],
      {
        env: {
          AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
          GITHUB_ACTIONS: undefined,
        },
      },
    );
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stderr, /web sent \(.*\) and loaded/);
    assert.equal(await app.probe(), 'v1');
    const image = swarm([
      'service',
      'inspect',
      '--format',
      '{{.Spec.TaskTemplate.ContainerSpec.Image}}',
      `${app.project}_web`,
    ]);
    assert.equal(image.stdout.trim(), manifest.images[0]!.digest, 'the service runs the loaded image by its ID');
  });
});
