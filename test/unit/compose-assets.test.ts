import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkBundleSize, planAssets } from '../../src/lib/compose-assets.ts';
import { resolveCompose } from '../../src/lib/compose-model.ts';
import { releaseFiles } from '../../src/lib/deploy-plan.ts';
import {
  type ComposeAsset,
  composeFile,
  createManifest,
  parseManifest,
  serializeManifest,
} from '../../src/lib/manifest.ts';

const PROJECT: Record<string, string> = {
  '/w/app/compose.yaml': `services:
  web:
    image: r/web
    env_file: [web.env, { path: local.env, required: false }]
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - ./static:/static
      - /srv/data:/data
      - ../shared:/shared
      - pgdata:/pg
    configs: [app]
    secrets: [pw]
  debug:
    image: r/debug
    profiles: [debug]
    volumes: [/only/when/debugging:/x]
  base:
    extends: { file: common/base.yml, service: base }
configs:
  app: { file: conf/app.ini }
secrets:
  pw: { file: ./secrets/pw.txt }
volumes:
  pgdata: {}
`,
  '/w/app/common/base.yml': 'services:\n  base: { image: r/base }\n',
  '/w/app/.env': 'A=1\n',
  '/w/app/web.env': 'B=2\n',
};

describe('the files a compose project needs on the host', () => {
  const r = resolveCompose({ files: ['/w/app/compose.yaml'], env: {}, read: (p) => PROJECT[p] });
  const plan = planAssets(r.model, r.envFiles, ['/w/app/common/base.yml']);
  it('ships .env, env_files, bind sources inside the project, configs, secrets and extended files', () => {
    assert.deepEqual(
      plan.sources.map((s) => [s.path, s.kind, s.mode.toString(8), s.optional]),
      [
        ['.env', 'env', '600', false],
        ['common/base.yml', 'compose', '644', false],
        ['conf/app.ini', 'config', '644', false],
        ['local.env', 'env_file', '600', true],
        ['nginx.conf', 'bind', '644', false],
        ['secrets/pw.txt', 'secret', '600', false],
        ['static', 'bind', '644', false],
        ['web.env', 'env_file', '600', false],
      ],
    );
  });
  it('leaves mount sources outside the project to the hosts, except those of a profile that is off', () => {
    assert.deepEqual(plan.external, [
      { path: '/srv/data', service: 'web' },
      { path: '/w/shared', service: 'web' },
    ]);
  });
  it('refuses an env_file outside the project (it would not be on the host)', () => {
    const files = { '/w/app/compose.yaml': 'services:\n  a: { image: a, env_file: ../x.env }\n', '/w/x.env': 'X=1\n' };
    const rr = resolveCompose({ files: ['/w/app/compose.yaml'], env: {}, read: (p) => files[p as keyof typeof files] });
    assert.throws(() => planAssets(rr.model, []), /a: env_file \/w\/x.env is outside the project directory/);
  });
  it('refuses a bundle over the limit, naming the largest entries', () => {
    const MiB = 1048576;
    const assets = [
      { path: 'data/dump.sql', size: 40 * MiB },
      { path: 'data/big.bin', size: 20 * MiB },
      { path: '.env', size: 10 },
    ];
    assert.throws(
      () => checkBundleSize(assets, 50 * MiB),
      /\(3, 60\.0 MiB\) exceed the bundle limit of 50\.0 MiB; largest: data\/dump\.sql \(40\.0 MiB\), data\/big\.bin \(20\.0 MiB\), \.env \(0\.00 MiB\)/,
    );
    checkBundleSize(assets, 61 * MiB);
  });
});

const asset = (path: string, text: string, kind: ComposeAsset['kind'] = 'bind', mode = 0o644): ComposeAsset => ({
  path,
  kind,
  size: Buffer.byteLength(text),
  sha256: createHash('sha256').update(text).digest('hex'),
  mode,
  content: Buffer.from(text).toString('base64'),
});

describe('manifest v2: the release carries the files', () => {
  const D = `sha256:${'a'.repeat(64)}`;
  const make = (assets: ComposeAsset[]) =>
    createManifest({
      source: { repository: 'a/b', ref: 'refs/heads/main', sha: '1'.repeat(40), created: '2026-01-01T00:00:00.000Z' },
      tags: ['t1'],
      primary: 't1',
      images: [
        {
          id: 'web',
          services: ['web'],
          name: 'r/web',
          tags: ['t1'],
          digest: D,
          ref: `r/web@${D}`,
          transport: { kind: 'registry', registry: 'docker.io', provider: 'generic' },
        },
      ],
      compose: {
        files: [composeFile('compose.yaml', 'services:\n  web: { image: r/web, build: . }\n')],
        env: { DOCKER_TAG: 't1', A: 'manifest' },
        assets,
        external: [{ path: '/srv/data', service: 'web' }],
      },
    });
  it('writes lading.manifest/v2 with path, size and sha256 of each file, and reads it back', () => {
    const m = make([asset('.env', 'A=dotenv\nB=dotenv\n', 'env', 0o600), asset('conf/nginx.conf', 'x\n')]);
    assert.equal(m.schema, 'lading.manifest/v2');
    const back = parseManifest(serializeManifest(m));
    assert.deepEqual(
      back.compose!.assets!.map((a) => [a.path, a.size, a.sha256.slice(0, 8)]),
      [
        ['.env', 18, createHash('sha256').update('A=dotenv\nB=dotenv\n').digest('hex').slice(0, 8)],
        ['conf/nginx.conf', 2, createHash('sha256').update('x\n').digest('hex').slice(0, 8)],
      ],
    );
  });
  it('refuses a file whose content does not match its sha256, an absolute path or a path with ..', () => {
    const bad = asset('a.conf', 'x');
    bad.content = Buffer.from('y').toString('base64');
    assert.throws(() => make([bad]), /size or sha256 does not match the content of a.conf/);
    assert.throws(() => make([asset('/etc/passwd', 'x')]), /compose.assets\[0\].path: must match pattern/);
    assert.throws(() => make([asset('a/../../x', 'x')]), /compose.assets\[0\].path: must match pattern/);
  });
  it('lays the files out with their relative paths; the project .env goes under the manifest env in the 0600 .env', () => {
    const m = make([
      asset('.env', 'A=dotenv\nB=dotenv\n', 'env', 0o600),
      { path: 'conf', kind: 'dir', size: 0, sha256: 'e'.repeat(64), mode: 0o755 },
      asset('conf/nginx.conf', 'x\n'),
      asset('common/base.yml', 'services:\n  base: { image: r/base, build: ../b }\n', 'compose'),
    ]);
    const { files } = releaseFiles(m, { project: 'shop', release: 'r1' });
    const by = Object.fromEntries(files.map((f) => [f.name, f]));
    assert.equal(by['.env']!.content, 'COMPOSE_PROJECT_NAME=shop\nA=manifest\nB=dotenv\nDOCKER_TAG=t1\n');
    assert.equal(by.conf!.dir, true);
    assert.equal(String(by['conf/nginx.conf']!.content), 'x\n');
    assert.equal(by['conf/nginx.conf']!.sha256, createHash('sha256').update('x\n').digest('hex'));
    assert.doesNotMatch(String(by['common/base.yml']!.content), /build/);
  });
});
