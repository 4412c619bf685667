import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  downgradeReason,
  parseFacts,
  parseHistory,
  parseHosts,
  parseInventory,
  parseMaxFailures,
  planBatches,
  releaseFiles,
  releaseId,
  renderEnvFile,
  rollbackTarget,
  type HistoryEntry,
  withoutBuildSections,
} from '../../src/lib/deploy-plan.ts';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';

const D = `sha256:${'a'.repeat(64)}`;
const manifest = (o: { sha?: string; channel?: string; created?: string; compose?: string } = {}): Manifest =>
  createManifest({
    source: {
      repository: 'a/b',
      ref: 'refs/heads/main',
      sha: o.sha ?? '1'.repeat(40),
      created: o.created ?? '2026-01-01T00:00:00.000Z',
    },
    tags: ['main-1111111'],
    primary: 'main-1111111',
    ...(o.channel ? { channel: o.channel } : {}),
    images: [
      {
        id: 'app',
        services: ['app', 'worker', 'gone'],
        name: 'r/app',
        tags: ['main-1111111'],
        digest: D,
        ref: `r/app@${D}`,
        transport: { kind: 'registry', registry: 'docker.io', provider: 'generic' },
      },
    ],
    compose: {
      project: 'shop',
      files: [
        composeFile(
          'deploy/docker-compose.yml',
          o.compose ??
            'version: "3.7"\nservices:\n  app: { image: "r/app:${DOCKER_TAG}" }\n  worker: { image: r/app }\n',
        ),
      ],
      env: { DOCKER_TAG: 'main-1111111' },
    },
  });

describe('deploy plan', () => {
  it('hosts: user@host:port with defaults, duplicates refused', () => {
    assert.deepEqual(parseHosts('web1\ndeploy@web2:2222, [::1]:22', { user: 'root', port: 22 }), [
      { label: 'web1', host: 'web1', port: 22, user: 'root' },
      { label: 'deploy@web2:2222', host: 'web2', port: 2222, user: 'deploy' },
      { label: '[::1]:22', host: '::1', port: 22, user: 'root' },
    ]);
    assert.throws(() => parseHosts('a\nroot@a:22', { user: 'root', port: 22 }), /listed twice/);
    assert.throws(() => parseHosts('a b', { user: 'root', port: 22 }), /not user@host/);
    assert.throws(() => parseHosts('', { user: 'root', port: 22 }), /no host given/);
  });
  it('inventory: per-host overrides, unknown keys refused', () => {
    const hosts = parseInventory(
      'hosts:\n  - web1\n  - { host: deploy@web2, port: 2200, root: /opt/x, project: p2, probe-url: "http://x/" }\n',
      { user: 'root', port: 22 },
    );
    assert.deepEqual(hosts[1], {
      label: 'deploy@web2 (p2)',
      host: 'web2',
      port: 2200,
      user: 'deploy',
      root: '/opt/x',
      project: 'p2',
      probeUrl: 'http://x/',
    });
    assert.throws(() => parseInventory('- { host: a, rooot: /x }', { user: 'r', port: 22 }), /unknown key\(s\) rooot/);
    assert.throws(
      () => parseInventory('- { host: a, root: relative }', { user: 'r', port: 22 }),
      /root must be an absolute path/,
    );
  });
  it('release files: compose files, pins only for services the files define (same version key), 0600 .env', () => {
    const { files, composeFiles } = releaseFiles(manifest(), { project: 'shop', release: 'r1' });
    assert.deepEqual(composeFiles, ['01-docker-compose.yml', 'lading.pins.yml']);
    const pins = files.find((f) => f.name === 'lading.pins.yml')!.content as string;
    assert.match(pins, /version: "3.7"|version: '3.7'|version: 3.7/);
    assert.match(pins, /app:\n\s+image: r\/app@sha256:a{64}/);
    assert.match(pins, /worker:/);
    assert.doesNotMatch(pins, /gone/);
    const env = files.find((f) => f.name === '.env')!;
    assert.equal(env.mode, 0o600);
    assert.equal(env.content, 'COMPOSE_PROJECT_NAME=shop\nDOCKER_TAG=main-1111111\n');
  });
  it('release files: the start_interval override (engines with API >= 1.44) comes last, with the same version key', () => {
    const healthOverride = 'services:\n  app:\n    healthcheck:\n      start_interval: 1s\n';
    const { files, composeFiles } = releaseFiles(manifest(), { project: 'shop', release: 'r1', healthOverride });
    assert.deepEqual(composeFiles, ['01-docker-compose.yml', 'lading.pins.yml', 'lading.health.yml']);
    const text = files.find((f) => f.name === 'lading.health.yml')!.content as string;
    assert.match(text, /version: "3.7"|version: '3.7'|version: 3.7/);
    assert.match(text, /start_interval: 1s/);
    assert.equal(files.find((f) => f.name === '.lading-files')!.content, `${composeFiles.join('\n')}\n`);
    assert.deepEqual(releaseFiles(manifest(), { project: 'shop', release: 'r1' }).composeFiles.length, 2);
  });
  it('host facts: compose flavour, current release, releases, and the engine API version when asked', () => {
    const facts = parseFacts('compose=docker-compose\napi=1.41\ncurrent=r2\nrelease=r2\nrelease=r1\n');
    assert.deepEqual(facts, { compose: 'docker-compose', api: '1.41', current: 'r2', releases: ['r1', 'r2'] });
    assert.equal(parseFacts('compose=docker compose\napi=\n').api, undefined);
  });
  it('release files: a compose file with more than a hundred YAML aliases still gets its pins', () => {
    const aliases = Array.from({ length: 150 }, (_, i) => `  a${i}: *base\n`).join('');
    const compose = `x-base: &base\n  k: v\nx-many:\n${aliases}services:\n  app:\n    image: r/app\n`;
    const { composeFiles, files } = releaseFiles(manifest({ compose }), { project: 'shop', release: 'r1' });
    assert.deepEqual(composeFiles, ['01-docker-compose.yml', 'lading.pins.yml']);
    assert.match(files.find((f) => f.name === 'lading.pins.yml')!.content as string, /app:\n\s+image: r\/app@sha256/);
  });
  it('hosts never build: build sections are dropped from the release copy, comments kept', () => {
    const text =
      'services:\n  # the app\n  app:\n    image: r/app\n    build: { context: ../app }\n  db:\n    image: postgres\n';
    const out = withoutBuildSections(text);
    assert.doesNotMatch(out, /build/);
    assert.match(out, /# the app/);
    assert.match(out, /image: postgres/);
    assert.equal(withoutBuildSections('services: {a: {image: x}}\n'), 'services: {a: {image: x}}\n');
  });
  it('env files refuse what they cannot hold', () => {
    assert.throws(() => renderEnvFile({ A: 'x\ny' }), /line break/);
    assert.throws(() => renderEnvFile({ 'A-B': 'x' }), /not a variable name/);
  });
  it('release ids sort in time order', () => {
    assert.ok(releaseId(new Date('2026-01-02T00:00:00Z'), 'b') > releaseId(new Date('2026-01-01T23:59:59Z'), 'z'));
  });
  it('downgrades: refused only for an older build of the same channel', () => {
    const newer = manifest({ sha: '2'.repeat(40), channel: 'latest', created: '2026-02-01T00:00:00.000Z' });
    const older = manifest({ sha: '1'.repeat(40), channel: 'latest', created: '2026-01-01T00:00:00.000Z' });
    assert.match(downgradeReason(older, newer) ?? '', /older than .* on channel latest/);
    assert.equal(downgradeReason(newer, older), undefined);
    assert.equal(downgradeReason(manifest({ channel: 'stage' }), newer), undefined);
    assert.equal(downgradeReason(manifest(), newer), undefined);
  });
  it('rollback targets: previous, id, tag, sha; torn history lines skipped', () => {
    const h = (
      release: string,
      primary: string,
      sha: string,
      result: 'success' | 'failure' = 'success',
    ): HistoryEntry => ({
      time: '',
      action: 'deploy',
      result,
      release,
      sha,
      primary,
      tags: [primary],
      images: {},
    });
    const history = [
      h('r1', 'v1', 'a'.repeat(40)),
      h('r2', 'v2', 'b'.repeat(40)),
      h('r3', 'v3', 'c'.repeat(40), 'failure'),
      h('r4', 'v4', 'd'.repeat(40)),
    ];
    const disk = ['r1', 'r2', 'r3', 'r4'];
    assert.equal(rollbackTarget(history, disk, 'r4', 'previous'), 'r2');
    assert.equal(rollbackTarget(history, disk, 'r4', 'r1'), 'r1');
    assert.equal(rollbackTarget(history, disk, 'r4', 'v1'), 'r1');
    assert.equal(rollbackTarget(history, disk, 'r4', 'bbbbbbb'), 'r2');
    assert.throws(() => rollbackTarget(history, disk, 'r4', 'v3'), /no release matching 'v3'/);
    assert.throws(() => rollbackTarget(history, ['r4'], 'r4', 'previous'), /no previous release/);
    assert.equal(parseHistory('{"release":"x"}\n{"torn\n').length, 1);
  });
});

describe('rollout plan: canary, batches, error budget', () => {
  const cases: Array<[string, number, { maxParallel: number; canary: number }, Array<[number[], boolean]>]> = [
    [
      'one at a time',
      3,
      { maxParallel: 1, canary: 0 },
      [
        [[0], false],
        [[1], false],
        [[2], false],
      ],
    ],
    [
      'batches of 2',
      5,
      { maxParallel: 2, canary: 0 },
      [
        [[0, 1], false],
        [[2, 3], false],
        [[4], false],
      ],
    ],
    [
      'a canary of 1, then batches of 3',
      5,
      { maxParallel: 3, canary: 1 },
      [
        [[0], true],
        [[1, 2, 3], false],
        [[4], false],
      ],
    ],
    [
      'a canary of 3 in batches of 2',
      4,
      { maxParallel: 2, canary: 3 },
      [
        [[0, 1], true],
        [[2], true],
        [[3], false],
      ],
    ],
    ['a canary larger than the fleet', 2, { maxParallel: 5, canary: 9 }, [[[0, 1], true]]],
    ['no hosts', 0, { maxParallel: 2, canary: 1 }, []],
  ];
  for (const [what, n, opts, expected] of cases) {
    it(what, () => {
      assert.deepEqual(
        planBatches(n, opts).map((b) => [b.hosts, b.canary]),
        expected,
      );
    });
  }
  const budgets: Array<[string | undefined, number, boolean, number]> = [
    [undefined, 10, true, 0],
    [undefined, 10, false, 10],
    ['2', 10, true, 2],
    ['5%', 1000, true, 50],
    ['5%', 10, false, 0],
    ['100%', 7, true, 7],
  ];
  for (const [raw, total, failFast, expected] of budgets) {
    it(`max-failures ${raw ?? '(unset)'} of ${total} hosts, fail-fast ${failFast} → ${expected}`, () => {
      assert.equal(parseMaxFailures(raw, total, failFast), expected);
    });
  }
  it('refuses a budget that is not a count or a share', () => {
    assert.throws(() => parseMaxFailures('two', 3, true), /input 'max-failures': 'two' is not a count or a percentage/);
    assert.throws(() => parseMaxFailures('150%', 3, true), /over 100%/);
  });
});
