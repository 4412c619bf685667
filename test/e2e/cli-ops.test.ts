import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StatusReport } from '../../src/lib/ops.ts';
import { bundle, runActionBundleAsync, runCli, runCliOnTty } from '../helpers/bundles.ts';
import { writerApp } from '../helpers/ops-fixture.ts';
import { type SshdFleet, startSshdFleet } from '../helpers/sshd-fleet.ts';
import { docker, testEnv } from '../helpers/testenv.ts';

/**
 * The day-2 verbs (status, logs, exec, lock, prune) from the CLI bundle, over SSH with pinned host keys, against one
 * host (the test sshd) and a three-host fleet (extra sshds on loopback ports, one dockerd), each host with its own
 * root and compose project.
 */
describe('lading status, logs, exec, lock and prune on one host and a three-host fleet', () => {
  const env = testEnv();
  const app = writerApp();
  let fleet: SshdFleet;
  let fleetInv: ReturnType<typeof app.inventory>;
  let single: ReturnType<typeof app.inventory>;
  let v1: string;
  let knownHosts: string;
  let v2tag = '';

  const hostFlags = (inv: { file: string }) => [
    '--inventory',
    inv.file,
    '--ssh-key',
    env.ssh.privateKey,
    '--known-hosts',
    knownHosts,
  ];
  const cli = (args: string[]) => runCli(args, { env: { GITHUB_ACTIONS: undefined } });
  const deployArgs = (inv: { file: string }, manifest: string, extra: string[] = []) => [
    'deploy',
    '--manifest',
    manifest,
    ...hostFlags(inv),
    '--health-timeout',
    '30',
    '--health-stable',
    '0',
    '--max-parallel',
    '3',
    ...extra,
  ];
  const deploy = (inv: { file: string }, manifest: string, extra: string[] = []) => {
    const res = cli(deployArgs(inv, manifest, extra));
    assert.equal(res.code, 0, res.stdout + res.stderr);
  };

  before(async () => {
    fleet = await startSshdFleet(3);
    knownHosts = `${readFileSync(env.ssh.knownHosts, 'utf8')}${fleet.knownHosts}`;
    fleetInv = app.inventory(fleet.hosts);
    single = app.inventory([`${env.ssh.user}@${env.ssh.host}:${env.ssh.port}`]);
    v1 = app.manifestFile(app.version(1));
    const v2 = app.version(2);
    v2tag = v2.primary;
    const v2file = app.manifestFile(v2);
    deploy(fleetInv, v1);
    deploy(fleetInv, v2file);
    deploy(single, v1);
    deploy(single, v2file);
  });
  after(async () => {
    await fleet?.stop();
    app.cleanup();
  });

  it('status: every host healthy on the current release, with containers, digests, who/when and a free lock (exit 0)', () => {
    const res = cli(['status', ...hostFlags(fleetInv), '--json']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const report = JSON.parse(res.stdout) as StatusReport;
    assert.equal(report.schema, 'lading.status/v1');
    assert.equal(report.ok, true);
    assert.equal(report.hosts.length, 3);
    for (const [i, h] of report.hosts.entries()) {
      assert.ok(h.host.startsWith(`${fleet.hosts[i]} (`), h.host);
      assert.equal(h.healthy, true, JSON.stringify(h));
      assert.equal(h.release?.tag, v2tag);
      assert.equal(h.release?.commit, '2222222000000000000000000000000000000000');
      assert.equal(h.release?.by, 'alice');
      assert.match(h.release?.at ?? '', /^\d{4}-\d\d-\d\dT/);
      assert.equal(h.releases.length, 2);
      assert.equal(h.lock, undefined);
      assert.deepEqual(h.drift, []);
      const [svc] = h.services;
      assert.equal(svc?.service, 'writer');
      const [c] = svc!.containers;
      assert.equal(c?.state, 'running');
      assert.equal(c?.restarts, 0);
      assert.ok((c?.uptime ?? -1) >= 0);
      assert.equal(`${app.name}@${c?.digest}`, svc?.pinned, 'the digest really run is the pinned one');
      assert.equal(c?.release, h.release?.id);
    }
    const human = cli(['status', ...hostFlags(fleetInv)]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /SERVICE\s+CONTAINER\s+STATE\s+HEALTH\s+RESTARTS\s+UP\s+DIGEST\s+RELEASE/);
    assert.match(human.stdout, /3 host\(s\) healthy/);
  });

  it('status: a broken host (container stopped), drift and an unreachable host are reported, exit 1', () => {
    const [h0, , h2] = fleetInv.entries;
    const [stopped] = app.containers(h0!.project);
    docker(['stop', '-t', '0', stopped!]);
    // a container of host 2's project that lading did not start (another compose directory)
    const stray = docker([
      'run',
      '-d',
      '--network',
      'none',
      '--label',
      `com.docker.compose.project=${h2!.project}`,
      '--label',
      'com.docker.compose.service=writer',
      '--label',
      'com.docker.compose.oneoff=False',
      '--label',
      'com.docker.compose.project.working_dir=/somewhere/else',
      `${app.name}@${JSON.parse(readFileSync(join(h2!.root, h2!.project, 'current', 'manifest.json'), 'utf8')).images[0].digest}`,
      '/bin/busybox',
      'sleep',
      '600',
    ]);
    const inv = { file: `${fleetInv.file}.broken.yml` };
    writeFileSync(
      inv.file,
      `${readFileSync(fleetInv.file, 'utf8')}- host: root@127.0.0.1:1\n  root: /srv/x\n  project: nowhere\n`,
    );
    try {
      const res = cli(['status', ...hostFlags(inv), '--json']);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      const report = JSON.parse(res.stdout) as StatusReport;
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.hosts.map((h) => [h.reachable, h.healthy]),
        [
          [true, false],
          [true, true],
          [true, true],
          [false, false],
        ],
      );
      assert.match(report.hosts[0]!.problems.join('\n'), /is exited/);
      assert.equal(report.hosts[0]!.services[0]!.containers[0]!.state, 'exited');
      assert.match(report.hosts[2]!.drift.join('\n'), /not started by lading \(compose directory \/somewhere\/else\)/);
      assert.match(report.hosts[3]!.error ?? '', /cannot connect to \[127\.0\.0\.1\]:1/);
      const human = cli(['status', ...hostFlags(inv)]);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /UNHEALTHY/);
      assert.match(human.stdout, /UNREACHABLE/);
      assert.match(human.stdout, /2 of 4 host\(s\) not healthy/);
    } finally {
      docker(['rm', '-f', stray]);
      docker(['start', stopped!]);
    }
  });

  it('logs --tail: the last lines of every host, each prefixed with host and container', () => {
    const res = cli(['logs', ...hostFlags(fleetInv), '--tail', '2']);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.equal(lines.length, 6, res.stdout);
    for (const h of fleet.hosts) {
      const mine = lines.filter((l) => l.startsWith(`[${h} (`) && / writer-1 \| tick \d+$/.test(l));
      assert.equal(mine.length, 2, `${h}: ${res.stdout}`);
    }
  });

  it('logs --follow streams lines while the containers write, and ends cleanly on Ctrl-C (SIGINT)', async () => {
    const child = spawn(
      process.execPath,
      [bundle('cli'), 'logs', ...hostFlags(fleetInv), '--follow', '--tail', '0', '--service', 'writer'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // new ticks (written after the follow began) arrive from every host while the command runs
    const deadline = Date.now() + 20_000;
    const seen = () =>
      fleet.hosts.every(
        (h) =>
          (out.match(new RegExp(`^\\[${h.replace(/[.]/g, '\\.')} \\([^)]*\\)\\] writer-1 \\| tick \\d+$`, 'gm')) ?? [])
            .length >= 3,
      );
    while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.ok(seen(), `streamed lines from every host:\n${out}\n${err}`);
    assert.equal(child.exitCode, null, 'still following');
    child.kill('SIGINT');
    const t0 = Date.now();
    const code = await exited;
    assert.equal(code, 0, err);
    assert.ok(Date.now() - t0 < 8000, 'ended promptly');
    // no docker logs reader is left behind on the hosts
    await new Promise((r) => setTimeout(r, 500));
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    const ids = fleetInv.entries.flatMap((e) => app.containers(e.project));
    for (const id of ids)
      assert.ok(!ps.split('\n').some((l) => l.includes('docker logs') && l.includes(id)), `a reader of ${id} is left`);
  });

  const hostArg = (i: number) => fleet.hosts[i]!;

  it("exec: a one-off container of the current release on one host, with its env; the exit code is the command's", () => {
    const res = cli([
      'exec',
      ...hostFlags(fleetInv),
      '--service',
      'writer',
      '--host',
      hostArg(1),
      '--',
      '/bin/busybox',
      'sh',
      '-c',
      'echo "$GREETING from $(/bin/busybox cat /srv/version.txt)"; exit 7',
    ]);
    assert.equal(res.code, 7, res.stderr);
    assert.equal(res.stdout.trim(), 'hello-from-the-release from v2');
    // the one-off container is gone, the service's container untouched
    assert.equal(app.containers(fleetInv.entries[1]!.project).length, 1);
  });

  it('exec on every host, in order; --running enters the running container; stdin reaches the command', () => {
    const all = cli([
      'exec',
      ...hostFlags(fleetInv),
      '--service',
      'writer',
      '--running',
      '--',
      '/bin/busybox',
      'cat',
      '/proc/1/cmdline',
    ]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      all.stderr.split('\n').filter((l) => l.startsWith('== ')),
      fleetInv.entries.map((e, i) => `== ${fleet.hosts[i]} (${e.project})`),
    );
    assert.equal((all.stdout.match(/while :; do/g) ?? []).length, 3, all.stdout);
    const piped = spawnSync(
      process.execPath,
      [bundle('cli'), 'exec', ...hostFlags(single), '--service', 'writer', '--', '/bin/busybox', 'tr', 'a-z', 'A-Z'],
      {
        input: 'piped through\n',
        encoding: 'utf8',
      },
    );
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stdout, 'PIPED THROUGH\n');
  });

  it('exec without a terminal gets no PTY; through a pseudo-terminal it gets one (one-off and --running)', () => {
    const plain = cli(['exec', ...hostFlags(single), '--service', 'writer', '--', '/bin/busybox', 'tty']);
    assert.equal(plain.code, 1);
    assert.match(plain.stdout, /not a tty/);
    for (const running of [[], ['--running']]) {
      // on a pseudo-terminal: stdin is a TTY, so exec asks for a PTY on the host
      const res = runCliOnTty([
        'exec',
        ...hostFlags(single),
        '--service',
        'writer',
        ...running,
        '--',
        '/bin/busybox',
        'sh',
        '-c',
        'tty && exit 3',
      ]);
      assert.equal(res.status, 3, `${running}: ${res.stdout}${res.stderr}`);
      assert.match(res.stdout, /\/dev\/pts\/\d+/, `${running}: ${res.stdout}`);
    }
  });

  it("lock status shows a held lock; release refuses another run's live lock unless forced and confirmed, and records it", () => {
    const { root, project } = fleetInv.entries[1]!;
    const lockFile = join(root, project, '.lock');
    const until = Math.floor(Date.now() / 1000) + 600;
    writeFileSync(lockFile, `${until} gh-999.1 build-box\n`);
    const status = cli(['lock', 'status', ...hostFlags(fleetInv), '--json']);
    assert.equal(status.code, 0, status.stderr);
    const held = JSON.parse(status.stdout) as Array<{ lock?: { owner: string; expired: boolean } }>;
    assert.deepEqual(
      held.map((h) => h.lock?.owner),
      [undefined, 'gh-999.1', undefined],
    );
    assert.equal(held[1]!.lock!.expired, false);
    // status shows the holder too
    const st = JSON.parse(cli(['status', ...hostFlags(fleetInv), '--json']).stdout) as StatusReport;
    assert.equal(st.hosts[1]!.lock?.owner, 'gh-999.1');
    // a deploy to that host meanwhile waits for it, then gives up
    const one = { file: `${fleetInv.file}.h1.yml` };
    writeFileSync(one.file, `- host: ${fleet.hosts[1]}\n  root: ${root}\n  project: ${project}\n`);
    const blocked = cli([
      'deploy',
      '--manifest',
      v1,
      ...hostFlags(one),
      '--lock-wait',
      '0',
      '--allow-downgrade',
      'true',
    ]);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stdout + blocked.stderr, /another deploy holds the lock: gh-999\.1/);
    const release = (...extra: string[]) =>
      cli(['lock', 'release', ...hostFlags(fleetInv), '--run-id', 'ops-test', ...extra]);
    let res = release();
    assert.equal(res.code, 1);
    assert.match(res.stdout, /not released: the lock is held by gh-999\.1/);
    res = release('--force');
    assert.equal(res.code, 1);
    assert.match(res.stdout, /not released: .*live until .*--confirm gh-999\.1/);
    res = release('--force', '--confirm', 'gh-998.1');
    assert.equal(res.code, 1);
    assert.ok(readFileSync(lockFile, 'utf8').includes('gh-999.1'), 'still held');
    res = release('--force', '--confirm', 'gh-999.1');
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /released: forced, confirmed for gh-999\.1/);
    assert.throws(() => readFileSync(lockFile), /ENOENT/);
    const history = readFileSync(join(root, project, 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      { action: history.at(-1)!.action, holder: history.at(-1)!.holder, run: history.at(-1)!.run },
      { action: 'lock-release', holder: 'gh-999.1', run: 'ops-test' },
    );
    // an expired lease goes with --force alone (one host)
    const sroot = single.entries[0]!;
    writeFileSync(
      join(sroot.root, sroot.project, '.lock'),
      `${Math.floor(Date.now() / 1000) - 5} gh-998.1 build-box\n`,
    );
    res = cli(['lock', 'release', ...hostFlags(single), '--force']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /released: the lease of gh-998\.1 ran out/);
  });

  it('prune --dry-run lists the releases and images that would go and the space; prune removes just those', () => {
    const { root, project } = single.entries[0]!;
    const v3 = app.version(3);
    deploy(single, app.manifestFile(v3));
    const releases = () => readdirSync(join(root, project, 'releases')).sort();
    const before = releases();
    assert.equal(before.length, 3);
    const v1ref = (JSON.parse(readFileSync(v1, 'utf8')) as { images: Array<{ ref: string }> }).images[0]!.ref;
    const v1id = docker(['image', 'inspect', '--format', '{{.Id}}', v1ref]);
    const dry = cli(['prune', ...hostFlags(single), '--keep-releases', '1', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const [plan] = JSON.parse(dry.stdout) as Array<{
      dryRun: boolean;
      plan: { releases: Array<{ id: string }>; images: Array<{ id: string }>; bytes: number; kept: string[] };
    }>;
    assert.equal(plan!.dryRun, true);
    assert.deepEqual(
      plan!.plan.releases.map((r) => r.id),
      before.slice(0, 2),
    );
    assert.deepEqual(plan!.plan.kept, [before[2]]);
    // v1's image goes; v2's stays: the fleet's containers still run it
    assert.deepEqual(
      plan!.plan.images.map((i) => i.id),
      [v1id],
    );
    assert.ok(plan!.plan.bytes > 0);
    const human = cli(['prune', ...hostFlags(single), '--keep-releases', '1', '--dry-run']);
    assert.match(human.stdout, /2 release\(s\), 1 image\(s\): would free up to \d/);
    assert.deepEqual(releases(), before, 'a dry run removes nothing');
    docker(['image', 'inspect', v1id]);
    const real = cli(['prune', ...hostFlags(single), '--keep-releases', '1']);
    assert.equal(real.code, 0, real.stdout + real.stderr);
    assert.deepEqual(releases(), [before[2]]);
    assert.equal(readlinkSync(join(root, project, 'current')), `releases/${before[2]}`);
    assert.throws(() => docker(['image', 'inspect', v1id]), /No such image/);
    const last = JSON.parse(
      readFileSync(join(root, project, 'history.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .at(-1)!,
    ) as Record<string, unknown>;
    assert.equal(last.action, 'prune');
    assert.deepEqual(last.pruned, before.slice(0, 2));
    // the fleet (another project on v2) still serves
    assert.equal(cli(['status', ...hostFlags(fleetInv)]).code, 0);
  });

  it('the deploy action runs the verbs as command: status, exec, lock-status and prune (dry-run), with a report output', async () => {
    const inputs = {
      inventory: readFileSync(single.file, 'utf8'),
      'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
      'known-hosts': knownHosts,
    };
    const status = await runActionBundleAsync('deploy', { inputs: { ...inputs, command: 'status' } });
    assert.equal(status.code, 0, status.stdout);
    assert.equal((JSON.parse(status.outputs.report!) as StatusReport).schema, 'lading.status/v1');
    assert.match(status.summary, /<td>healthy<\/td>/);
    const exec = await runActionBundleAsync('deploy', {
      inputs: {
        ...inputs,
        command: 'exec',
        service: 'writer',
        'exec-command': '["/bin/busybox", "sh", "-c", "echo migrated; exit 4"]',
      },
    });
    assert.equal(exec.code, 1);
    assert.match(exec.stdout, /migrated/);
    assert.match(exec.stdout, /::error::exec failed on .* with exit status 4/);
    const lock = await runActionBundleAsync('deploy', { inputs: { ...inputs, command: 'lock-status' } });
    assert.equal(lock.code, 0, lock.stdout);
    assert.match(lock.stdout, /: free/);
    const prune = await runActionBundleAsync('deploy', { inputs: { ...inputs, command: 'prune', 'dry-run': 'true' } });
    assert.equal(prune.code, 0, prune.stdout);
    assert.equal((JSON.parse(prune.outputs.report!) as Array<{ dryRun: boolean }>)[0]!.dryRun, true);
  });

  const currentOf = (e: { root: string; project: string }) => readlinkSync(join(e.root, e.project, 'current'));

  it('a failing pre-deploy (migration) hook aborts before any switch: every host keeps serving the previous release', () => {
    const before = fleetInv.entries.map(currentOf);
    const v4 = app.manifestFile(app.version(4));
    const res = cli(
      deployArgs(fleetInv, v4, [
        '--pre-deploy',
        '["/bin/busybox", "sh", "-c", "echo migrating with $GREETING; exit 3"]',
      ]),
    );
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.deepEqual(
      res.stdout
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('hook '))
        .map((l) => l.split('\t')[1]),
      ['failed', 'skipped', 'skipped'],
    );
    assert.match(res.stdout, /hook pre-deploy failed on .*exited with status 3/);
    // its output is in the first host's log group
    assert.match(res.stderr, /pre-deploy \| migrating with hello-from-the-release/);
    assert.deepEqual(fleetInv.entries.map(currentOf), before);
    const report = JSON.parse(cli(['status', ...hostFlags(fleetInv), '--json']).stdout) as StatusReport;
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.hosts.map((h) => h.release?.tag),
      [v2tag, v2tag, v2tag],
    );
    const history = readFileSync(
      join(fleetInv.entries[0]!.root, fleetInv.entries[0]!.project, 'history.jsonl'),
      'utf8',
    );
    const hook = history
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.action === 'hook')
      .at(-1)!;
    assert.equal(hook.hook, 'pre-deploy');
    assert.equal(hook.result, 'failure');
    assert.match(String(hook.error), /exited with status 3/);
  });

  it('hooks run in order: pre-deploy once on the first host, pre- and post-switch on each host, post-deploy once, the runner hook before and after', () => {
    const v5 = app.manifestFile(app.version(5));
    const dir = mkdtempSync(join(tmpdir(), 'lading-runner-hook-'));
    const script = join(dir, 'notify.sh');
    writeFileSync(
      script,
      `#!/bin/sh\necho "$LADING_HOOK $LADING_TAG \${LADING_RESULT:-} $LADING_HOSTS" >> "${dir}/calls"\necho notified\n`,
      { mode: 0o755 },
    );
    const say = (n: string) => `["/bin/busybox", "sh", "-c", "echo ran ${n} on $(/bin/busybox cat /srv/version.txt)"]`;
    const res = cli(
      deployArgs(fleetInv, v5, [
        '--pre-deploy',
        say('pre-deploy'),
        '--pre-switch',
        say('pre-switch'),
        '--post-switch',
        say('post-switch'),
        '--post-deploy',
        say('post-deploy'),
        '--runner-hook',
        script,
      ]),
    );
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const ran = res.stderr
      .split('\n')
      .flatMap((l) => /\] (\S+) \| ran \S+ on (v\d)/.exec(l)?.slice(1, 3).join(' ') ?? []);
    assert.deepEqual(
      ran.filter((r) => r.startsWith('pre-deploy')),
      ['pre-deploy v5'],
      'pre-deploy once, in the new release',
    );
    assert.equal(ran.filter((r) => r.startsWith('pre-switch')).length, 3);
    assert.equal(ran.filter((r) => r.startsWith('post-switch')).length, 3);
    assert.deepEqual(ran.at(-1), 'post-deploy v5');
    assert.equal(ran[0], 'pre-deploy v5');
    assert.equal(res.stdout.match(/^hook \S+\t.*\tok\t/gm)?.length, 8, res.stdout);
    const calls = readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
    assert.equal(calls.length, 2);
    assert.match(calls[0]!, /^pre-deploy v5-abcdef0 +root@/);
    assert.match(calls[1]!, /^post-deploy v5-abcdef0 success root@/);
    assert.match(res.stderr, /runner-hook post-deploy \| notified/);
    for (const e of fleetInv.entries) assert.match(currentOf(e), /v5-abcdef0$/);
  });
});
