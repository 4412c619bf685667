import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlannedImage } from '../../src/lib/build-plan.ts';
import { type BuildOptions, buildCommand } from '../../src/lib/docker-args.ts';

const image = (extra: Partial<PlannedImage> = {}): PlannedImage => ({
  id: 'app',
  name: 'r/app',
  context: 'svc/app',
  dockerfile: 'docker/Dockerfile',
  target: 'prod',
  buildArgs: {},
  resolvedArgs: { BASE: 'r/base:main-1a2b3c4', 'A B': '$(x)' },
  platforms: [],
  services: [],
  dependsOn: ['base'],
  upstreamAliases: [],
  ...extra,
});
const opts = (extra: Partial<BuildOptions> = {}): BuildOptions => ({
  buildx: false,
  refs: ['r/app:main-1a2b3c4', 'r/app:latest'],
  labels: { 'org.opencontainers.image.revision': 'abc' },
  iidfile: '/tmp/iid',
  platforms: [],
  cacheFrom: [],
  cacheTo: [],
  provenance: false,
  pull: true,
  ...extra,
});

describe('docker build command lines', () => {
  it('classic builder: DOCKER_BUILDKIT=0, dockerfile relative to the context, no --pull on a chained image', () => {
    const cmd = buildCommand(image(), opts());
    assert.deepEqual(cmd.env, { DOCKER_BUILDKIT: '0' });
    assert.equal(cmd.pushes, false);
    assert.deepEqual(cmd.args, [
      'build',
      '--iidfile',
      '/tmp/iid',
      '--file',
      'svc/app/docker/Dockerfile',
      '--target',
      'prod',
      '--build-arg',
      'BASE=r/base:main-1a2b3c4',
      '--build-arg',
      'A B=$(x)',
      '--label',
      'org.opencontainers.image.revision=abc',
      '--tag',
      'r/app:main-1a2b3c4',
      '--tag',
      'r/app:latest',
      'svc/app',
    ]);
  });
  it('buildx, one platform: --load, provenance off, caches', () => {
    const cmd = buildCommand(
      image({ dependsOn: [] }),
      opts({ buildx: true, platforms: ['linux/arm64'], cacheFrom: ['type=gha'], cacheTo: ['type=gha,mode=max'] }),
    );
    assert.deepEqual(cmd.args.slice(0, 10), [
      'buildx',
      'build',
      '--provenance=false',
      '--cache-from',
      'type=gha',
      '--cache-to',
      'type=gha,mode=max',
      '--platform',
      'linux/arm64',
      '--load',
    ]);
    assert.ok(cmd.args.includes('--pull'));
    assert.deepEqual(cmd.env, {});
  });
  it('buildx, several platforms: pushes from the build, with a metadata file', () => {
    const cmd = buildCommand(
      image({ platforms: ['linux/amd64', 'linux/arm64'] }),
      opts({ buildx: true, metadataFile: '/tmp/m.json', provenance: true }),
    );
    assert.equal(cmd.pushes, true);
    assert.ok(cmd.args.includes('--push') && !cmd.args.includes('--load'));
    assert.ok(cmd.args.includes('--provenance=true'));
    assert.deepEqual(cmd.args.slice(cmd.args.indexOf('--platform'), cmd.args.indexOf('--platform') + 2), [
      '--platform',
      'linux/amd64,linux/arm64',
    ]);
  });
  it('refuses what the classic builder cannot do, naming the input', () => {
    assert.throws(
      () => buildCommand(image({ platforms: ['linux/amd64', 'linux/arm64'] }), opts()),
      /input 'platforms'.*needs buildx/,
    );
    assert.throws(() => buildCommand(image(), opts({ cacheTo: ['type=gha'] })), /input 'cache-to'/);
  });
});

describe('compose build options on the command line', () => {
  const composed = image({
    labels: { team: 'a' },
    secrets: [
      { id: 'npmrc', file: '/w/npmrc' },
      { id: 'token', env: 'TOKEN' },
    ],
    additionalContexts: { assets: 'assets', base: 'docker-image://r/base:1' },
  });
  it('buildx: compose labels, additional contexts and secrets (file or env source), never the values', () => {
    const args = buildCommand(composed, opts({ buildx: true })).args;
    const pairs = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
    assert.deepEqual(pairs('--label'), ['team=a', 'org.opencontainers.image.revision=abc']);
    assert.deepEqual(pairs('--build-context'), ['assets=assets', 'base=docker-image://r/base:1']);
    assert.deepEqual(pairs('--secret'), ['id=npmrc,src=/w/npmrc', 'id=token,env=TOKEN']);
  });
  it('classic builder: refuses build secrets and additional contexts, saying what to add', () => {
    assert.throws(
      () => buildCommand(composed, opts()),
      /uses build.secrets and build.additional_contexts, which the classic builder cannot do/,
    );
  });
  it('a dockerfile_inline written to a file is the --file', () => {
    const args = buildCommand(
      image({ dockerfileInline: 'FROM scratch\n' }),
      opts({ dockerfilePath: '/tmp/app.Dockerfile' }),
    ).args;
    assert.equal(args[args.indexOf('--file') + 1], '/tmp/app.Dockerfile');
  });
});
