import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/bundles.ts';

let repo = '';
const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
const NO_CI = { GITHUB_ACTIONS: undefined, GITLAB_CI: undefined, JENKINS_URL: undefined };

describe('lading tags (the built CLI) in a real git checkout', () => {
  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-cli-git-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    git('remote', 'add', 'origin', 'https://deploy:tok3n@github.com/acme/shop.git');
    writeFileSync(join(repo, 'f'), '1');
    git('add', 'f');
    execFileSync('git', ['commit', '-qm', 'one'], {
      cwd: repo,
      env: { ...process.env, GIT_COMMITTER_DATE: '2018-09-23T08:23:16Z', GIT_AUTHOR_DATE: '2018-09-23T08:23:16Z' },
    });
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  it('prints branch-hash and latest on main', () => {
    const short = git('rev-parse', '--short=7', 'HEAD');
    const res = runCli(['tags', '--timestamp', 'commit'], { cwd: repo, env: NO_CI });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `main-${short}\nlatest\n20180923T082316Z\n`);
  });

  it('--json carries the context without the remote credentials', () => {
    const res = runCli(['tags', '--json', '--images', 'ghcr.io/acme/web'], { cwd: repo, env: NO_CI });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.context.repositoryUrl, 'https://github.com/acme/shop');
    assert.equal(out.context.repository, 'acme/shop');
    assert.ok(!res.stdout.includes('tok3n'));
    assert.equal(out.refs[0], `ghcr.io/acme/web:${out.primary}`);
  });

  it("--tag-rules and --flavor: docker/metadata-action's raw rule with enable={{is_default_branch}} and a prefix", () => {
    const short = git('rev-parse', '--short=7', 'HEAD');
    const res = runCli(
      [
        'tags',
        '--channels',
        'none',
        '--tag-rules',
        'type=raw,value=edge,enable={{is_default_branch}}',
        '--tag-rules',
        'type=raw,value=dev,enable={{is_not_default_branch}}',
        '--flavor',
        'prefix=web-',
      ],
      { cwd: repo, env: { ...NO_CI, GITHUB_EVENT_PATH: undefined } },
    );
    assert.equal(res.code, 0, res.stderr);
    // A plain git checkout has no event payload: the default branch is unknown, so is_default_branch is false.
    assert.deepEqual(res.stdout.trim().split('\n'), [`main-${short}`, 'web-dev']);
  });

  it("--metadata @file: docker/metadata-action's json output gives the tags and labels", () => {
    const file = join(repo, '..', `meta-${process.pid}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        tags: ['ghcr.io/acme/web:1.2.3', 'ghcr.io/acme/web:latest'],
        labels: { 'org.opencontainers.image.version': '1.2.3', 'org.opencontainers.image.title': 'web' },
      }),
    );
    try {
      const res = runCli(['tags', '--json', '--metadata', `@${file}`], { cwd: repo, env: NO_CI });
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      assert.deepEqual(out.tags, ['1.2.3', 'latest']);
      assert.equal(out.version, '1.2.3');
      assert.deepEqual(out.refs, ['ghcr.io/acme/web:1.2.3', 'ghcr.io/acme/web:latest']);
      const bad = runCli(['tags', '--metadata', 'ghcr.io/acme/web:$(id)'], { cwd: repo, env: NO_CI });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /metadata.*not a valid Docker tag/);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('semver from a git tag, with the highest-version rule using all tags', () => {
    git('tag', 'v2.0.0');
    git('checkout', '-q', '-b', 'hotfix');
    writeFileSync(join(repo, 'f'), '2');
    git('commit', '-qam', 'two');
    git('tag', 'v1.4.0');
    const res = runCli(['tags', '--channels', 'none'], { cwd: repo, env: NO_CI });
    assert.equal(res.code, 0, res.stderr);
    const short = git('rev-parse', '--short=7', 'HEAD');
    assert.deepEqual(res.stdout.trim().split('\n'), [`hotfix-${short}`, '1.4.0', '1.4', '1']);
  });

  it('hostile branch names are never run by a shell', () => {
    const marker = join(tmpdir(), 'lading-pwned-cli');
    rmSync(marker, { force: true });
    for (const branch of ['$(touch${IFS}' + marker + ')', 'a;touch${IFS}' + marker, '`touch${IFS}' + marker + '`']) {
      git('checkout', '-q', '-b', branch);
      const res = runCli(['tags'], { cwd: repo, env: NO_CI });
      assert.equal(res.code, 0, res.stderr);
      for (const tag of res.stdout.trim().split('\n')) assert.match(tag, /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);
    }
    assert.equal(existsSync(marker), false);
  });

  it('takes GitLab variables over git, and LADING_* env vars as flags', () => {
    const sha = 'a'.repeat(40);
    const res = runCli(['tags'], {
      cwd: repo,
      env: { ...NO_CI, GITLAB_CI: 'true', CI_COMMIT_SHA: sha, CI_COMMIT_BRANCH: 'stage', LADING_SHA_LENGTH: '8' },
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'stage-aaaaaaaa\nstage\n');
  });

  it('exit code 2 and the flag named for bad input; -h/--help for each command; --version', () => {
    const bad = runCli(['tags', '--timestamp', 'sometimes'], { cwd: repo, env: NO_CI });
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /lading tags: --timestamp: 'sometimes' is not one of the accepted values — use one of: off, commit, build/,
    );
    const fromEnv = runCli(['tags'], { cwd: repo, env: { ...NO_CI, LADING_SHA_LENGTH: '99' } });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /lading tags: LADING_SHA_LENGTH: 99 is out of range/);
    const unknown = runCli(['tags', '--nope'], { cwd: repo, env: NO_CI });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--nope/);
    const help = runCli(['tags', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--sha-length VALUE/);
    assert.match(help.stdout, /--semver, --no-semver/);
    assert.equal(runCli(['tags', '-h']).stdout, help.stdout);
    assert.match(runCli(['--version']).stdout, /^lading \d+\.\d+\.\d+\n$/);
    assert.equal(runCli(['frobnicate']).code, 2);
  });

  it('outside a git checkout with no CI variables: exit 1 with what to do', () => {
    const empty = mkdtempSync(join(tmpdir(), 'lading-nogit-'));
    const res = runCli(['tags'], { cwd: empty, env: { ...NO_CI, GIT_CEILING_DIRECTORIES: tmpdir() } });
    rmSync(empty, { recursive: true, force: true });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot tell which commit is being built — run inside a git checkout/);
  });
});
