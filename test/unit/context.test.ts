import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  completeContext,
  contextFromCi,
  detectProvider,
  type Env,
  type GitFacts,
  parseRef,
  webUrlFromRemote,
} from '../../src/lib/context.ts';
import { compareSemver, parseSemver } from '../../src/lib/semver.ts';
import { ghContext, githubEnv } from '../helpers/github.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const HEAD = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const MERGE = 'ffffeeee0000111122223333444455556666aaaa';

describe('build context from GitHub events', () => {
  it('push to a branch', () => {
    const ctx = ghContext('push-main', githubEnv('push', 'refs/heads/main', SHA));
    assert.deepEqual(ctx, {
      provider: 'github',
      event: 'push',
      repository: 'acme/shop',
      repositoryUrl: 'https://github.com/acme/shop',
      ref: 'refs/heads/main',
      sha: SHA,
      branch: 'main',
      commitTime: '2018-09-23T08:23:16.000Z',
      runUrl: 'https://github.com/acme/shop/actions/runs/1234567',
      runId: '1234567.1',
      actor: 'ada',
      defaultBranch: 'main',
    });
  });
  it('push of a tag', () => {
    const ctx = ghContext('push-tag', githubEnv('push', 'refs/tags/v1.2.3', SHA));
    assert.equal(ctx.tag, 'v1.2.3');
    assert.equal(ctx.branch, undefined);
  });
  it('pull_request uses the head sha and branch, not the merge commit', () => {
    const ctx = ghContext('pull_request', githubEnv('pull_request', 'refs/pull/42/merge', MERGE));
    assert.equal(ctx.sha, HEAD);
    assert.equal(ctx.branch, 'feature/login-form');
    assert.equal(ctx.pr, 42);
    assert.equal(ctx.ref, 'refs/pull/42/head');
    assert.equal(ctx.commitTime, undefined, 'the merge commit time is not the head commit time');
  });
  it('pull_request_target uses the head, not the base branch the workflow runs on', () => {
    const ctx = ghContext('pull_request_target', githubEnv('pull_request_target', 'refs/heads/main', SHA));
    assert.equal(ctx.sha, HEAD);
    assert.equal(ctx.branch, 'feature/login-form');
    assert.equal(ctx.pr, 42);
  });
  it('workflow_dispatch and schedule take ref and sha from the runner', () => {
    for (const [fixture, event] of [
      ['workflow_dispatch', 'workflow_dispatch'],
      ['schedule', 'schedule'],
    ] as const) {
      const ctx = ghContext(fixture, githubEnv(event, 'refs/heads/main', SHA));
      assert.equal(ctx.event, event);
      assert.equal(ctx.branch, 'main');
      assert.equal(ctx.sha, SHA);
    }
  });
  it('a re-run links to its attempt; GHES server URLs are used', () => {
    const ctx = ghContext(
      'push-main',
      githubEnv('push', 'refs/heads/main', SHA, {
        GITHUB_RUN_ATTEMPT: '3',
        GITHUB_SERVER_URL: 'https://ghe.example.com/',
      }),
    );
    assert.equal(ctx.runUrl, 'https://ghe.example.com/acme/shop/actions/runs/1234567/attempts/3');
    assert.equal(ctx.repositoryUrl, 'https://ghe.example.com/acme/shop');
  });
});

const FULL = SHA;
const cases: Array<{ name: string; env: Env; git?: GitFacts; expect: Record<string, unknown> }> = [
  {
    name: 'GitLab branch pipeline',
    env: {
      GITLAB_CI: 'true',
      CI_PIPELINE_SOURCE: 'push',
      CI_COMMIT_SHA: FULL,
      CI_COMMIT_BRANCH: 'stage',
      CI_COMMIT_REF_NAME: 'stage',
      CI_PROJECT_PATH: 'group/sub/app',
      CI_PROJECT_URL: 'https://gitlab.com/group/sub/app',
      CI_PIPELINE_URL: 'https://gitlab.com/group/sub/app/-/pipelines/99',
      CI_PIPELINE_ID: '99',
      CI_COMMIT_TIMESTAMP: '2024-01-02T03:04:05+00:00',
    },
    expect: {
      provider: 'gitlab',
      event: 'push',
      branch: 'stage',
      repository: 'group/sub/app',
      ref: 'refs/heads/stage',
      commitTime: '2024-01-02T03:04:05.000Z',
      runUrl: 'https://gitlab.com/group/sub/app/-/pipelines/99',
    },
  },
  {
    name: 'GitLab merge request pipeline (merged results): source branch head',
    env: {
      GITLAB_CI: 'true',
      CI_PIPELINE_SOURCE: 'merge_request_event',
      CI_COMMIT_SHA: MERGE,
      CI_MERGE_REQUEST_SOURCE_BRANCH_SHA: HEAD,
      CI_MERGE_REQUEST_IID: '7',
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feat/x',
      CI_COMMIT_REF_NAME: 'feat/x',
      CI_PROJECT_PATH: 'g/app',
    },
    expect: { event: 'pull_request', sha: HEAD, pr: 7, branch: 'feat/x' },
  },
  {
    name: 'GitLab tag pipeline',
    env: { GITLAB_CI: 'true', CI_COMMIT_SHA: FULL, CI_COMMIT_TAG: 'v2.0.0', CI_COMMIT_REF_NAME: 'v2.0.0' },
    expect: { tag: 'v2.0.0', branch: undefined, ref: 'refs/tags/v2.0.0' },
  },
  {
    name: 'GitLab schedule',
    env: { GITLAB_CI: 'true', CI_PIPELINE_SOURCE: 'schedule', CI_COMMIT_SHA: FULL, CI_COMMIT_BRANCH: 'main' },
    expect: { event: 'schedule', branch: 'main' },
  },
  {
    name: 'Bitbucket branch',
    env: {
      BITBUCKET_BUILD_NUMBER: '12',
      BITBUCKET_COMMIT: FULL,
      BITBUCKET_BRANCH: 'master',
      BITBUCKET_REPO_FULL_NAME: 'team/app',
      BITBUCKET_GIT_HTTP_ORIGIN: 'http://bitbucket.org/team/app',
    },
    expect: {
      provider: 'bitbucket',
      branch: 'master',
      repository: 'team/app',
      repositoryUrl: 'https://bitbucket.org/team/app',
      runUrl: 'https://bitbucket.org/team/app/addon/pipelines/home#!/results/12',
    },
  },
  {
    name: 'Bitbucket pull request',
    env: { BITBUCKET_BUILD_NUMBER: '13', BITBUCKET_COMMIT: FULL, BITBUCKET_BRANCH: 'feat', BITBUCKET_PR_ID: '5' },
    expect: { event: 'pull_request', pr: 5, branch: 'feat' },
  },
  {
    name: 'Jenkins multibranch pull request',
    env: {
      JENKINS_URL: 'https://ci/',
      GIT_COMMIT: FULL,
      BRANCH_NAME: 'PR-12',
      CHANGE_ID: '12',
      CHANGE_BRANCH: 'feat/y',
      GIT_URL: 'git@github.com:acme/shop.git',
      BUILD_URL: 'https://ci/job/shop/12/',
    },
    expect: {
      provider: 'jenkins',
      event: 'pull_request',
      pr: 12,
      branch: 'feat/y',
      repository: 'acme/shop',
      repositoryUrl: 'https://github.com/acme/shop',
      runUrl: 'https://ci/job/shop/12/',
    },
  },
  {
    name: 'Jenkins freestyle: GIT_BRANCH origin/main',
    env: { JENKINS_URL: 'https://ci/', GIT_COMMIT: FULL, GIT_BRANCH: 'origin/main' },
    expect: { branch: 'main' },
  },
  {
    name: 'plain git: branch, tag, time and remote from the checkout, credentials stripped',
    env: {},
    git: {
      sha: FULL,
      branch: 'main',
      tags: ['v1.0.0', 'v1.10.0', 'v1.9.0'],
      commitTime: '2024-05-06T07:08:09+02:00',
      remoteUrl: 'https://user:s3cret@github.com/acme/shop.git',
    },
    expect: {
      provider: 'git',
      branch: 'main',
      tag: 'v1.10.0',
      commitTime: '2024-05-06T05:08:09.000Z',
      repository: 'acme/shop',
      repositoryUrl: 'https://github.com/acme/shop',
    },
  },
  {
    name: 'a CI variable names the commit; git fills the repository but not a branch for another commit',
    env: { GITLAB_CI: 'true', CI_COMMIT_SHA: FULL, CI_COMMIT_BRANCH: 'main' },
    git: { sha: HEAD, branch: 'other', commitTime: '2024-05-06T07:08:09Z', remoteUrl: 'git@gitlab.com:g/app.git' },
    expect: { branch: 'main', sha: FULL, commitTime: undefined, repositoryUrl: 'https://gitlab.com/g/app' },
  },
];

describe('build context from other CI systems and git', () => {
  for (const c of cases) {
    it(c.name, () => {
      const ctx = completeContext(contextFromCi(c.env), c.git ?? {}, c.env) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(c.expect)) assert.deepEqual(ctx[k], v, k);
    });
  }
  it('refuses a context without a commit, saying what to do', () => {
    assert.throws(() => completeContext({ provider: 'git' }, {}), /cannot tell which commit/);
    assert.throws(() => completeContext({ provider: 'git', sha: 'abc' }, {}), /not a full 40-character sha/);
  });
  it('detects providers', () => {
    assert.equal(detectProvider({ GITHUB_ACTIONS: 'true' }), 'github');
    assert.equal(detectProvider({ GITLAB_CI: 'true' }), 'gitlab');
    assert.equal(detectProvider({ BITBUCKET_COMMIT: FULL }), 'bitbucket');
    assert.equal(detectProvider({ JENKINS_URL: 'x' }), 'jenkins');
    assert.equal(detectProvider({}), 'git');
  });
  it('parses refs', () => {
    assert.deepEqual(parseRef('refs/heads/a/b'), { branch: 'a/b' });
    assert.deepEqual(parseRef('refs/tags/v1'), { tag: 'v1' });
    assert.deepEqual(parseRef('refs/pull/3/merge'), { pr: 3 });
    assert.deepEqual(parseRef('weird'), {});
  });
  it('turns remotes into web URLs without credentials', () => {
    for (const [remote, url] of [
      ['git@github.com:acme/shop.git', 'https://github.com/acme/shop'],
      ['ssh://git@gitlab.example.com:2222/g/sub/app.git', 'https://gitlab.example.com/g/sub/app'],
      ['https://x-access-token:ghs_abc@github.com/acme/shop', 'https://github.com/acme/shop'],
      ['http://internal/git/app.git/', 'http://internal/git/app'],
      ['/local/path/repo', ''],
      ['file:///tmp/repo', ''],
    ]) {
      assert.equal(webUrlFromRemote(remote), url, remote);
    }
  });
});

describe('semver', () => {
  it('orders versions, releases above their prereleases', () => {
    const order = [
      '0.9.0',
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.2.0',
      '1.10.0',
    ];
    const parsed = order.map((v) => parseSemver(v)!);
    const sorted = [...parsed].sort(compareSemver).map((v) => v.version);
    assert.deepEqual(sorted, order);
  });
  it('rejects non-versions', () => {
    for (const v of ['1.2', 'v1', '01.2.3', 'release-1.2.3', '1.2.3-']) assert.equal(parseSemver(v), undefined, v);
  });
});
