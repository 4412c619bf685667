import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runActionBundle } from '../helpers/bundles.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

const layers = (ref: string): string[] =>
  JSON.parse(docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref]));

describe('dist/build on the real dockerd', () => {
  let ws = '';
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('chain')}`;
  const runEnv = (sha: string) => ({
    ...githubEnv('push', 'refs/heads/main', sha),
    GITHUB_EVENT_PATH: eventPath('push-main'),
    GITHUB_WORKSPACE: ws,
    DOCKER_HOST: env.dockerHost,
  });
  const images = `
- name: ${ns}/app
  context: app
  build-args: { BASE: ${ns}/base }
- name: ${ns}/base
  context: base
`;

  before(() => {
    ws = mkdtempSync(join(tmpdir(), 'lading-build-ws-'));
    busyboxContext(join(ws, 'base'), { files: { 'base.txt': 'base v1\n' } });
    mkdirSync(join(ws, 'app'));
    writeFileSync(join(ws, 'app', 'app.txt'), 'app\n');
    writeFileSync(join(ws, 'app', 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nCOPY app.txt /srv/app.txt\n');
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  it('builds a chain in dependency order, downstream on the just-built upstream, with tags and OCI labels', () => {
    const sha = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const run = runActionBundle('build', { inputs: { images }, env: runEnv(sha) });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.outputs.json!);
    assert.deepEqual(
      out.images.map((i: { id: string }) => i.id),
      ['base', 'app'],
    );
    assert.deepEqual(out.images[1].dependsOn, ['base']);
    assert.equal(out.primary, 'main-1111111');
    const base = layers(`${ns}/base:main-1111111`);
    const app = layers(`${ns}/app:main-1111111`);
    assert.deepEqual(app.slice(0, base.length), base, 'app is built on base');
    assert.equal(docker(['image', 'inspect', '--format', '{{.Id}}', `${ns}/app:latest`]), out.images[1].imageId);
    const label = docker([
      'image',
      'inspect',
      '--format',
      '{{index .Config.Labels "org.opencontainers.image.revision"}}',
      `${ns}/app:main-1111111`,
    ]);
    assert.equal(label, sha);
  });

  it("metadata: docker/metadata-action's tags and labels outputs tag the image and label it at build", () => {
    const sha = '3333333aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const metadata = [`${ns}/base:meta-1.2.3`, `${ns}/base:meta-1.2`, 'org.opencontainers.image.title=from-meta'].join(
      '\n',
    );
    const run = runActionBundle('build', {
      inputs: { images: `- name: ${ns}/base\n  context: base\n`, metadata },
      env: runEnv(sha),
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const inspect = (field: string) => docker(['image', 'inspect', '--format', field, `${ns}/base:meta-1.2`]);
    assert.equal(inspect('{{index .Config.Labels "org.opencontainers.image.title"}}'), 'from-meta');
    assert.equal(inspect('{{index .Config.Labels "org.opencontainers.image.revision"}}'), sha);
    assert.equal(docker(['image', 'inspect', '--format', '{{.Id}}', `${ns}/base:meta-1.2.3`]), inspect('{{.Id}}'));
  });

  it('a changed base rebuilds the app on the new base, never on the stale one', () => {
    writeFileSync(join(ws, 'base', 'srv', 'base.txt'), 'base v2\n');
    const sha = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const run = runActionBundle('build', { inputs: { images }, env: runEnv(sha) });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const oldBase = layers(`${ns}/base:main-1111111`);
    const newBase = layers(`${ns}/base:main-2222222`);
    const app = layers(`${ns}/app:main-2222222`);
    assert.notDeepEqual(newBase, oldBase);
    assert.deepEqual(app.slice(0, newBase.length), newBase);
    const content = docker([
      'run',
      '--rm',
      '--network',
      'host',
      `${ns}/app:main-2222222`,
      '/bin/busybox',
      'cat',
      '/srv/base.txt',
    ]);
    assert.equal(content, 'base v2');
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    [
      'a cycle',
      {
        images: `- name: ${ns}/a\n  context: app\n  build-args: { B: ${ns}/b }\n- name: ${ns}/b\n  context: app\n  build-args: { A: ${ns}/a }\n`,
      },
      /::error::input 'images': the images build on each other in a cycle: (a → b → a|b → a → b)/,
    ],
    [
      'a missing Dockerfile',
      { images: `- name: ${ns}/x\n  context: app\n  dockerfile: nope/Dockerfile` },
      /::error::input 'images': 'x' has no Dockerfile at app\/nope\/Dockerfile/,
    ],
    [
      'a malformed image name',
      { images: '- name: Not A/Name' },
      /::error::input 'images \(entry 1\)': 'Not A\/Name' is not a valid image name/,
    ],
    ['nothing to build', {}, /::error::input 'images': nothing to build/],
    [
      'a missing compose file',
      { 'compose-files': 'nope.yml' },
      /::error::input 'compose-files': nope.yml does not exist/,
    ],
  ];
  for (const [name, inputs, err] of bad) {
    it(`refuses ${name} before building anything`, () => {
      const run = runActionBundle('build', { inputs, env: runEnv('3333333ccccccccccccccccccccccccccccccccc') });
      assert.equal(run.code, 1);
      assert.match(run.stdout, err);
      assert.doesNotMatch(run.stdout, /Step 1\/|built /);
    });
  }
});
