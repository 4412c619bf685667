import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseManifest } from '../../src/lib/manifest.ts';
import { runCli } from '../helpers/bundles.ts';
import { busyboxContext, removeProject, sshHostArgs, testEnv, unique } from '../helpers/testenv.ts';

describe('lading alone (the built CLI): build → push → manifest → deploy → rollback', () => {
  const env = testEnv();
  const ns = `${env.registry.host}/${unique('cli')}`;
  const project = unique('cliapp').replace(/[^a-z0-9-]/g, '-');
  const port = 40000 + Math.floor(Math.random() * 10000);
  let repo = '';
  let root = '';
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
  const cliEnv = () => ({ DOCKER_HOST: env.dockerHost, GITHUB_ACTIONS: undefined });
  const lading = (...args: string[]) => {
    const res = runCli(args, { cwd: repo, env: cliEnv() });
    assert.equal(res.code, 0, `lading ${args[0]}: ${res.stderr}\n${res.stdout}`);
    return res.stdout;
  };
  const release = (content: string) => {
    writeFileSync(join(repo, 'web', 'srv', 'index.html'), content);
    git('add', '-A');
    git('commit', '-qm', content);
    writeFileSync(join(repo, 'build.json'), lading('build', '--compose-files', 'docker-compose.yml', '--json'));
    writeFileSync(join(repo, 'push.json'), lading('push', '--build-json', '@build.json', '--json'));
    lading('manifest', '--push-json', '@push.json', '--compose-project', project, '--manifest-path', 'manifest.json');
    const out = lading('deploy', '--manifest', 'manifest.json', ...sshHostArgs(root), '--health-stable', '1');
    assert.match(out, /\tdeployed\t/);
  };
  const probe = async () => (await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).trim();

  before(() => {
    repo = mkdtempSync(join(tmpdir(), 'lading-cli-repo-'));
    root = mkdtempSync(join(tmpdir(), 'lading-cli-root-'));
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 't@example.com');
    git('config', 'user.name', 'T');
    busyboxContext(join(repo, 'web'), { files: { 'index.html': 'x' } });
    writeFileSync(
      join(repo, 'docker-compose.yml'),
      `services:\n  web:\n    image: ${ns}/web:\${DOCKER_TAG:-latest}\n    build: web\n    network_mode: host\n    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${port}", "-h", "/srv"]\n`,
    );
  });
  after(() => {
    removeProject(project);
    rmSync(repo, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  it('ships two releases, then rolls back to the first', async () => {
    release('one');
    const first = parseManifest(execFileSync('cat', [join(repo, 'manifest.json')], { encoding: 'utf8' }));
    assert.equal(await probe(), 'one');
    release('two');
    assert.equal(await probe(), 'two');
    const hostArgs = [...sshHostArgs(root), '--project', project];
    assert.match(lading('rollback', ...hostArgs, '--to', first.primary, '--health-stable', '1'), /\tdeployed\t/);
    assert.equal(await probe(), 'one');
    const listed = JSON.parse(lading('releases', ...hostArgs, '--json'));
    const history = listed[0].history as Array<{ action: string; primary: string }>;
    assert.deepEqual(
      history.map((h) => h.action),
      ['deploy', 'deploy', 'rollback'],
    );
    assert.equal(history[2]!.primary, first.primary);
  });
});
