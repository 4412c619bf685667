import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BuildContext } from '../../src/lib/context.ts';
import { sanitizeRefPart, TAG_RE } from '../../src/lib/image-ref.ts';
import {
  channelFor,
  computeTags,
  DEFAULT_POLICY,
  globToRegExp,
  type TagPolicy,
  timestampTag,
} from '../../src/lib/tags.ts';
import { tagPolicyFromInputs } from '../../src/lib/tag-settings.ts';
import { ghContext, githubEnv } from '../helpers/github.ts';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const MERGE = 'ffffeeee0000111122223333444455556666aaaa';
const NOW = new Date('2026-11-24T01:02:03.456Z');

interface Case {
  name: string;
  fixture: string;
  event: string;
  ref: string;
  sha?: string;
  policy?: Partial<TagPolicy>;
  knownTags?: string[];
  tags: string[];
  primary?: string;
  version?: string;
}

// Real event payloads (test/fixtures/events) with the env a runner sets for them.
const cases: Case[] = [
  {
    name: 'push to main: branch-hash + latest',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    tags: ['main-860c190', 'latest'],
  },
  {
    name: 'push to master: latest',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/master',
    tags: ['master-860c190', 'latest'],
  },
  {
    name: 'push to stage: stage channel',
    fixture: 'push-stage',
    event: 'push',
    ref: 'refs/heads/stage',
    tags: ['stage-860c190', 'stage'],
  },
  {
    name: 'push to a feature branch: no channel',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    tags: ['feature-login-form-860c190'],
  },
  {
    name: 'pull_request: head sha and head branch, not the merge commit; pr-N; no channel',
    fixture: 'pull_request',
    event: 'pull_request',
    ref: 'refs/pull/42/merge',
    sha: MERGE,
    tags: ['feature-login-form-a1b2c3d', 'pr-42'],
  },
  {
    name: 'pull_request_target: head sha and branch, not the base branch',
    fixture: 'pull_request_target',
    event: 'pull_request_target',
    ref: 'refs/heads/main',
    sha: SHA,
    tags: ['feature-login-form-a1b2c3d', 'pr-42'],
  },
  {
    name: "a fork's PR from its own main never gets latest",
    fixture: 'pull_request-fork-main',
    event: 'pull_request',
    ref: 'refs/pull/42/merge',
    sha: MERGE,
    tags: ['main-a1b2c3d', 'pr-42'],
  },
  {
    name: 'pr tags can be turned off',
    fixture: 'pull_request',
    event: 'pull_request',
    ref: 'refs/pull/42/merge',
    sha: MERGE,
    policy: { pr: false },
    tags: ['feature-login-form-a1b2c3d'],
  },
  {
    name: 'semver tag: version, minor, major, latest when highest',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    knownTags: ['v1.0.0', 'v1.2.2', 'v1.2.3', 'not-a-version'],
    tags: ['v1.2.3-860c190', '1.2.3', '1.2', '1', 'latest'],
    version: '1.2.3',
  },
  {
    name: 'semver tag below a newer major: no latest, still 1 and 1.2',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    knownTags: ['v2.0.0'],
    tags: ['v1.2.3-860c190', '1.2.3', '1.2', '1'],
  },
  {
    name: 'semver backport below a newer minor: 1.2 moves, 1 does not',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    knownTags: ['v1.3.0'],
    tags: ['v1.2.3-860c190', '1.2.3', '1.2'],
  },
  {
    name: 'semver latest always',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    knownTags: ['v9.0.0'],
    policy: { semverLatest: 'always' },
    tags: ['v1.2.3-860c190', '1.2.3', '1.2', '1', 'latest'],
  },
  {
    name: 'semver latest never',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    policy: { semverLatest: 'never' },
    tags: ['v1.2.3-860c190', '1.2.3', '1.2', '1'],
  },
  {
    name: 'prerelease: only the full version',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v2.0.0-rc.1',
    tags: ['v2.0.0-rc.1-860c190', '2.0.0-rc.1'],
    version: '2.0.0-rc.1',
  },
  {
    name: '0.x: no floating major',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v0.4.1',
    tags: ['v0.4.1-860c190', '0.4.1', '0.4', 'latest'],
  },
  {
    name: 'build metadata is dropped from tags',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/1.0.0+build.7',
    tags: ['1.0.0-build.7-860c190', '1.0.0', '1.0', '1', 'latest'],
  },
  {
    name: 'non-semver tag: only the ref tag',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/release-2024',
    tags: ['release-2024-860c190'],
  },
  {
    name: 'semver off',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    policy: { semver: false },
    tags: ['v1.2.3-860c190'],
  },
  {
    name: 'workflow_dispatch on main',
    fixture: 'workflow_dispatch',
    event: 'workflow_dispatch',
    ref: 'refs/heads/main',
    tags: ['main-860c190', 'latest'],
  },
  {
    name: 'schedule on the default branch',
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    tags: ['main-860c190', 'latest'],
  },
  {
    name: 'workflow_call reports the caller event (push)',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    tags: ['feature-login-form-860c190'],
  },
  {
    name: 'timestamp from the commit time (UTC)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { timestamp: 'commit' },
    tags: ['main-860c190', 'latest', '20180923T082316Z'],
  },
  {
    name: 'timestamp from the build time',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { timestamp: 'build' },
    tags: ['main-860c190', 'latest', '20261124T010203Z'],
  },
  {
    name: 'full sha',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { fullSha: true },
    tags: ['main-860c190', 'latest', SHA],
  },
  {
    name: 'sha length 12',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { shaLength: 12 },
    tags: ['main-860c1904a1ce', 'latest'],
  },
  {
    name: 'prefix and suffix on every tag',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { prefix: 'web-', suffix: '-arm64' },
    tags: ['web-main-860c190-arm64', 'web-latest-arm64'],
  },
  {
    name: 'custom channel map with globs, first match wins',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/release/2.1',
    policy: {
      channels: [
        { pattern: 'release/*', channel: 'rc' },
        { pattern: '**', channel: 'edge' },
      ],
    },
    tags: ['release-2.1-860c190', 'rc'],
  },
  {
    name: 'no channels',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    policy: { channels: [] },
    tags: ['main-860c190'],
  },
  // Hostile and awkward branch names: sanitized into valid tags, never interpreted.
  {
    name: 'command substitution in a branch name',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/$(touch /tmp/x)',
    tags: ['touch-tmp-x-860c190'],
  },
  {
    name: 'backticks and semicolons',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/a;b`id`',
    tags: ['a-b-id-860c190'],
  },
  { name: 'a;b', fixture: 'push-main', event: 'push', ref: 'refs/heads/a;b', tags: ['a-b-860c190'] },
  {
    name: 'unicode',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/fix/ünïcödé-名前',
    tags: ['fix-n-c-d-860c190'],
  },
  { name: 'only unicode', fixture: 'push-main', event: 'push', ref: 'refs/heads/日本語', tags: ['branch-860c190'] },
  { name: 'feature/x', fixture: 'push-main', event: 'push', ref: 'refs/heads/feature/x', tags: ['feature-x-860c190'] },
  {
    name: 'feature-x sanitizes the same as feature/x (the hash keeps commits apart)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/feature-x',
    tags: ['feature-x-860c190'],
  },
  {
    name: 'leading dots and dashes are stripped',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/..-.hidden',
    tags: ['hidden-860c190'],
  },
  {
    name: 'underscores and dots are kept',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/Fix_v1.2',
    tags: ['Fix_v1.2-860c190'],
  },
  {
    name: '300 characters: cut to 128 with the hash intact',
    fixture: 'push-main',
    event: 'push',
    ref: `refs/heads/${'a'.repeat(300)}`,
    tags: [`${'a'.repeat(120)}-860c190`],
  },
  {
    name: 'long name with prefix and suffix still fits 128',
    fixture: 'push-main',
    event: 'push',
    ref: `refs/heads/${'b'.repeat(300)}`,
    policy: { prefix: 'p-', suffix: '-s', channels: [] },
    tags: [`p-${'b'.repeat(116)}-860c190-s`],
  },
  {
    name: 'cut point on a dash does not leave a double dash',
    fixture: 'push-main',
    event: 'push',
    ref: `refs/heads/${'c'.repeat(119)}/x`,
    tags: [`${'c'.repeat(119)}-860c190`],
  },
];

describe('tag policy over real event payloads', () => {
  for (const c of cases) {
    it(c.name, () => {
      const ctx = ghContext(c.fixture, githubEnv(c.event, c.ref, c.sha ?? SHA));
      const plan = computeTags(ctx, { ...DEFAULT_POLICY, ...c.policy }, { now: NOW, knownTags: c.knownTags });
      assert.deepEqual(plan.tags, c.tags);
      assert.equal(plan.primary, c.primary ?? c.tags[0]);
      if (c.version) assert.equal(plan.version, c.version);
      for (const t of plan.tags) {
        assert.match(t, TAG_RE, `'${t}' is a valid Docker tag`);
        assert.ok(t.length <= 128);
      }
    });
  }
});

describe('full image references and labels', () => {
  const ctx = ghContext('push-main', githubEnv('push', 'refs/heads/main', SHA));
  it('gives every image every tag, lowercasing the repository path', () => {
    const plan = computeTags(
      ctx,
      { ...DEFAULT_POLICY, images: ['ghcr.io/Acme/Shop', 'localhost:5000/web', 'worker'] },
      { now: NOW },
    );
    assert.deepEqual(plan.images, [
      { name: 'ghcr.io/acme/shop', refs: ['ghcr.io/acme/shop:main-860c190', 'ghcr.io/acme/shop:latest'] },
      { name: 'localhost:5000/web', refs: ['localhost:5000/web:main-860c190', 'localhost:5000/web:latest'] },
      { name: 'worker', refs: ['worker:main-860c190', 'worker:latest'] },
    ]);
  });
  it('sets the OCI labels', () => {
    const plan = computeTags(ctx, DEFAULT_POLICY, { now: NOW });
    assert.deepEqual(plan.labels, {
      'org.opencontainers.image.revision': SHA,
      'org.opencontainers.image.created': '2026-11-24T01:02:03.456Z',
      'org.opencontainers.image.version': 'main-860c190',
      'org.opencontainers.image.source': 'https://github.com/acme/shop',
    });
  });
  const bad: Array<[string, RegExp]> = [
    ['app:1.0', /images \(entry 1\).*contains a tag/],
    ['app@sha256:' + 'a'.repeat(64), /contains a digest/],
    ['my app', /not a valid image name/],
    ['registry.example.com//app', /empty path component/],
    ['-app', /not a valid image name/],
    ['bad_host_.example.com:5000/app', /not a valid registry host/],
  ];
  for (const [name, err] of bad) {
    it(`refuses the image name '${name}', naming the input`, () => {
      assert.throws(() => computeTags(ctx, { ...DEFAULT_POLICY, images: [name] }, { now: NOW }), err);
    });
  }
  it('refuses an image listed twice', () => {
    assert.throws(() => computeTags(ctx, { ...DEFAULT_POLICY, images: ['a/b', 'A/B'] }, { now: NOW }), /listed twice/);
  });
});

describe('tag policy edge rules', () => {
  const ctx: BuildContext = { provider: 'git', event: 'push', repository: '', repositoryUrl: '', ref: '', sha: SHA };
  it('a detached HEAD gets a primary tag and a warning', () => {
    const plan = computeTags(ctx, DEFAULT_POLICY, { now: NOW });
    assert.deepEqual(plan.tags, ['detached-860c190']);
    assert.equal(plan.warnings.length, 1);
  });
  it('timestamp from commit falls back to build time with a warning when the commit time is unknown', () => {
    const plan = computeTags({ ...ctx, branch: 'x' }, { ...DEFAULT_POLICY, timestamp: 'commit' }, { now: NOW });
    assert.deepEqual(plan.tags, ['x-860c190', '20261124T010203Z']);
    assert.match(plan.warnings.join(), /build time/);
  });
  it('sanitizes', () => {
    for (const [input, out] of [
      ['a b', 'a-b'],
      ['a//b', 'a-b'],
      ['--x', 'x'],
      ['.x', 'x'],
      ['a\nb', 'a-b'],
      ['x\u0000y', 'x-y'],
    ]) {
      assert.equal(sanitizeRefPart(input!), out);
    }
  });
  it('globs: * stays in one segment, ** crosses, ? is one character', () => {
    assert.ok(globToRegExp('release/*').test('release/1.0'));
    assert.ok(!globToRegExp('release/*').test('release/a/b'));
    assert.ok(globToRegExp('release/**').test('release/a/b'));
    assert.ok(globToRegExp('v?').test('v1'));
    assert.ok(!globToRegExp('main').test('main2'));
    assert.ok(globToRegExp('a.b').test('a.b') && !globToRegExp('a.b').test('axb'));
    assert.equal(channelFor('stage', DEFAULT_POLICY.channels), 'stage');
  });
  it('timestamps sort as text in time order', () => {
    assert.equal(timestampTag(new Date('2018-09-23T08:23:16Z')), '20180923T082316Z');
    const a = timestampTag(new Date('2019-12-31T23:59:59Z'));
    const b = timestampTag(new Date('2020-01-01T00:00:00Z'));
    assert.ok(a < b);
  });
  it('any branch name yields valid tags (random strings)', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const alphabet = 'aZ09._-/ $();`\'"\\\n\t!@#%^&*ü名🙂';
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rand() * 200);
      let branch = '';
      for (let j = 0; j < len; j++) branch += alphabet[Math.floor(rand() * alphabet.length)];
      const plan = computeTags({ ...ctx, branch }, { ...DEFAULT_POLICY, prefix: i % 2 ? 'x' : '' }, { now: NOW });
      for (const t of plan.tags) assert.match(t, TAG_RE, JSON.stringify(branch));
      assert.ok(plan.primary.endsWith('-860c190'));
    }
  });
});

describe('tag inputs', () => {
  const read = (inputs: Record<string, string>) => (name: string) => inputs[name];
  it('parses every input', () => {
    const p = tagPolicyFromInputs(
      read({
        images: 'a/b\nc/d, e',
        'sha-length': '9',
        channels: 'main=latest\nrelease/*: rc',
        timestamp: 'commit',
        semver: 'false',
        'semver-latest': 'never',
        pr: 'false',
        'full-sha': 'true',
        prefix: 'p',
        suffix: '-s',
      }),
    );
    assert.deepEqual(p, {
      images: ['a/b', 'c/d', 'e'],
      shaLength: 9,
      channels: [
        { pattern: 'main', channel: 'latest' },
        { pattern: 'release/*', channel: 'rc' },
      ],
      timestamp: 'commit',
      semver: false,
      semverLatest: 'never',
      pr: false,
      fullSha: true,
      prefix: 'p',
      suffix: '-s',
    });
  });
  it('defaults when nothing is given', () => {
    assert.deepEqual(tagPolicyFromInputs(read({})), DEFAULT_POLICY);
  });
  it("'none' turns channels off", () => {
    assert.deepEqual(tagPolicyFromInputs(read({ channels: 'none' })).channels, []);
  });
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ 'sha-length': '3' }, /input 'sha-length': 3 is out of range/],
    [{ 'sha-length': 'seven' }, /input 'sha-length'.*not a whole number/],
    [{ timestamp: 'yes' }, /input 'timestamp': 'yes' is not one of the accepted values/],
    [{ semver: 'maybe' }, /input 'semver'.*not a boolean/],
    [{ channels: 'main' }, /input 'channels'.*not a key=value pair/],
    [{ channels: 'main=la test' }, /input 'channels'.*not a valid Docker tag/],
    [{ channels: 'main=' }, /input 'channels'.*empty channel/],
    [{ prefix: '-x' }, /input 'prefix'/],
    [{ suffix: 'a b' }, /input 'suffix'/],
    [{ prefix: 'p'.repeat(100), suffix: 's'.repeat(30) }, /no room/],
  ];
  for (const [inputs, err] of bad) {
    it(`refuses ${JSON.stringify(inputs).slice(0, 60)}`, () =>
      assert.throws(() => tagPolicyFromInputs(read(inputs)), err));
  }
});
