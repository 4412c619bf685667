import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runActionBundleAsync } from '../helpers/bundles.ts';
import { busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

/** dist/stale as a scheduled workflow runs it: outputs the ids to rebuild (the build's only input) and why. */
describe('dist/stale against the local registry', () => {
  const env = testEnv();
  const name = `${env.registry.host}/${unique('stale-action')}/web`;
  let repo = '';
  const commitDate = '2026-11-20T10:00:00Z';
  const run = () =>
    runActionBundleAsync('stale', {
      inputs: { images: `- { name: ${name}, context: web }` },
      env: { GITHUB_WORKSPACE: repo },
    });

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-stale-action-'));
    busyboxContext(join(repo, 'web'), { files: { 'index.html': 'x' } });
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: repo,
        env: { ...process.env, GIT_AUTHOR_DATE: commitDate, GIT_COMMITTER_DATE: commitDate },
      });
    git('init', '-q', '-b', 'main');
    git('-c', 'user.email=t@e', '-c', 'user.name=t', 'add', '-A');
    git('-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-qm', 'one');
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  it('an image with no timestamp tag must be built; one tagged after the last commit need not', async () => {
    const first = await run();
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(first.outputs.rebuild, 'web');
    assert.equal(first.outputs.any, 'true');
    assert.match(first.summary, /web.*yes/s);

    docker(['build', '-q', '-t', `${name}:20261121T000000Z`, join(repo, 'web')]);
    docker(['push', '-q', `${name}:20261121T000000Z`]);
    const second = await run();
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(second.outputs.rebuild, '');
    assert.equal(second.outputs.any, 'false');
    const json = JSON.parse(second.outputs.json!) as { images: Array<{ id: string; newestTag?: string }> };
    assert.equal(json.images[0]!.newestTag, '20261121T000000Z');
  });
});
