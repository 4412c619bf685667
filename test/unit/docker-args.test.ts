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
