import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Manifest } from '../../src/lib/manifest.ts';
import { type ActionRun, runActionBundleAsync } from '../helpers/bundles.ts';
import { fleetApp } from '../helpers/fleet-fixture.ts';
import { type SshdFleet, startSshdFleet } from '../helpers/sshd-fleet.ts';
import { testEnv } from '../helpers/testenv.ts';

interface HostOut {
  host: string;
  status: string;
  error?: string;
}

describe('dist/deploy to a fleet: several sshd on loopback, rolling batches of 2, one host failing', () => {
  const env = testEnv();
  const app = fleetApp();
  let fleet: SshdFleet;
  let manifest: Manifest;
  before(async () => {
    fleet = await startSshdFleet(3);
    manifest = app.version(1);
  });
  after(async () => {
    await fleet?.stop();
    app.cleanup();
  });

  const deploy = (inventory: string, extra: Record<string, string>): Promise<ActionRun> =>
    runActionBundleAsync('deploy', {
      inputs: {
        manifest: JSON.stringify(manifest),
        inventory,
        'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
        'known-hosts': fleet.knownHosts,
        'max-parallel': '2',
        'health-timeout': '20',
        'health-stable': '0',
        ...extra,
      },
      env: { GITHUB_RUN_ID: '91', GITHUB_RUN_ATTEMPT: '1' },
    });
  const rootOf = (inventory: string, i: number) => (parse(inventory) as Array<{ root: string; project: string }>)[i]!;
  const served = (inventory: string, i: number) => {
    const { root, project } = rootOf(inventory, i);
    const link = join(root, project, 'current');
    return existsSync(link) ? readlinkSync(link) : undefined;
  };

  it('continue: every healthy host is deployed, the failing one is reported per host in outputs, summary and log', async () => {
    // host 1's root cannot be created (nothing can be made under /proc), so it fails its first step
    const inventory = app.inventory(fleet.hosts, { 1: { root: '/proc/lading-cannot-write-here' } });
    const run = await deploy(inventory, { 'fail-fast': 'false' });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const hosts = JSON.parse(run.outputs.hosts!) as HostOut[];
    assert.deepEqual(
      hosts.map((h) => h.status),
      ['deployed', 'failed', 'deployed'],
    );
    assert.ok(hosts[1]!.host.startsWith(fleet.hosts[1]!));
    assert.match(hosts[1]!.error ?? '', /cannot create .*proc/);
    assert.equal(run.outputs.status, 'failure');
    for (const i of [0, 2]) assert.match(served(inventory, i) ?? '', /v1-abcdef0$/);
    // the job summary has one row per host with its result, the step's error names the failed host
    for (const h of hosts) assert.ok(run.summary.includes(h.host.replace(/ .*/, '')), `${h.host} in the summary`);
    assert.equal((run.summary.match(/<td>deployed<\/td>/g) ?? []).length, 2);
    assert.match(run.summary, /<td>failed<\/td>/);
    assert.match(run.stdout, /::error::deploy failed on 1 of 3 host\(s\):/);
    // hosts of a parallel batch log in one group each, printed whole: no line of another host inside a group
    const groups = [...run.stdout.matchAll(/::group::(.*)\n([\s\S]*?)::endgroup::/g)];
    assert.equal(groups.length, 3);
    for (const [, title, body] of groups) {
      const label = / → (\S+)/.exec(title!)![1]!;
      const tagged = body!.split('\n').filter((l) => /^\[[^\]]+\] /.test(l));
      assert.ok(tagged.length > 0, `lines in the group of ${label}`);
      for (const l of tagged) assert.ok(l.startsWith(`[${label}`), `${l} inside the group of ${label}`);
    }
  });

  it('fail-fast: a host that cannot be reached stops the rollout before the next batch', async () => {
    // batch 1 = hosts 0 and a port nothing listens on; batch 2 (the other two) is never started
    const closed = `root@127.0.0.1:1`;
    const hosts = [fleet.hosts[0]!, closed, fleet.hosts[1]!, fleet.hosts[2]!];
    const inventory = app.inventory(hosts);
    const run = await deploy(inventory, {});
    assert.equal(run.code, 1);
    const out = JSON.parse(run.outputs.hosts!) as HostOut[];
    assert.deepEqual(
      out.map((h) => h.status),
      ['deployed', 'failed', 'skipped', 'skipped'],
    );
    assert.match(out[1]!.error ?? '', /cannot connect to \[127\.0\.0\.1\]:\d+/);
    assert.match(served(inventory, 0) ?? '', /v1-abcdef0$/);
    for (const i of [2, 3]) assert.equal(served(inventory, i), undefined, `host ${i} untouched`);
    assert.equal((run.summary.match(/<td>skipped<\/td>/g) ?? []).length, 2);
  });

  it('hosts behind a jump host share one connection to it', async () => {
    // fleet host 0 is the bastion; hosts 1 and 2 are reached through it, in parallel
    const bastionLog = join(env.root, 'logs', `fleet-${fleet.ports[0]}.log`);
    const logins = () => (readFileSync(bastionLog, 'utf8').match(/Accepted publickey/g) ?? []).length;
    const before = logins();
    const inventory = app.inventory(fleet.hosts.slice(1));
    const run = await deploy(inventory, { 'jump-host': fleet.hosts[0]! });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(
      (JSON.parse(run.outputs.hosts!) as HostOut[]).map((h) => h.status),
      ['deployed', 'deployed'],
    );
    assert.equal(logins() - before, 1, 'one login on the jump host for both hosts');
  });
});
