import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeFile, type Manifest } from '../../src/lib/manifest.ts';
import type { StatusReport } from '../../src/lib/ops.ts';
import { bundle, runActionBundleAsync, runCli, runCliOnTty } from '../helpers/bundles.ts';
import { webApp } from '../helpers/deploy-fixture.ts';
import { removeStack, sshHostArgs, swarmDocker as swarm, testEnv } from '../helpers/testenv.ts';

const SECRET = `swarm-ops-secret-${process.pid}-Qz8`;

/**
 * The day-2 verbs on target swarm (status, logs, exec, lock, prune) and the deploy hooks, from the CLI and deploy
 * bundles, over the same connection as the swarm deploy: the test sshd, with the manager's docker as docker-host on
 * that host. One busybox image, one stack (a quiet service and one that keeps writing).
 */
describe('lading status, logs, exec, lock, prune and deploy hooks on a swarm stack, through the manager the deploy uses', () => {
  const env = testEnv();
  const app = webApp();
  const service = `${app.project}_web`;
  const stack = `version: "3.8"
services:
  web:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "sh", "-c", "for i in 1 2 3; do echo line-$$i; done; exec /bin/busybox sleep 3600"]
    environment:
      GREETING: hello-from-the-stack
    networks: [hostnet]
    stop_grace_period: 1s
  writer:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "sh", "-c", "i=0; while :; do i=$$((i+1)); echo tick $$i; /bin/busybox sleep 0.3; done"]
    networks: [hostnet]
    stop_grace_period: 1s
networks:
  hostnet:
    external: true
    name: host
`;
  let m: Manifest;
  let m2: Manifest | undefined;
  let root = '';
  const releases: string[] = [];
  const conn = () => [
    '--target',
    'swarm',
    ...sshHostArgs(root),
    '--docker-host',
    env.swarmDockerHost,
    '--project',
    app.project,
  ];
  const cli = (args: string[]) => runCli(args, { env: { GITHUB_ACTIONS: undefined } });
  const inputs = (extra: Record<string, string>) => ({
    target: 'swarm',
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'docker-host': env.swarmDockerHost,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-timeout': '120',
    'update-delay': '0',
    'update-monitor': '1',
    username: 'deployer',
    password: SECRET,
    registry: env.registry.host,
    ...extra,
  });
  const runEnv = { GITHUB_RUN_ID: '92', GITHUB_RUN_ATTEMPT: '1' };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-swarm-ops-'));
    m = app.version(1);
    m.compose!.files = [composeFile('docker-compose.yml', stack)];
    const manifest = app.writeManifest(m);
    // two releases of the same image: prune has one to remove
    for (let i = 0; i < 2; i++) {
      const run = await runActionBundleAsync('deploy', { inputs: inputs({ manifest }), env: runEnv });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      releases.push(run.outputs.release!);
    }
  });
  after(() => {
    try {
      removeStack(
        app.project,
        [m, ...(m2 ? [m2] : [])].map((x) => x.images[0]!.ref),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('status: the service on the current release, its task running the pinned digest, exit 0', () => {
    const res = cli(['status', ...conn(), '--json']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const report = JSON.parse(res.stdout) as StatusReport;
    assert.equal(report.ok, true);
    const [h] = report.hosts;
    assert.equal(h?.target, 'swarm');
    assert.equal(h?.healthy, true, JSON.stringify(h));
    assert.equal(h?.release?.id, releases[1]);
    assert.deepEqual(h?.releases, releases);
    assert.deepEqual(h?.drift, []);
    const svc = h!.services.find((x) => x.service === 'web');
    assert.ok(svc, JSON.stringify(h!.services));
    assert.equal(svc?.desired, 1);
    assert.equal(svc?.pinned, m.images[0]!.ref);
    const [task] = svc!.containers;
    assert.equal(task?.state, 'running');
    assert.equal(task?.digest, m.images[0]!.digest, 'the digest the task runs is the pinned one');
    assert.equal(task?.release, releases[1]);
    const human = cli(['status', ...conn()]);
    assert.equal(human.code, 0, human.stdout + human.stderr);
    assert.match(human.stdout, /web/);
  });

  it('logs --tail: the last lines of the service, prefixed with the manager and the task', () => {
    const res = cli(['logs', ...conn(), '--tail', '2', '--service', 'web']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = res.stdout.trim().split('\n');
    // the stack's two tasks (one per release) each said line-1..3: the last two lines of each
    assert.ok(lines.length >= 2, res.stdout);
    const prefix = `[root@${env.ssh.host}:${env.ssh.port}] ${service}.1.`;
    for (const l of lines) {
      assert.ok(l.startsWith(prefix), `host and task prefix: ${l}`);
      assert.match(l, /@\S+\s+\| line-[23]$/, l);
    }
  });

  it('exec --running enters the running task; a one-off runs in a new container of the service image', () => {
    const running = cli([
      'exec',
      ...conn(),
      '--service',
      'web',
      '--running',
      '--',
      '/bin/busybox',
      'cat',
      '/proc/1/cmdline',
    ]);
    assert.equal(running.code, 0, running.stdout + running.stderr);
    assert.match(running.stdout, /sleep.*3600/);
    const oneOff = cli(['exec', ...conn(), '--service', 'web', '--', '/bin/busybox', 'cat', '/srv/index.html']);
    assert.equal(oneOff.code, 0, oneOff.stdout + oneOff.stderr);
    assert.match(oneOff.stdout, /v1/);
  });

  it("exec --host names one of the stack's managers (by address too); any other name is refused before connecting", () => {
    const { ssh } = testEnv();
    const named = cli([
      'exec',
      ...conn(),
      '--host',
      `${ssh.host}:${ssh.port}`,
      '--service',
      'web',
      '--',
      '/bin/busybox',
      'true',
    ]);
    assert.equal(named.code, 0, named.stdout + named.stderr);
    const other = cli([
      'exec',
      ...conn(),
      '--host',
      'nowhere.example',
      '--service',
      'web',
      '--',
      '/bin/busybox',
      'true',
    ]);
    assert.equal(other.code, 2, other.stdout + other.stderr);
    assert.match(other.stderr, /'nowhere\.example' is none of the stack's managers \(.*\).*leave --host out/);
  });

  it('logs --follow streams the lines a task writes meanwhile and ends cleanly on Ctrl-C (no reader left on the manager)', async () => {
    const child = spawn(
      process.execPath,
      [bundle('cli'), 'logs', ...conn(), '--follow', '--tail', '0', '--service', 'writer'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const prefix = `[root@${env.ssh.host}:${env.ssh.port}] ${app.project}_writer.1.`.replace(/[.[\]]/g, '\\$&');
    const ticks = () =>
      [...out.matchAll(new RegExp(`^${prefix}\\S+@\\S+\\s+\\| tick (\\d+)$`, 'gm'))].map((x) => Number(x[1]));
    const deadline = Date.now() + 20_000;
    while (ticks().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const seen = ticks();
    assert.ok(seen.length >= 3, `streamed ticks:\n${out}\n${err}`);
    assert.ok(
      seen.every((n, i) => i === 0 || n > seen[i - 1]!),
      `in order: ${seen.join(' ')}`,
    );
    assert.equal(child.exitCode, null, 'still following');
    child.kill('SIGINT');
    const t0 = Date.now();
    assert.equal(await exited, 0, err);
    assert.ok(Date.now() - t0 < 8000, 'ended promptly');
    await new Promise((r) => setTimeout(r, 500));
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    assert.ok(
      !ps.split('\n').some((l) => l.includes('service logs') && l.includes(`${app.project}_writer`)),
      `a docker service logs reader is left:\n${ps}`,
    );
  });

  it('exec without a terminal gets no PTY; through a pseudo-terminal it gets one on the manager (one-off and --running)', () => {
    const plain = cli(['exec', ...conn(), '--service', 'web', '--', '/bin/busybox', 'tty']);
    assert.equal(plain.code, 1, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /not a tty/);
    for (const running of [[], ['--running']]) {
      // on a pseudo-terminal: stdin is a TTY, so exec asks the manager for a PTY
      const res = runCliOnTty([
        'exec',
        ...conn(),
        '--service',
        'web',
        ...running,
        '--',
        '/bin/busybox',
        'sh',
        '-c',
        'tty && exit 3',
      ]);
      assert.equal(res.status, 3, `${running.join(' ')}: ${res.stdout}${res.stderr}`);
      assert.match(res.stdout, /\/dev\/pts\/\d+/, `${running.join(' ')}: ${res.stdout}`);
    }
  });

  it("lock status shows a lock held on the manager; release refuses another run's live lock unless forced and confirmed, and records it", () => {
    const lockFile = join(root, app.project, '.lock');
    writeFileSync(lockFile, `${Math.floor(Date.now() / 1000) + 600} gh-777.1 build-box\n`);
    const status = cli(['lock', 'status', ...conn(), '--json']);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const [held] = JSON.parse(status.stdout) as Array<{ lock?: { owner: string; expired: boolean } }>;
    assert.deepEqual([held?.lock?.owner, held?.lock?.expired], ['gh-777.1', false]);
    const st = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
    assert.equal(st.hosts[0]?.lock?.owner, 'gh-777.1');
    const release = (...extra: string[]) => cli(['lock', 'release', ...conn(), '--run-id', 'swarm-ops', ...extra]);
    let res = release();
    assert.equal(res.code, 1);
    assert.match(res.stdout, /not released: the lock is held by gh-777\.1/);
    res = release('--force');
    assert.equal(res.code, 1);
    assert.match(res.stdout, /not released: .*live until .*--confirm gh-777\.1/);
    assert.ok(readFileSync(lockFile, 'utf8').includes('gh-777.1'), 'still held');
    res = release('--force', '--confirm', 'gh-777.1');
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /released: forced, confirmed for gh-777\.1/);
    assert.throws(() => readFileSync(lockFile), /ENOENT/);
    const last = historyOf().at(-1)!;
    assert.deepEqual([last.action, last.holder, last.run], ['lock-release', 'gh-777.1', 'swarm-ops']);
  });

  it('prune --dry-run lists the older release and no image (the swarm tasks own them), removing nothing', () => {
    const dry = cli(['prune', ...conn(), '--keep-releases', '1', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    const [plan] = JSON.parse(dry.stdout) as Array<{
      dryRun: boolean;
      plan: { releases: Array<{ id: string }>; images: unknown[]; kept: string[] };
    }>;
    assert.equal(plan!.dryRun, true);
    assert.deepEqual(
      plan!.plan.releases.map((r) => r.id),
      [releases[0]],
    );
    assert.deepEqual(plan!.plan.kept, [releases[1]]);
    assert.deepEqual(plan!.plan.images, []);
    const status = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
    assert.deepEqual(status.hosts[0]?.releases, releases, 'a dry run removes nothing');
  });

  const historyOf = () =>
    readFileSync(join(root, app.project, 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('a failing pre-deploy (migration) hook aborts before docker stack deploy: the previous release keeps serving, the failure recorded', async () => {
    m2 = app.version(2);
    m2.compose!.files = [composeFile('docker-compose.yml', stack)];
    const dir = mkdtempSync(join(tmpdir(), 'lading-swarm-runner-hook-'));
    const script = join(dir, 'notify.sh');
    writeFileSync(script, `#!/bin/sh\necho "$LADING_HOOK \${LADING_RESULT:-} $LADING_ERROR" >> "${dir}/calls"\n`, {
      mode: 0o755,
    });
    const run = await runActionBundleAsync('deploy', {
      inputs: inputs({
        manifest: app.writeManifest(m2),
        'pre-deploy':
          '["/bin/busybox", "sh", "-c", "echo migrating with $GREETING on $(/bin/busybox cat /srv/index.html); exit 3"]',
        'runner-hook': script,
      }),
      env: runEnv,
    });
    const calls = readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
    rmSync(dir, { recursive: true, force: true });
    assert.equal(run.code, 1, run.stdout);
    // the runner hook heard the start and the failure, with its reason
    assert.equal(calls.length, 2, calls.join('\n'));
    assert.match(calls[0]!, /^pre-deploy /);
    assert.match(calls[1]!, /^failure failure hook pre-deploy failed on .*exited with status 3/);
    // in a one-off container of the NEW image, with the service's environment, its output in the deploy's log
    assert.match(run.stdout, /pre-deploy \| migrating with hello-from-the-stack on v2/);
    assert.match(run.stdout, /hook pre-deploy failed on .*exited with status 3/);
    assert.doesNotMatch(run.stdout, /Updating service/, 'docker stack deploy never ran');
    const st = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
    assert.equal(st.ok, true, JSON.stringify(st.hosts[0]?.problems));
    assert.equal(st.hosts[0]?.release?.id, releases[1], 'the previous release is still current');
    const web = st.hosts[0]!.services.find((x) => x.service === 'web')!;
    assert.deepEqual(
      web.containers.map((c) => c.digest),
      [m.images[0]!.digest],
      'its task still runs the previous image',
    );
    const hook = historyOf()
      .filter((e) => e.action === 'hook')
      .at(-1)!;
    assert.deepEqual([hook.hook, hook.result], ['pre-deploy', 'failure']);
    assert.match(String(hook.error), /exited with status 3/);
  });

  it('hooks run on the manager in order: pre-deploy and pre-switch in the new image before the stack update, post-switch after it, post-deploy last; the runner hook before and after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-swarm-runner-hook-'));
    const script = join(dir, 'notify.sh');
    writeFileSync(
      script,
      `#!/bin/sh\necho "$LADING_HOOK $LADING_TAG \${LADING_RESULT:-} $LADING_HOSTS $LADING_PROJECT" >> "${dir}/calls"\necho notified\n`,
      { mode: 0o755 },
    );
    const say = (n: string) =>
      `["/bin/busybox", "sh", "-c", "echo ran ${n} on $(/bin/busybox cat /srv/index.html) with $GREETING"]`;
    const run = await runActionBundleAsync('deploy', {
      inputs: inputs({
        manifest: app.writeManifest(m2!),
        'pre-deploy': say('pre-deploy'),
        'pre-switch': say('pre-switch'),
        'post-switch': say('post-switch'),
        'post-deploy': say('post-deploy'),
        'runner-hook': script,
      }),
      env: runEnv,
    });
    try {
      assert.equal(run.code, 0, run.stdout);
      const lines = run.stdout.split('\n');
      const ran = lines.flatMap(
        (l) => /\] (\S+) \| ran \S+ on (v\d) with hello-from-the-stack$/.exec(l)?.slice(1, 3).join(' ') ?? [],
      );
      assert.deepEqual(ran, ['pre-deploy v2', 'pre-switch v2', 'post-switch v2', 'post-deploy v2']);
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      assert.ok(at(/pre-switch \| ran/) < at(/Updating service/), 'pre-switch before the stack update');
      assert.ok(at(/Updating service/) < at(/post-switch \| ran/), 'post-switch after it');
      const hooks = historyOf().filter((e) => e.action === 'hook' && e.for === run.outputs.release);
      assert.deepEqual(
        hooks.map((e) => `${String(e.hook)} ${String(e.result)}`),
        ['pre-deploy success', 'pre-switch success', 'post-switch success', 'post-deploy success'],
      );
      const calls = readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
      assert.deepEqual(calls, [
        `pre-deploy v2-abcdef0  root@${env.ssh.host}:${env.ssh.port} ${app.project}`,
        `post-deploy v2-abcdef0 success root@${env.ssh.host}:${env.ssh.port} ${app.project}`,
      ]);
      assert.match(run.stdout, /runner-hook post-deploy \| notified/);
      const st = JSON.parse(cli(['status', ...conn(), '--json']).stdout) as StatusReport;
      assert.equal(st.hosts[0]?.release?.id, run.outputs.release);
      assert.equal(st.hosts[0]!.services.find((x) => x.service === 'web')?.pinned, m2!.images[0]!.ref);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status exits non-zero when a service is not converged (its task cannot be placed), naming it', () => {
    swarm(['service', 'update', '--detach', '--constraint-add', 'node.labels.lading-nowhere==1', service]);
    let res = cli(['status', ...conn(), '--json']);
    for (let i = 0; i < 30 && res.code === 0; i++) {
      spawnSync('sleep', ['1']);
      res = cli(['status', ...conn(), '--json']);
    }
    assert.notEqual(res.code, 0, res.stdout + res.stderr);
    const report = JSON.parse(res.stdout) as StatusReport;
    assert.equal(report.ok, false);
    assert.equal(report.hosts[0]?.healthy, false);
    assert.ok(
      report.hosts[0]!.problems.some((p) => p.includes(service)),
      JSON.stringify(report.hosts[0]!.problems),
    );
  });
});
