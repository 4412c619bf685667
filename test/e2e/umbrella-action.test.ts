import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseManifest } from '../../src/lib/manifest.ts';
import { REPO_ROOT } from '../helpers/bundles.ts';
import { runJsAction } from '../helpers/js-action.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';

describe('the umbrella action.yml run as one node24 JavaScript action, as a runner would', () => {
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('seed')}`;
  let ws = '';
  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'lading-seed-'));
    busyboxContext(join(ws, 'app'), { files: { 'app.txt': 'app\n' } });
    mkdirSync(join(ws, 'web'));
    writeFileSync(join(ws, 'web', 'index.html'), 'hello\n');
    writeFileSync(join(ws, 'web', 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nCOPY index.html /srv/www/index.html\n');
    mkdirSync(join(ws, 'docker'));
    // The seed's shape: two services sharing one image by ${DOCKER_TAG:-latest}, plus a second image.
    writeFileSync(
      join(ws, 'docker', 'docker-compose.yml'),
      `version: "3.7"
services:
  app:
    image: ${ns}/app:\${DOCKER_TAG:-latest}
    build: ../app
    network_mode: host
  web:
    image: ${ns}/web:\${DOCKER_TAG:-latest}
    build:
      context: ../web
      args:
        BASE: ${ns}/app
    network_mode: host
  celery:
    image: ${ns}/app:\${DOCKER_TAG:-latest}
    network_mode: host
`,
    );
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  it('tags → build → push → manifest from a compose file: a schema-valid manifest whose digests the registry serves', () => {
    const manifestPath = join(ws, 'out-manifest.json');
    const run = runJsAction('', {
      inputs: {
        'compose-files': 'docker/docker-compose.yml',
        'compose-project': 'shop',
        'manifest-path': manifestPath,
      },
      env: {
        ...githubEnv('push', 'refs/heads/main', SHA),
        GITHUB_EVENT_PATH: eventPath('push-main'),
        GITHUB_WORKSPACE: ws,
        DOCKER_HOST: env.dockerHost,
      },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const outputs = run.outputs;
    assert.equal(outputs.tags, 'main-860c190\nlatest');
    assert.equal(outputs['manifest-path'], manifestPath);
    const manifest = parseManifest(readFileSync(manifestPath, 'utf8'));
    assert.deepEqual(JSON.parse(outputs.manifest!), manifest);
    assert.deepEqual(
      manifest.images.map((i) => [i.id, i.services, i.dependsOn ?? []]),
      [
        ['app', ['app', 'celery'], []],
        ['web', ['web'], ['app']],
      ],
    );
    for (const image of manifest.images) {
      for (const tag of image.tags) {
        const served = execFileSync(
          'skopeo',
          ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${image.name}:${tag}`],
          {
            encoding: 'utf8',
          },
        ).trim();
        assert.equal(served, image.digest, `${image.name}:${tag}`);
      }
      assert.equal(image.ref, `${image.name}@${image.digest}`);
    }
    assert.equal(manifest.compose?.project, 'shop');
    assert.equal(manifest.compose?.files[0]?.path, 'docker/docker-compose.yml');
    assert.equal(manifest.compose?.env.DOCKER_TAG, 'main-860c190');
    assert.equal(manifest.compose?.env.LADING_IMAGE_WEB, manifest.images[1]!.ref);
    assert.equal(manifest.source.sha, SHA);
    assert.equal(manifest.source.run, 'https://github.com/acme/shop/actions/runs/1234567');
    assert.deepEqual(JSON.parse(outputs.digests!), {
      app: manifest.images[0]!.digest,
      web: manifest.images[1]!.digest,
    });
    // web was built on the app image of this run
    const appLayers = JSON.parse(
      docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', `${ns}/app:main-860c190`]),
    );
    const webLayers = JSON.parse(
      docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', `${ns}/web:main-860c190`]),
    );
    assert.deepEqual(webLayers.slice(0, appLayers.length), appLayers);
  });

  it('with store: the export step replaces push (S3), the manifest is published to the store, outputs map through', () => {
    const prefix = unique('umbrella');
    const manifestPath = join(ws, 'store-manifest.json');
    const run = runJsAction('', {
      inputs: {
        'compose-files': 'docker/docker-compose.yml',
        'compose-project': 'shop',
        'manifest-path': manifestPath,
        store: `s3://${env.s3.bucket}/${prefix}`,
        'manifest-store': `s3://${env.s3.bucket}/${prefix}`,
        's3-endpoint': env.s3.endpoint,
      },
      env: {
        ...githubEnv('push', 'refs/heads/main', SHA),
        GITHUB_EVENT_PATH: eventPath('push-main'),
        GITHUB_WORKSPACE: ws,
        DOCKER_HOST: env.dockerHost,
        AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
      },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const outputs = run.outputs;
    assert.doesNotMatch(run.stdout, /::group::push /, 'nothing is pushed');
    const manifest = parseManifest(readFileSync(manifestPath, 'utf8'));
    assert.deepEqual(
      manifest.images.map((i) => i.transport.kind),
      ['s3', 's3'],
    );
    for (const i of manifest.images) assert.equal(i.ref, i.digest, 'pinned by image ID');
    assert.equal(outputs['manifest-location'], `s3://${env.s3.bucket}/${prefix}/manifests/by-sha/${SHA}.json`);
    assert.deepEqual(JSON.parse(outputs.digests!), Object.fromEntries(manifest.images.map((i) => [i.id, i.digest])));
  });
});

describe('action metadata', () => {
  const files = ['action.yml', ...readdirSync(join(REPO_ROOT, 'actions')).map((d) => `actions/${d}/action.yml`)];
  for (const file of files) {
    it(`${file} is valid: documented inputs with string defaults, outputs, and a runnable entry`, () => {
      const doc = parse(readFileSync(join(REPO_ROOT, file), 'utf8'));
      assert.ok(doc.name && doc.description);
      for (const [name, input] of Object.entries<Record<string, unknown>>(doc.inputs ?? {})) {
        assert.ok(typeof input.description === 'string' && input.description.length > 0, `${name} is documented`);
        if ('default' in input) assert.equal(typeof input.default, 'string', `${name}: default is a string`);
      }
      for (const [name, output] of Object.entries<Record<string, unknown>>(doc.outputs ?? {})) {
        assert.ok(typeof output.description === 'string', `${name} is documented`);
      }
      if (doc.runs.using === 'composite') {
        for (const step of doc.runs.steps) assert.doesNotMatch(step.run ?? '', /\$\{\{/, 'no ${{ }} inside run:');
      } else {
        assert.equal(doc.runs.using, 'node24');
        assert.ok(existsSync(join(REPO_ROOT, file, '..', doc.runs.main)), `${doc.runs.main} exists`);
      }
    });
  }
});
