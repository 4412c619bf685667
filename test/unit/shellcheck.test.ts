import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/bundles.ts';

describe('shell scripts pass shellcheck', () => {
  it('the host-side steps are POSIX sh (they run on any host: dash, busybox, bash)', () => {
    const res = spawnSync('shellcheck', ['-s', 'sh', join(REPO_ROOT, 'src/lib/remote/host.sh')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
  it('the day-2 steps (status, logs, exec, lock, prune) are POSIX sh too', () => {
    const res = spawnSync('shellcheck', ['-s', 'sh', join(REPO_ROOT, 'src/lib/remote/ops.sh')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
  it('the repository scripts', () => {
    const res = spawnSync('shellcheck', ['scripts/setup.sh', 'scripts/test.sh', 'scripts/testenv.sh', '.ci/run'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
});
