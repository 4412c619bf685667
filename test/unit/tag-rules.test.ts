import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LadingError } from '../../src/lib/errors.ts';
import { TAG_RE } from '../../src/lib/image-ref.ts';
import { expand, formatDate, parseMetadata, parseTagRules, splitReference } from '../../src/lib/tag-rules.ts';
import { tagPolicyFromInputs } from '../../src/lib/tag-settings.ts';
import { computeTags } from '../../src/lib/tags.ts';
import { ghContext, githubEnv } from '../helpers/github.ts';

/**
 * docker/metadata-action's rules in lading's tag settings, over the real event payloads in test/fixtures/events.
 * "README Lnnn" cites docker/metadata-action's README.md at commit dc802804100637a589fabce1cb79ff13a1411302, where
 * the expected output of each case is documented; src/meta.ts (getVersion, setValue, generateTags) and
 * src/flavor.ts of that commit define the rules where the README is silent.
 */
const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const NOW = new Date('2020-01-10T00:30:00.000Z');

interface Case {
  name: string;
  fixture: string;
  event: string;
  ref: string;
  /** The action/CLI inputs, as a user writes them. */
  inputs: Record<string, string>;
  tags: string[];
}

const read = (inputs: Record<string, string>) => (name: string) => inputs[name];
// No channels, semver or pr of lading's own, so each case shows only what the metadata-action rules give.
const only = { channels: 'none', semver: 'false', pr: 'false' };

const cases: Case[] = [
  {
    name: 'type=raw,value=foo and the bare `bar` are tags on any event (README L679-L693)',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    inputs: { ...only, 'tag-rules': 'type=raw,value=foo\ntype=raw,baz\nbar' },
    tags: ['feature-login-form-860c190', 'foo', 'baz', 'bar'],
  },
  {
    name: 'type=raw,value=latest,enable={{is_default_branch}} on the default branch gives latest (README L777-L784)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=latest,enable={{is_default_branch}}' },
    tags: ['main-860c190', 'latest'],
  },
  {
    name: 'enable={{is_default_branch}} on another branch gives nothing (README L872-L875)',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    inputs: { ...only, 'tag-rules': 'type=raw,value=latest,enable={{is_default_branch}}' },
    tags: ['feature-login-form-860c190'],
  },
  {
    name: 'enable={{is_not_default_branch}} on another branch gives the tag (README L877-L880)',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    inputs: { ...only, 'tag-rules': 'type=raw,value=dev,enable={{is_not_default_branch}}' },
    tags: ['feature-login-form-860c190', 'dev'],
  },
  {
    name: 'enable=false turns a rule off, enable=true keeps it (README L616, L693: enable=true by default)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=off,enable=false\ntype=raw,value=on,enable=true' },
    tags: ['main-860c190', 'on'],
  },
  {
    name: 'a tag push is not the default branch: is_default_branch is false (src/meta.ts is_default_branch)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=raw,value=edge,enable={{is_default_branch}}' },
    tags: ['v1.2.3-860c190'],
  },
  {
    name: 'type=match,pattern=\\d.\\d.\\d on v1.2.3 gives 1.2.3 and latest (README L606, L760-L767)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=\\d.\\d.\\d' },
    tags: ['v1.2.3-860c190', '1.2.3', 'latest'],
  },
  {
    name: 'type=match,pattern=v(.*),group=1 on v2.0.8-beta.67 gives 2.0.8-beta.67 (README L607)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v2.0.8-beta.67',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=v(.*),group=1' },
    tags: ['v2.0.8-beta.67-860c190', '2.0.8-beta.67', 'latest'],
  },
  {
    name: 'type=match,pattern=v(\\d.\\d),group=1 on v2.0.8-beta.67 gives 2.0 (README L608)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v2.0.8-beta.67',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=v(\\d.\\d),group=1' },
    tags: ['v2.0.8-beta.67-860c190', '2.0', 'latest'],
  },
  {
    name: 'type=match,pattern=\\d+ on 20200110-RC2 gives 20200110 (README L609)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/20200110-RC2',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=\\d+' },
    tags: ['20200110-RC2-860c190', '20200110', 'latest'],
  },
  {
    name: 'type=match,pattern=p1/v(\\d.\\d.\\d),group=1 on p1/v1.2.3 gives 1.2.3 (README L610)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/p1/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=p1/v(\\d.\\d.\\d),group=1' },
    tags: ['p1-v1.2.3-860c190', '1.2.3', 'latest'],
  },
  {
    name: 'type=match is used on tag pushes only: nothing on a branch push (README L598-L600)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=v(.*),group=1' },
    tags: ['main-860c190'],
  },
  {
    name: 'type=match with value= matches the value instead, on any event (README L597)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=v(.*),group=1,value=v1.0.0' },
    tags: ['main-860c190', '1.0.0', 'latest'],
  },
  {
    name: 'a pattern that does not match gives no tag (src/meta.ts procMatch)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/release-2024',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=v(\\d+),group=1' },
    tags: ['release-2024-860c190'],
  },
  {
    name: 'type=schedule gives nightly on a schedule event (README L448-L472)',
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=schedule' },
    tags: ['main-860c190', 'nightly'],
  },
  {
    name: "type=schedule,pattern={{date 'YYYYMMDD'}} gives 20200110 (README L457, L473)",
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': "type=schedule,pattern={{date 'YYYYMMDD'}}" },
    tags: ['main-860c190', '20200110'],
  },
  {
    name: "type=schedule,pattern=nightly-{{date 'YYYYMMDD-HHmmss'}} (README L882-L891, UTC)",
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': "type=schedule,pattern=nightly-{{date 'YYYYMMDD-HHmmss'}}" },
    tags: ['main-860c190', 'nightly-20200110-003000'],
  },
  {
    name: 'type=schedule gives nothing on a push (README L450-L452)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=schedule' },
    tags: ['main-860c190'],
  },
  {
    name: 'a schedule run counts as the default branch (src/meta.ts is_default_branch)',
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=cron,enable={{is_default_branch}}' },
    tags: ['main-860c190', 'cron'],
  },
  {
    name: 'rules come in priority order: schedule 1000 before raw 200 (README L786-L800)',
    fixture: 'schedule',
    event: 'schedule',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=first-written\ntype=schedule' },
    tags: ['main-860c190', 'nightly', 'first-written'],
  },
  {
    name: 'priority= reorders; the first producing rule decides latest=auto (raw first: no latest; src/meta.ts setVersion)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=\\d.\\d.\\d\ntype=raw,value=stable,priority=900' },
    tags: ['v1.2.3-860c190', 'stable', '1.2.3'],
  },
  {
    name: 'flavor prefix=/suffix= go on every rule tag, not on latest (README L397-L400)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=\\d.\\d.\\d', flavor: 'prefix=app-\nsuffix=-alpine' },
    tags: ['v1.2.3-860c190', 'app-1.2.3-alpine', 'latest'],
  },
  {
    name: 'flavor prefix=…,onlatest=true also prefixes latest (README L397-L398)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: {
      ...only,
      'tag-rules': 'type=match,pattern=\\d.\\d.\\d',
      flavor: 'prefix=app-,onlatest=true\nsuffix=-alpine,onlatest=true',
    },
    tags: ['v1.2.3-860c190', 'app-1.2.3-alpine', 'app-latest-alpine'],
  },
  {
    name: 'a rule prefix= overrides the flavor prefix, even when empty (README L616, src/meta.ts setValue)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=a\ntype=raw,value=b,prefix=', flavor: 'prefix=x-' },
    tags: ['main-860c190', 'x-a', 'b'],
  },
  {
    name: 'flavor latest=true adds latest whatever the rules (README L396)',
    fixture: 'push-feature',
    event: 'push',
    ref: 'refs/heads/feature/login-form',
    inputs: { ...only, flavor: 'latest=true' },
    tags: ['feature-login-form-860c190', 'latest'],
  },
  {
    name: 'flavor latest=false: no latest from a match rule (README L396)',
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { ...only, 'tag-rules': 'type=match,pattern=\\d.\\d.\\d', flavor: 'latest=false' },
    tags: ['v1.2.3-860c190', '1.2.3'],
  },
  {
    name: "flavor latest=false also drops lading's own latest (channel main → latest)",
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { flavor: 'latest=false' },
    tags: ['main-860c190'],
  },
  {
    name: "rules add to lading's own tags: semver and channels stay",
    fixture: 'push-tag',
    event: 'push',
    ref: 'refs/tags/v1.2.3',
    inputs: { 'tag-rules': 'type=raw,value=release' },
    tags: ['v1.2.3-860c190', '1.2.3', '1.2', '1', 'latest', 'release'],
  },
  {
    name: 'pull_request: raw rules apply, match and schedule do not (README L598-L600, L450-L452)',
    fixture: 'pull_request',
    event: 'pull_request',
    ref: 'refs/pull/42/merge',
    inputs: { ...only, 'tag-rules': 'type=raw,value=preview\ntype=match,pattern=.*\ntype=schedule' },
    tags: ['feature-login-form-a1b2c3d', 'preview'],
  },
  {
    name: 'invalid characters in a rule value become `-` (README L753-L755)',
    fixture: 'push-main',
    event: 'push',
    ref: 'refs/heads/main',
    inputs: { ...only, 'tag-rules': 'type=raw,value=a b/c$(id)' },
    tags: ['main-860c190', 'a-b-c-id-'],
  },
];

describe('metadata-action tag rules over real event payloads', () => {
  for (const c of cases) {
    it(c.name, () => {
      const ctx = ghContext(c.fixture, githubEnv(c.event, c.ref, SHA));
      const plan = computeTags(ctx, tagPolicyFromInputs(read(c.inputs)), { now: NOW });
      assert.deepEqual(plan.tags, c.tags);
      for (const t of plan.tags) assert.match(t, TAG_RE);
    });
  }
});

describe('metadata-action rule and flavor settings are checked up front', () => {
  const bad: Array<[string, Record<string, string>, RegExp]> = [
    [
      'an unsupported rule type names the lading inputs to use',
      { 'tag-rules': 'type=semver,pattern={{version}}' },
      /type 'semver'.*not supported/,
    ],
    ['an unknown attribute', { 'tag-rules': 'type=raw,value=a,colour=red' }, /unknown attribute 'colour'/],
    ['type=match without a pattern', { 'tag-rules': 'type=match,group=1' }, /needs pattern=/],
    ['a pattern that is not a regular expression', { 'tag-rules': 'type=match,pattern=(' }, /not a regular expression/],
    ['a group that is not a number', { 'tag-rules': 'type=match,pattern=v(.*),group=x' }, /not a whole number/],
    ['an unknown flavor entry', { flavor: 'latest=auto,colour=red' }, /unknown entry 'colour'/],
    ['latest= other than auto/true/false', { flavor: 'latest=yes' }, /latest=yes/],
    ['an unclosed quote', { 'tag-rules': 'type=raw,"value=abc' }, /quote/],
  ];
  for (const [name, inputs, re] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => tagPolicyFromInputs(read(inputs)),
        (err: Error) => err instanceof LadingError && re.test(err.message),
      );
    });
  }
  it('refuses an enable= that is neither true nor false, and an unknown {{expression}}', () => {
    const ctx = ghContext('push-main', githubEnv('push', 'refs/heads/main', SHA));
    for (const rules of [
      'type=raw,value=a,enable=maybe',
      'type=raw,value={{env.HOME}}',
      "type=raw,value={{date 'YYYY' tz='Asia/Tokyo'}}",
    ]) {
      const policy = tagPolicyFromInputs(read({ 'tag-rules': rules }));
      assert.throws(() => computeTags(ctx, policy, { now: NOW }), LadingError, rules);
    }
  });
  it('quoted CSV fields may hold commas (metadata-action parses each rule as CSV)', () => {
    const [rule] = parseTagRules(['type=match,"pattern=v(\\d{1,3})",group=1']);
    assert.equal(rule!.pattern, 'v(\\d{1,3})');
  });
  it("formats moment's tokens in UTC, [brackets] literal", () => {
    assert.equal(formatDate(NOW, 'YYYY-MM-DD[T]HH:mm:ss YY M D H'), '2020-01-10T00:30:00 20 1 10 0');
  });
});

describe("docker/metadata-action's outputs as the tag input", () => {
  const ctx = ghContext('push-tag', githubEnv('push', 'refs/tags/v1.2.3', SHA));
  // README L226-L246: the tags and labels metadata-action gives for refs/tags/v1.2.3.
  const json = JSON.stringify({
    tags: ['name/app:1.2.3', 'name/app:1.2', 'name/app:sha-90dd603', 'name/app:latest'],
    labels: {
      'org.opencontainers.image.title': 'Hello-World',
      'org.opencontainers.image.version': '1.2.3',
      'org.opencontainers.image.created': '2020-01-10T00:30:00.000Z',
      'org.opencontainers.image.revision': SHA,
    },
    annotations: ['manifest:org.opencontainers.image.version=1.2.3'],
  });

  it('json output: full references map to their tag part, its labels win, its version is the version', () => {
    const plan = computeTags(ctx, tagPolicyFromInputs(read({ metadata: json })), { now: new Date() });
    assert.deepEqual(plan.tags, ['1.2.3', '1.2', 'sha-90dd603', 'latest']);
    assert.equal(plan.primary, '1.2.3');
    assert.equal(plan.version, '1.2.3');
    assert.equal(plan.labels['org.opencontainers.image.title'], 'Hello-World');
    assert.equal(plan.labels['org.opencontainers.image.created'], '2020-01-10T00:30:00.000Z');
    assert.deepEqual(plan.images, [{ name: 'name/app', refs: plan.tags.map((t) => `name/app:${t}`) }]);
  });

  it('tags and labels outputs (newline-separated, one input or concatenated) give the same tags and labels', () => {
    const text = [
      'ghcr.io/o/r:1.2.3',
      'ghcr.io/o/r:latest',
      'docker.io/o/r:1.2.3',
      'localhost:5000/o/r:1.2.3',
      '',
      'org.opencontainers.image.version=1.2.3',
      'org.opencontainers.image.source=https://github.com/o/r',
    ].join('\n');
    const plan = computeTags(ctx, tagPolicyFromInputs(read({ metadata: text })), { now: NOW });
    assert.deepEqual(plan.tags, ['1.2.3', 'latest']);
    assert.deepEqual(
      plan.images.map((i) => i.name),
      ['ghcr.io/o/r', 'docker.io/o/r', 'localhost:5000/o/r'],
    );
    assert.equal(plan.labels['org.opencontainers.image.source'], 'https://github.com/o/r');
  });

  it('the images input picks which names get references', () => {
    const plan = computeTags(ctx, tagPolicyFromInputs(read({ metadata: json, images: 'ghcr.io/acme/shop' })), {
      now: NOW,
    });
    assert.deepEqual(plan.images[0]!.refs[0], 'ghcr.io/acme/shop:1.2.3');
  });

  it('splits a reference at the tag colon, not a registry port', () => {
    assert.deepEqual(splitReference('localhost:5000/app'), { tag: 'localhost:5000/app' });
    assert.deepEqual(splitReference('localhost:5000/app:v1'), { name: 'localhost:5000/app', tag: 'v1' });
  });

  const refused: Array<[string, string, RegExp]> = [
    ['JSON that does not parse', '{"tags": [', /not JSON/],
    ['JSON without tags', '{"labels": {}}', /no "tags" array/],
    ['a digest reference', '{"tags": ["a/b@sha256:' + 'a'.repeat(64) + '"]}', /digest/],
    ['a tag with a shell metacharacter', 'ghcr.io/o/r:v1;reboot', /not a valid Docker tag/],
    ['a tag with $(…)', '{"tags": ["r:$(id)"]}', /not a valid Docker tag/],
    ['a tag starting with -', '{"tags": ["-rf"]}', /not a valid Docker tag/],
    ['no tags at all (metadata-action gave none)', '{"tags": []}', /has no tags/],
    ['a non-string label', '{"tags": ["a"], "labels": {"x": 1}}', /not a string/],
  ];
  for (const [name, text, re] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseMetadata(text),
        (err: Error) => err instanceof LadingError && re.test(err.message),
      );
    });
  }
});

describe('tag rules: properties (fast-check, seeded)', () => {
  const opts = { seed: 1616, numRuns: 400 };
  const anyText = fc.string({ unit: 'binary', maxLength: 200 });
  const refName = fc.oneof(anyText, fc.stringMatching(/^[a-zA-Z0-9/._ $`;|&-]{0,150}$/));

  it('any branch or tag name with any raw/match/schedule rule and flavor yields only valid Docker tags, or a clean input error', () => {
    fc.assert(
      fc.property(
        refName,
        fc.constantFrom('refs/heads/', 'refs/tags/'),
        fc.constantFrom('push', 'schedule', 'workflow_dispatch'),
        fc.array(
          fc.oneof(
            anyText.map((v) => `type=raw,value=${v}`),
            fc.constant('type=raw,value={{branch}}-{{tag}}-{{sha}}'),
            fc.constant('type=match,pattern=(.*),group=1'),
            anyText.map((v) => `type=match,pattern=.*,value=${v}`),
            anyText.map((v) => `type=schedule,pattern=${v}-{{date 'YYYYMMDD'}}`),
          ),
          { maxLength: 4 },
        ),
        fc.constantFrom('', 'latest=true', 'prefix=p-,onlatest=true', 'suffix=-s', 'latest=false'),
        (name, kind, event, rules, flavor) => {
          const ctx = ghContext('push-main', githubEnv(event, `${kind}${name}`, SHA));
          let plan;
          try {
            plan = computeTags(ctx, tagPolicyFromInputs(read({ 'tag-rules': rules.join('\n'), flavor })), { now: NOW });
          } catch (err) {
            assert.ok(err instanceof LadingError, String(err));
            return;
          }
          for (const t of plan.tags) assert.match(t, TAG_RE, JSON.stringify(t));
        },
      ),
      opts,
    );
  });

  it("whatever metadata-action's output holds, only valid Docker tags come out, or a clean input error", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(anyText, { maxLength: 5 }).map((tags) => JSON.stringify({ tags })),
          fc.array(anyText, { maxLength: 5 }).map((lines) => lines.join('\n')),
          anyText,
        ),
        (text) => {
          try {
            const meta = parseMetadata(text);
            for (const t of meta.tags) assert.match(t, TAG_RE, JSON.stringify(t));
          } catch (err) {
            assert.ok(err instanceof LadingError, String(err));
          }
        },
      ),
      opts,
    );
  });

  it('expressions expand to text only: no expression reaches anything but the tag', () => {
    const ctx = ghContext('push-main', githubEnv('push', 'refs/heads/$(reboot)', SHA));
    assert.equal(expand('x-{{branch}}', { ctx, now: NOW }), 'x-$(reboot)');
    const plan = computeTags(ctx, tagPolicyFromInputs(read({ 'tag-rules': 'type=raw,value={{branch}}' })), {
      now: NOW,
    });
    assert.ok(plan.tags.includes('reboot-'));
  });
});
