import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NODE24, runActionBundle, runCli } from '../helpers/bundles.ts';
import { authPassword, busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

const env = testEnv();
const work = mkdtempSync(join(tmpdir(), 'lading-extract-e2e-'));
const name = `lading-it/${unique('extract-e2e')}`;
const plainRef = `${env.registry.host}/${name}:v1`;
const authRef = `${env.authRegistry.host}/${name}:v1`;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const dockerConfig = mkdtempSync(join(tmpdir(), 'lading-extract-e2e-docker-'));

before(() => {
  // An artifact vehicle: FROM scratch + files, one of them deleted in a later layer.
  const ctx = busyboxContext(join(work, 'ctx'), {
    files: { 'tool.sh': '#!/bin/sh\necho tool\n', 'old.txt': 'old\n' },
    extra: [
      'COPY dist /dist',
      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox rm /srv/old.txt && /bin/busybox ln -s /srv/tool.sh /srv/current"]',
    ],
  });
  mkdirSync(join(ctx, 'dist'));
  writeFileSync(join(ctx, 'dist', 'app.js'), 'console.log(1)\n');
  docker(['build', '-q', '-t', plainRef, ctx]);
  docker(['tag', plainRef, authRef]);
  docker(['push', '-q', plainRef]);
  docker(['--config', dockerConfig, 'login', env.authRegistry.host, '-u', 'lading', '--password-stdin'], {
    input: authPassword('lading'),
  });
  docker(['--config', dockerConfig, 'push', '-q', authRef]);
});

after(() => {
  for (const ref of [plainRef, authRef]) {
    spawnSync('docker', ['rmi', '--no-prune', ref], { env: { ...process.env, DOCKER_HOST: env.dockerHost } });
  }
  rmSync(work, { recursive: true, force: true });
  rmSync(dockerConfig, { recursive: true, force: true });
});

describe('extract action (dist/extract/index.mjs on node 24)', () => {
  it('extracts from the auth registry, sets outputs and a summary, and a second run downloads nothing', () => {
    const cache = join(work, 'cache');
    const inputs = {
      image: authRef,
      paths: '/srv\n/dist/app.js',
      destination: join(work, 'out'),
      'cache-dir': cache,
      username: 'lading',
      password: authPassword('lading'),
    };
    const first = runActionBundle('extract', { inputs, node: NODE24 });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(readFileSync(join(work, 'out', 'dist', 'app.js'), 'utf8'), 'console.log(1)\n');
    assert.equal(readlinkSync(join(work, 'out', 'srv', 'current')), 'tool.sh');
    assert.deepEqual(first.outputs.files!.split('\n').sort(), [
      join(work, 'out', 'dist', 'app.js'),
      join(work, 'out', 'srv', 'current'),
      join(work, 'out', 'srv', 'tool.sh'),
    ]);
    const json = JSON.parse(first.outputs.json!) as { files: Array<{ path: string; sha256?: string }> };
    assert.equal(json.files.find((f) => f.path === '/srv/tool.sh')?.sha256, sha('#!/bin/sh\necho tool\n'));
    assert.match(first.outputs.digest!, /^sha256:[a-f0-9]{64}$/);
    assert.ok(Number(first.outputs['downloaded-bytes']) > 0);
    assert.match(first.summary, /lading: extract/);
    const leaks = first.stdout
      .split('\n')
      .filter((l) => l.includes(authPassword('lading')) && !l.startsWith('::add-mask::'));
    assert.deepEqual(leaks, [], 'the password is masked and never logged');
    assert.ok(first.stdout.includes(`::add-mask::${authPassword('lading')}`));

    const second = runActionBundle('extract', { inputs: { ...inputs, destination: join(work, 'out2') }, node: NODE24 });
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(second.outputs['downloaded-bytes'], '0');
    assert.equal(second.outputs.digest, first.outputs.digest);
  });

  it('fails the step with the missing path named', () => {
    const run = runActionBundle('extract', {
      inputs: { image: plainRef, paths: '/srv/old.txt', destination: join(work, 'miss') },
      node: NODE24,
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /::error::.*\/srv\/old\.txt \(it was deleted by a later layer\)/);
  });
});

describe('lading extract (dist/cli/index.mjs)', () => {
  it('prints sha256 and path of every file, from a plain registry', () => {
    const dest = join(work, 'cli');
    const r = runCli(
      ['extract', '--image', plainRef, '--paths', '/dist', '--paths', '/srv/tool.sh', '--destination', dest],
      { env: { LADING_CACHE_DIR: join(work, 'cli-cache') } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.trim().split('\n').sort(),
      [
        `${sha('#!/bin/sh\necho tool\n')}  ${dest}/srv/tool.sh`,
        `${sha('console.log(1)\n')}  ${dest}/dist/app.js`,
      ].sort(),
    );
  });

  it('exits 2 on contradictory input and 1 on a missing path', () => {
    const bad = runCli(['extract', '--image', plainRef, '--source', '/x.tar', '--paths', '/a', '--destination', work]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--source: is given together with image/);
    const traversal = runCli(['extract', '--image', plainRef, '--paths', '/srv/../etc', '--destination', work]);
    assert.equal(traversal.code, 2);
    assert.match(traversal.stderr, /contains '\.\.'/);
    const missing = runCli(
      ['extract', '--image', plainRef, '--paths', '/nope', '--destination', join(work, 'cli-miss')],
      { env: { LADING_CACHE_DIR: join(work, 'cli-cache') } },
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\/nope \(no layer has it\)/);
  });
});
