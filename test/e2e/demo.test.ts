import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/bundles.ts';
import { docker, removeProject } from '../helpers/testenv.ts';

describe('npm run demo: the five-minute tour on the local services', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lading-demo-test-'));
  let project = '';
  after(() => {
    if (project) {
      removeProject(project);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds, pushes, deploys v1 (URL answers), deploys v2, rolls back to v1, and prints the release table', () => {
    // Run as a user would: the machine's node (scripts/demo.mjs picks Node 24 for the CLI where it is older).
    const res = spawnSync('node', [join(REPO_ROOT, 'scripts', 'demo.mjs')], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, LADING_DEMO_DIR: dir },
    });
    const port = /Serving: http:\/\/127\.0\.0\.1:(\d+)\//.exec(res.stdout)?.[1];
    if (port) project = `demo-${port}`;
    assert.equal(res.status, 0, `demo failed:\n${res.stdout}\n${res.stderr}`);
    const answers = [...res.stdout.matchAll(/index\.html → (hello from lading, v\d)/g)].map((m) => m[1]);
    assert.deepEqual(answers, ['hello from lading, v1', 'hello from lading, v2', 'hello from lading, v1']);
    assert.match(res.stdout, /^root@127\.0\.0\.1:\d+: current \d{8}T\d{6}Z-main-[0-9a-f]{7}$/m);
    assert.match(res.stdout, /rollback\s+success/);
    const served = docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`]);
    assert.ok(served, 'the app keeps running after the tour');
  });
});
