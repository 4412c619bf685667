import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, runCli } from '../helpers/bundles.ts';
import { docker, testEnv, unique } from '../helpers/testenv.ts';

interface Built {
  images: Array<{ id: string; name: string; dependsOn: string[]; refs: string[] }>;
}

describe('examples/monorepo-chain builds with the CLI', () => {
  const env = testEnv();
  const dir = mkdtempSync(join(tmpdir(), 'lading-example-mono-'));
  const ns = `${env.registry.host}/${unique('mono')}`;
  let built: Built | undefined;

  after(() => {
    const refs = built?.images.flatMap((i) => i.refs) ?? [];
    if (refs.length) docker(['rmi', '--no-prune', '-f', ...refs]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds base first and api/worker on the base image of the same run', () => {
    cpSync(join(REPO_ROOT, 'examples', 'monorepo-chain'), dir, { recursive: true });
    const compose = join(dir, 'docker-compose.yml');
    writeFileSync(compose, readFileSync(compose, 'utf8').replaceAll('registry.acme.dev/mono', ns)); // names of its own
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', 'commit', '-qm', 'mono');

    const res = runCli(['build', '--compose-files', 'docker-compose.yml', '--json'], {
      cwd: dir,
      env: { DOCKER_HOST: env.dockerHost },
    });
    assert.equal(res.code, 0, res.stderr);
    built = JSON.parse(res.stdout) as Built;
    const ids = built.images.map((i) => i.id);
    assert.deepEqual([...ids].sort(), ['api', 'base', 'web', 'worker']);
    assert.ok(ids.indexOf('base') < ids.indexOf('api') && ids.indexOf('base') < ids.indexOf('worker'), ids.join());
    const byId = new Map(built.images.map((i) => [i.id, i]));
    assert.deepEqual(byId.get('api')!.dependsOn, ['base']);
    assert.deepEqual(byId.get('worker')!.dependsOn, ['base']);
    assert.deepEqual(byId.get('web')!.dependsOn, []);

    // api's layers start with the layers of the base image just built (not some other base).
    const layers = (ref: string) =>
      JSON.parse(docker(['image', 'inspect', ref, '--format', '{{json .RootFS.Layers}}'])) as string[];
    const base = layers(byId.get('base')!.refs[0]!);
    const api = layers(byId.get('api')!.refs[0]!);
    assert.deepEqual(api.slice(0, base.length), base);
    assert.equal(api.length, base.length + 1);
  });
});
