import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readHooks, runnerHookEnv } from '../../src/lib/hooks.ts';
import { composeFile, createManifest } from '../../src/lib/manifest.ts';
import { readHookInputs } from '../../src/settings/host.ts';

const D = `sha256:${'1'.repeat(64)}`;
const manifestWith = (compose: string) =>
  createManifest({
    source: {
      repository: 'acme/shop',
      ref: 'refs/heads/main',
      sha: 'a'.repeat(40),
      created: '2026-01-02T00:00:00.000Z',
    },
    tags: ['v2'],
    primary: 'v2',
    images: [
      {
        id: 'web',
        services: ['web'],
        name: 'r.example/acme/web',
        tags: ['v2'],
        digest: D,
        ref: `r.example/acme/web@${D}`,
        transport: { kind: 'registry', registry: 'r.example', provider: 'generic' },
      },
    ],
    compose: { project: 'shop', files: [composeFile('docker-compose.yml', compose)], env: {} },
  });
const plain = manifestWith('services:\n  web:\n    image: x\n  worker:\n    image: x\n');
const inputs = (o: Record<string, string>) => readHookInputs((n) => o[n]);

describe('deploy hooks: inputs and x-lading', () => {
  it('none declared: no hooks', () => assert.deepEqual(readHooks(inputs({}), plain), {}));
  it('an input is a command in the first built service, with the default timeout', () => {
    assert.deepEqual(readHooks(inputs({ 'pre-deploy': 'bin/rails db:migrate' }), plain), {
      'pre-deploy': {
        name: 'pre-deploy',
        argv: ['bin/rails', 'db:migrate'],
        service: 'web',
        timeout: 600,
        source: 'pre-deploy',
      },
    });
  });
  it('a JSON array keeps arguments with spaces whole (no shell)', () => {
    const h = readHooks(
      inputs({ 'post-switch': '["sh", "-c", "echo a b; exit 1"]', 'hook-service': 'worker', 'hook-timeout': '30' }),
      plain,
    );
    assert.deepEqual(h['post-switch'], {
      name: 'post-switch',
      argv: ['sh', '-c', 'echo a b; exit 1'],
      service: 'worker',
      timeout: 30,
      source: 'post-switch',
    });
  });
  it('x-lading hooks in the compose file, an input winning over it', () => {
    const m = manifestWith(
      'services:\n  web:\n    image: x\nx-lading:\n  hooks:\n    pre-deploy:\n      command: ["bin/migrate", "--all"]\n      service: web\n      timeout: 120\n    post-deploy: notify done\n',
    );
    const h = readHooks(inputs({ 'post-deploy': 'other' }), m);
    assert.deepEqual(h['pre-deploy'], {
      name: 'pre-deploy',
      argv: ['bin/migrate', '--all'],
      service: 'web',
      timeout: 120,
      source: 'x-lading hooks.pre-deploy',
    });
    assert.deepEqual(h['post-deploy']?.argv, ['other']);
  });
  for (const [name, read, compose, re] of [
    [
      'an unknown x-lading hook',
      {},
      'services: {web: {image: x}}\nx-lading: {hooks: {pre-deplyo: [x]}}\n',
      /pre-deplyo is not a hook/,
    ],
    [
      'a hook without a command',
      {},
      'services: {web: {image: x}}\nx-lading: {hooks: {pre-deploy: {service: web}}}\n',
      /needs a command/,
    ],
    ['a bad timeout', { 'pre-deploy': 'x', 'hook-timeout': '0' }, 'services: {web: {image: x}}\n', /hook-timeout/],
    [
      'a service name that is not one',
      { 'pre-deploy': 'x', 'hook-service': 'a b' },
      'services: {web: {image: x}}\n',
      /hook-service/,
    ],
    ['a broken JSON array', { 'pre-deploy': '["x"' }, 'services: {web: {image: x}}\n', /pre-deploy.*JSON/],
  ] as const) {
    it(`refuses ${name}, naming where`, () => assert.throws(() => readHooks(inputs(read), manifestWith(compose)), re));
  }
  it('the runner hook env says what, where and how it went', () => {
    const env = runnerHookEnv({
      hook: 'failure',
      manifest: plain,
      release: 'R2',
      hosts: ['a', 'b'],
      project: 'shop',
      result: 'failure',
      error: 'boom',
    });
    assert.deepEqual(env, {
      LADING_HOOK: 'failure',
      LADING_RELEASE: 'R2',
      LADING_PROJECT: 'shop',
      LADING_TAG: 'v2',
      LADING_SHA: 'a'.repeat(40),
      LADING_REPOSITORY: 'acme/shop',
      LADING_HOSTS: 'a,b',
      LADING_RESULT: 'failure',
      LADING_ERROR: 'boom',
    });
  });
});
