import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/bundles.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

/** Scheduled rebuilds: `build --only` rebuilds exactly the given images (and what is built on them), and every
 * build records its external base's digest as OCI labels for `lading stale`. */
describe('lading build --only and base-digest labels (the built CLI)', () => {
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('rebuild')}`;
  let repo = '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  const lading = (...args: string[]) => {
    const res = runCli(args, { cwd: repo, env: { DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined } });
    assert.equal(res.code, 0, `lading ${args[0]}: ${res.stderr}\n${res.stdout}`);
    return res;
  };
  const images = `- { name: ${ns}/base, context: base }\n- { name: ${ns}/app, context: app }\n- { name: ${ns}/tool, context: tool }\n`;
  let extDigest = '';

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-rebuild-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    // An external base (not built by this repo), published with a digest.
    const ext = mkdtempSync(join(tmpdir(), 'lading-ext-'));
    busyboxContext(ext, { files: { 'ext.txt': unique('ext') } });
    docker(['build', '-q', '-t', `${ns}/ext:1`, ext]);
    docker(['push', '-q', `${ns}/ext:1`]);
    extDigest = docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${ns}/ext:1`]).split('@')[1]!;
    rmSync(ext, { recursive: true, force: true });
    busyboxContext(join(repo, 'base'), { files: { 'base.txt': 'base' } });
    mkdirSync(join(repo, 'app'));
    writeFileSync(join(repo, 'app', 'Dockerfile'), `FROM ${ns}/base:latest\nCOPY app.txt /srv/app.txt\n`);
    writeFileSync(join(repo, 'app', 'app.txt'), 'app');
    mkdirSync(join(repo, 'tool'));
    writeFileSync(join(repo, 'tool', 'Dockerfile'), `FROM ${ns}/ext:1\nCOPY tool.txt /srv/tool.txt\n`);
    writeFileSync(join(repo, 'tool', 'tool.txt'), 'tool');
    git('add', '-A');
    git('commit', '-qm', 'one');
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  it('records the external base digest; --only app rebuilds app alone, on base:latest', () => {
    const all = JSON.parse(lading('build', `--images=${images}`, '--json').stdout) as {
      images: Array<{ id: string; imageId: string }>;
    };
    assert.deepEqual(
      all.images.map((i) => i.id),
      ['base', 'app', 'tool'],
    );
    const tool = all.images.find((i) => i.id === 'tool')!;
    const labels = JSON.parse(
      docker(['image', 'inspect', '--format', '{{json .Config.Labels}}', tool.imageId]),
    ) as Record<string, string>;
    assert.equal(labels['org.opencontainers.image.base.name'], `${ns}/ext:1`);
    assert.equal(labels['org.opencontainers.image.base.digest'], extDigest);

    writeFileSync(join(repo, 'app', 'app.txt'), 'app v2');
    git('commit', '-qam', 'two');
    const res = lading('build', `--images=${images}`, '--only', 'app', '--json');
    const only = JSON.parse(res.stdout) as { images: Array<{ id: string; imageId: string }> };
    assert.deepEqual(
      only.images.map((i) => i.id),
      ['app'],
    );
    assert.match(res.stderr, /builds on .*\/base:latest \(not rebuilt in this run\)/);
    assert.equal(docker(['run', '--rm', only.images[0]!.imageId, '/bin/busybox', 'cat', '/srv/app.txt']), 'app v2');

    const bad = runCli(['build', `--images=${images}`, '--only', 'nope'], {
      cwd: repo,
      env: { DOCKER_HOST: env.dockerHost },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--only: no image nope in this build/);
  });
});
