import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dockerfileBases,
  type ImageSpec,
  parseImageList,
  planBuilds,
  selectBuilds,
  specsFromCompose,
  stripTagAndDigest,
} from '../../src/lib/build-plan.ts';
import { interpolate } from '../../src/lib/compose-interpolate.ts';
import { joinPath, servicesFromModel } from '../../src/lib/compose.ts';
import { resolveCompose } from '../../src/lib/compose-model.ts';

/** Services of compose files held in memory under /w (the workspace). */
function readComposeServices(files: Array<{ path: string; text: string }>, env: Record<string, string>) {
  const byPath = Object.fromEntries(files.map((f) => [`/w/${f.path}`, f.text]));
  const r = resolveCompose({ files: Object.keys(byPath), env, read: (p) => byPath[p] });
  return { services: servicesFromModel(r.model, '/w'), missing: r.missing };
}

const spec = (id: string, name: string, extra: Partial<ImageSpec> = {}): ImageSpec => ({
  id,
  name,
  context: id,
  buildArgs: {},
  platforms: [],
  services: [],
  ...extra,
});

describe('the images list input', () => {
  it('takes plain names (context .) and maps', () => {
    const specs = parseImageList(`
- ghcr.io/Acme/Base
- name: ghcr.io/acme/app
  context: app
  dockerfile: docker/Dockerfile.prod
  target: prod
  build-args: { BASE: ghcr.io/acme/base, N: 3 }
  platforms: linux/amd64,linux/arm64
`);
    assert.deepEqual(specs, [
      { id: 'base', name: 'ghcr.io/acme/base', context: '.', buildArgs: {}, platforms: [], services: [] },
      {
        id: 'app',
        name: 'ghcr.io/acme/app',
        context: 'app',
        dockerfile: 'docker/Dockerfile.prod',
        target: 'prod',
        buildArgs: { BASE: 'ghcr.io/acme/base', N: '3' },
        platforms: ['linux/amd64', 'linux/arm64'],
        services: [],
      },
    ]);
  });
  it('takes one name per line', () => {
    assert.deepEqual(
      parseImageList('a/web\nb/worker').map((s) => s.id),
      ['web', 'worker'],
    );
  });
  const bad: Array<[string, RegExp]> = [
    ['- name: app:1.0', /contains a tag/],
    ['- context: x', /entry 1 has no name/],
    ['- name: a/x\n  contxt: y', /unknown key\(s\) contxt/],
    ['- a/web\n- b/web', /two images have the id 'web'.*|explicit id/],
    ['- name: a/web\n  id: Web', /id 'Web' must be lowercase/],
    ['{ a: 1 }', /must be a list/],
    ['- [unclosed', /not valid YAML|must be/],
  ];
  for (const [raw, err] of bad)
    it(`refuses ${JSON.stringify(raw)}`, () => assert.throws(() => parseImageList(raw), err));
});

describe('compose files', () => {
  it('interpolates like compose', () => {
    const env = { A: 'x', E: '' };
    assert.equal(interpolate('${A} ${A:-d} ${E:-d} ${E-d} ${U-d} ${U:-${A}} $A $$A ${U}', env), 'x x d  d x x $A ');
    assert.throws(() => interpolate('${U:?must be set}', env), /U is required: must be set/);
  });
  it('reads the seed shape: two services sharing one image plus a second image', () => {
    const text = `
version: "3.7"
services:
  app:
    image: 127.0.0.1:5000/bsp/app:\${DOCKER_TAG:-latest}
    build: { context: ../app, args: [ "MODE=prod" ] }
  web:
    image: 127.0.0.1:5000/bsp/web:\${DOCKER_TAG:-latest}
    build: ../web
  celery:
    image: 127.0.0.1:5000/bsp/app:\${DOCKER_TAG:-latest}
  redis:
    image: redis:7
`;
    const { services, missing } = readComposeServices([{ path: 'docker/docker-compose.yml', text }], {});
    assert.deepEqual(missing, []);
    const specs = specsFromCompose(services);
    assert.deepEqual(
      specs.map((s) => [s.id, s.name, s.context, s.services, s.buildArgs]),
      [
        ['app', '127.0.0.1:5000/bsp/app', 'app', ['app', 'celery'], { MODE: 'prod' }],
        ['web', '127.0.0.1:5000/bsp/web', 'web', ['web'], {}],
      ],
    );
  });
  it('merges override files per key, contexts relative to the project directory (the first file)', () => {
    const base = 'services:\n  app:\n    image: r/app\n    build: { context: ., target: dev }\n';
    const prod = 'services:\n  app:\n    build: { target: prod, args: { X: "1" } }\n';
    const { services } = readComposeServices(
      [
        { path: 'deploy/docker-compose.yml', text: base },
        { path: 'deploy/prod/docker-compose.prod.yml', text: prod },
      ],
      {},
    );
    assert.deepEqual(services[0]!.build, {
      context: 'deploy',
      target: 'prod',
      args: { X: '1' },
      platforms: [],
      labels: {},
      secrets: [],
      additionalContexts: {},
    });
  });
  it('refuses a built service without image:, naming it and what to add', () => {
    const { services } = readComposeServices([{ path: 'c.yml', text: 'services:\n  app:\n    build: .\n' }], {});
    assert.throws(() => specsFromCompose(services), /service 'app' has build: but no image:/);
  });
  it('refuses two services building one image differently', () => {
    const text = 'services:\n  a:\n    image: r/x\n    build: a\n  b:\n    image: r/x\n    build: b\n';
    assert.throws(
      () => specsFromCompose(readComposeServices([{ path: 'c.yml', text }], {}).services),
      /build the image 'r\/x' differently/,
    );
  });
  it('joins paths', () => {
    assert.equal(joinPath('docker', '../app'), 'app');
    assert.equal(joinPath('.', '.'), '.');
    assert.equal(joinPath('/w/docker', '..'), '/w');
    assert.equal(joinPath('x', '/abs'), '/abs');
  });
});

describe('image chains', () => {
  it('finds bases in FROM lines with ARG defaults and build args, ignoring stages and scratch', () => {
    const df =
      'ARG BASE=r/base:latest\nARG V\nFROM ${BASE} AS build\nFROM --platform=linux/amd64 r/other:${V}\nFROM build\nFROM scratch\n';
    assert.deepEqual(dockerfileBases(df, { V: '2' }), ['r/base:latest', 'r/other:2']);
  });
  it('orders builds upstream first and points build args at the just-built upstream', () => {
    const plan = planBuilds(
      [
        spec('app', 'r/app', { buildArgs: { BASE: 'r/base:latest', OTHER: 'x' } }),
        spec('base', 'r/base'),
        spec('tool', 'r/tool'),
      ],
      {},
      'main-1a2b3c4',
    );
    assert.deepEqual(
      plan.map((p) => p.id),
      ['base', 'app', 'tool'],
    );
    assert.deepEqual(plan[1]!.resolvedArgs, { BASE: 'r/base:main-1a2b3c4', OTHER: 'x' });
    assert.deepEqual(plan[1]!.dependsOn, ['base']);
  });
  it('links FROM lines naming an image of the run, aliasing the tag they use', () => {
    const plan = planBuilds(
      [spec('prod', 'r/prod'), spec('dev', 'r/dev'), spec('py', 'r/py')],
      {
        prod: 'FROM r/dev:stage\n',
        dev: 'FROM r/py\n',
        py: 'FROM scratch\n',
      },
      't1',
    );
    assert.deepEqual(
      plan.map((p) => p.id),
      ['py', 'dev', 'prod'],
    );
    assert.deepEqual(plan[1]!.upstreamAliases, [{ id: 'py', ref: 'r/py:latest' }]);
    assert.deepEqual(plan[2]!.upstreamAliases, [{ id: 'dev', ref: 'r/dev:stage' }]);
  });
  it('chains an upstream named through a variable: compose image, build arg and FROM ${VAR} resolve to the fresh upstream', () => {
    const text = `
services:
  base:
    image: \${REGISTRY}/base:\${DOCKER_TAG:-latest}
    build: ./base
  app:
    image: \${REGISTRY}/app:\${DOCKER_TAG:-latest}
    build: { context: ./app, args: { REGISTRY: "\${REGISTRY}" } }
  worker:
    image: \${REGISTRY}/worker:\${DOCKER_TAG:-latest}
    build: { context: ./worker, args: { BASE_IMAGE: "\${REGISTRY}/base:\${DOCKER_TAG:-latest}" } }
`;
    const env = { REGISTRY: 'reg.example:5000/team' };
    const { services, missing } = readComposeServices([{ path: 'docker-compose.yml', text }], env);
    assert.deepEqual(missing, []);
    const specs = specsFromCompose(services);
    assert.deepEqual(
      specs.map((s) => [s.id, s.name]),
      [
        ['base', 'reg.example:5000/team/base'],
        ['app', 'reg.example:5000/team/app'],
        ['worker', 'reg.example:5000/team/worker'],
      ],
    );
    // listed downstream-first, the plan still builds the upstream first
    const plan = planBuilds(
      [specs[1]!, specs[2]!, specs[0]!],
      {
        app: 'ARG REGISTRY\nFROM ${REGISTRY}/base\n',
        worker: 'ARG BASE_IMAGE=busybox\nFROM ${BASE_IMAGE}\n',
        base: 'FROM scratch\n',
      },
      'main-1a2b3c4',
    );
    assert.equal(plan[0]!.id, 'base');
    const app = plan.find((p) => p.id === 'app')!;
    const worker = plan.find((p) => p.id === 'worker')!;
    // FROM ${REGISTRY}/base: the fresh upstream is tagged as the ref the FROM line names
    assert.deepEqual(app.dependsOn, ['base']);
    assert.deepEqual(app.upstreamAliases, [{ id: 'base', ref: 'reg.example:5000/team/base:latest' }]);
    // a build arg naming the upstream points at this run's tag of it
    assert.deepEqual(worker.dependsOn, ['base']);
    assert.deepEqual(worker.resolvedArgs, { BASE_IMAGE: 'reg.example:5000/team/base:main-1a2b3c4' });
  });
  it('leaves bases pinned by digest alone', () => {
    const plan = planBuilds([spec('a', 'r/a'), spec('b', 'r/b')], { a: `FROM r/b@sha256:${'1'.repeat(64)}\n` }, 't');
    assert.deepEqual(plan[0]!.dependsOn, []);
  });
  it('refuses a cycle, naming it', () => {
    assert.throws(
      () => planBuilds([spec('a', 'r/a', { buildArgs: { B: 'r/b' } }), spec('b', 'r/b')], { b: 'FROM r/a\n' }, 't'),
      /cycle: (a → b → a|b → a → b)/,
    );
  });
  it('strips tags and digests, keeping registry ports', () => {
    assert.deepEqual(stripTagAndDigest('h:5000/a/b:t'), { name: 'h:5000/a/b', tag: 't', digest: undefined });
    assert.deepEqual(stripTagAndDigest('h:5000/a/b'), { name: 'h:5000/a/b', digest: undefined });
    assert.deepEqual(stripTagAndDigest('a@sha256:x'), { name: 'a', digest: 'sha256:x' });
  });
});

describe('selectBuilds (only:)', () => {
  // base ← app ← web, and tool on its own
  const plan = planBuilds(
    [spec('base', 'r/base'), spec('app', 'r/app'), spec('web', 'r/web'), spec('tool', 'r/tool')],
    { base: 'FROM scratch\n', app: 'FROM r/base:t\n', web: 'FROM r/app:t\n', tool: 'FROM scratch\n' },
    't',
  );
  const cases: Array<[string[], string[]]> = [
    [[], ['base', 'app', 'web', 'tool']],
    [['base'], ['base', 'app', 'web']],
    [['app'], ['app', 'web']],
    [
      ['web', 'tool'],
      ['web', 'tool'],
    ],
    [['tool'], ['tool']],
  ];
  for (const [only, expected] of cases) {
    it(`only ${JSON.stringify(only)} builds ${expected.join(', ')} in chain order`, () => {
      assert.deepEqual(
        selectBuilds(plan, only).map((p) => p.id),
        expected,
      );
    });
  }
  it('names an unknown id', () => {
    assert.throws(() => selectBuilds(plan, ['nope']), /input 'only': no image nope in this build/);
  });
});
