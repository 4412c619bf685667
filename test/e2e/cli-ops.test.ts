import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StatusReport } from '../../src/lib/ops.ts';
import { bundle, runCli } from '../helpers/bundles.ts';
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
  const deploy = (inv: { file: string }, manifest: string, extra: string[] = []) => {
    const res = cli([
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
    ]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
  };

  before(async () => {
    fleet = await startSshdFleet(3);
    knownHosts = `${readFileSync(env.ssh.knownHosts, 'utf8')}${fleet.knownHosts}`;
    fleetInv = app.inventory(fleet.hosts);
    const v1 = app.manifestFile(app.version(1));
    const v2 = app.version(2);
    v2tag = v2.primary;
    deploy(fleetInv, v1);
    deploy(fleetInv, app.manifestFile(v2));
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
});
