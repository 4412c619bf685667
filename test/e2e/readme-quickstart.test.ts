import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundle, REPO_ROOT } from '../helpers/bundles.ts';
import { docker, removeProject, testEnv, unique } from '../helpers/testenv.ts';

/**
 * The README's quick start, run as written: the ```sh quickstart block with only the outside world swapped for the
 * local services — the registry, the SSH host and its pinned key, a base image that exists offline, a free port,
 * and a project name of its own. `lading` is the built CLI (dist/cli/index.mjs), as `npx` would run it.
 */
function quickstartBlock(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /```sh quickstart\n([\s\S]*?)\n```/.exec(readme);
  assert.ok(m, 'README.md has a ```sh quickstart block');
  return m[1]!;
}

describe('the README quick start, run against the local services', () => {
  const env = testEnv();
  const project = unique('quickstart').replace(/[^a-z0-9-]/g, '-');
  const port = String(41000 + Math.floor(Math.random() * 9000));
  let dir = '';
  let root = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lading-quickstart-'));
    root = mkdtempSync(join(tmpdir(), 'lading-quickstart-root-'));
    mkdirSync(join(dir, 'bin'));
    const wrapper = join(dir, 'bin', 'lading');
    writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${bundle('cli')}' "$@"\n`);
    chmodSync(wrapper, 0o755);
  });

  after(() => {
    removeProject(project);
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  it('builds, pushes, writes the manifest, deploys and lists the release; the app answers', async () => {
    const block = quickstartBlock();
    for (const needed of ['busybox:1.36', '8080', '--compose-project hello', '--project hello'])
      assert.ok(block.includes(needed), `the block still uses ${needed} (update this test with the README)`);
    const script = block
      .replaceAll('busybox:1.36', env.testImage)
      .replaceAll('8080', port)
      .replaceAll('--compose-project hello', `--compose-project ${project}`)
      .replaceAll('--project hello', `--project ${project}`);
    const res = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300_000,
      env: {
        PATH: `${join(dir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: process.env.HOME ?? '/root',
        DOCKER_HOST: env.dockerHost,
        REGISTRY: `${env.registry.host}/${unique('qs')}`,
        HOST: `${env.ssh.user}@${env.ssh.host}:${env.ssh.port}`,
        SSH_KEY: env.ssh.privateKey,
        KNOWN_HOSTS: env.ssh.knownHosts,
        LADING_ROOT: root, // every flag has an env fallback: the deploy root of this test, not /srv/lading
        LADING_HEALTH_STABLE: '1',
        GIT_AUTHOR_NAME: 'Ada',
        GIT_AUTHOR_EMAIL: 'ada@example.com',
        GIT_COMMITTER_NAME: 'Ada',
        GIT_COMMITTER_EMAIL: 'ada@example.com',
      },
    });
    assert.equal(res.status, 0, `quick start failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /\tdeployed\t/, 'lading deploy reported the host deployed');
    assert.match(res.stdout, new RegExp(`current \\d{8}T\\d{6}Z-main-[0-9a-f]{7}`), 'lading releases shows it current');
    const answer = await (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
    assert.equal(answer.trim(), 'hello from lading');
    const manifest = JSON.parse(readFileSync(join(dir, 'hello', 'manifest.json'), 'utf8')) as {
      images: Array<{ ref: string }>;
    };
    assert.match(manifest.images[0]!.ref, /\/hello-web@sha256:[0-9a-f]{64}$/);
    // init: true — the app stops on SIGTERM at once, so a redeploy does not wait the 10 s grace period.
    const id = docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`]).split('\n')[0]!;
    assert.equal(docker(['inspect', '--format', '{{.HostConfig.Init}}', id]), 'true');
    const t0 = Date.now();
    docker(['stop', id]);
    assert.ok(Date.now() - t0 < 5000, `docker stop took ${Date.now() - t0} ms: the app ignores SIGTERM`);
  });
});
