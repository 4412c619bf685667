import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NODE24, runActionBundle } from '../helpers/bundles.ts';
import { eventPath, githubEnv } from '../helpers/github.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const MERGE = 'ffffeeee0000111122223333444455556666aaaa';

describe('dist/tags run as a runner runs it', () => {
  it('push to main: outputs tags, refs, json, version, labels and a summary', () => {
    const run = runActionBundle('tags', {
      inputs: { images: 'localhost:5000/Acme/Web\nworker', timestamp: 'commit' },
      env: { ...githubEnv('push', 'refs/heads/main', SHA), GITHUB_EVENT_PATH: eventPath('push-main') },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.tags, 'main-860c190\nlatest\n20180923T082316Z');
    assert.equal(run.outputs.primary, 'main-860c190');
    assert.equal(run.outputs.channel, 'latest');
    assert.equal(run.outputs.version, 'main-860c190');
    assert.equal(run.outputs['short-sha'], '860c190');
    assert.deepEqual(run.outputs.refs!.split('\n'), [
      'localhost:5000/acme/web:main-860c190',
      'localhost:5000/acme/web:latest',
      'localhost:5000/acme/web:20180923T082316Z',
      'worker:main-860c190',
      'worker:latest',
      'worker:20180923T082316Z',
    ]);
    assert.match(
      run.outputs.labels!,
      /^org\.opencontainers\.image\.revision=860c1904a1ce19322e91ac35af1ab07466440c37$/m,
    );
    assert.match(run.outputs.labels!, /^org\.opencontainers\.image\.source=https:\/\/github\.com\/acme\/shop$/m);
    const json = JSON.parse(run.outputs.json!);
    assert.equal(json.context.sha, SHA);
    assert.equal(json.context.runUrl, 'https://github.com/acme/shop/actions/runs/1234567');
    assert.deepEqual(json.tags, ['main-860c190', 'latest', '20180923T082316Z']);
    assert.match(run.summary, /main-860c190/);
  });

  it('runs the same under Node 24, the runtime of runs.using: node24', () => {
    const run = runActionBundle('tags', {
      node: NODE24,
      env: { ...githubEnv('push', 'refs/heads/stage', SHA), GITHUB_EVENT_PATH: eventPath('push-stage') },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.tags, 'stage-860c190\nstage');
  });

  it("tag-rules and flavor: docker/metadata-action's rules on a tag push (match → latest, is_default_branch false)", () => {
    const run = runActionBundle('tags', {
      inputs: {
        channels: 'none',
        semver: 'false',
        'tag-rules': 'type=match,pattern=v(\\d+\\.\\d+),group=1\ntype=raw,value=edge,enable={{is_default_branch}}',
        flavor: 'suffix=-alpine',
      },
      env: { ...githubEnv('push', 'refs/tags/v1.2.3', SHA), GITHUB_EVENT_PATH: eventPath('push-tag') },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.tags, 'v1.2.3-860c190\n1.2-alpine\nlatest');
  });

  it("metadata: docker/metadata-action's json output gives the tags, refs and labels", () => {
    const run = runActionBundle('tags', {
      inputs: {
        metadata: JSON.stringify({
          tags: ['ghcr.io/acme/web:1.2.3', 'ghcr.io/acme/web:latest'],
          labels: { 'org.opencontainers.image.version': '1.2.3', 'org.opencontainers.image.title': 'web' },
        }),
      },
      env: { ...githubEnv('push', 'refs/tags/v1.2.3', SHA), GITHUB_EVENT_PATH: eventPath('push-tag') },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.tags, '1.2.3\nlatest');
    assert.equal(run.outputs.primary, '1.2.3');
    assert.equal(run.outputs.refs, 'ghcr.io/acme/web:1.2.3\nghcr.io/acme/web:latest');
    assert.match(run.outputs.labels!, /^org\.opencontainers\.image\.title=web$/m);
  });

  it('pull_request: head sha, pr-N, never latest', () => {
    const run = runActionBundle('tags', {
      env: {
        ...githubEnv('pull_request', 'refs/pull/42/merge', MERGE),
        GITHUB_EVENT_PATH: eventPath('pull_request-fork-main'),
      },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.tags, 'main-a1b2c3d\npr-42');
    assert.equal(run.outputs.channel, '');
  });

  it('a hostile branch name is only ever data', () => {
    const marker = '/tmp/lading-pwned-action';
    rmSync(marker, { force: true });
    const run = runActionBundle('tags', {
      env: {
        ...githubEnv('push', `refs/heads/$(touch ${marker});touch ${marker}`, SHA),
        GITHUB_EVENT_PATH: eventPath('push-main'),
      },
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.outputs.primary, 'touch-tmp-lading-pwned-action-touch-tmp-lading-pwned-action-860c190');
    assert.equal(existsSync(marker), false);
  });

  it('bad input fails the step with the input named, and sets no outputs', () => {
    const run = runActionBundle('tags', {
      inputs: { 'sha-length': '99', images: 'web' },
      env: { ...githubEnv('push', 'refs/heads/main', SHA), GITHUB_EVENT_PATH: eventPath('push-main') },
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /::error::input 'sha-length': 99 is out of range — use a number from 4 to 40/);
    assert.deepEqual(run.outputs, {});
  });

  it('an unreadable event payload is a clear error', () => {
    const run = runActionBundle('tags', {
      env: { ...githubEnv('push', 'refs/heads/main', SHA), GITHUB_EVENT_PATH: '/nonexistent/event.json' },
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /::error::cannot read the event payload at GITHUB_EVENT_PATH=\/nonexistent\/event.json/);
  });
});
