import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Connector, HostSession } from '../../src/io/host-session.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';
import { runDeployStage, runRollbackStage } from '../../src/stages/deploy.ts';
import { runSwarmDeployStage } from '../../src/stages/swarm.ts';
import { HOST_STEPS, OPS_STEPS, SWARM_STEPS, step } from '../../src/stages/host/steps.ts';
import { isFactLine, parseFacts } from '../../src/lib/deploy-plan.ts';
import { parseImageFacts } from '../../src/lib/layer-index.ts';
import HOST_SCRIPT from '../../src/lib/remote/host.sh.ts';
import SWARM_SCRIPT from '../../src/lib/remote/swarm.sh.ts';
import OPS_SCRIPT from '../../src/lib/remote/ops.sh.ts';
import { hostDeps } from '../../src/stages/host/deps.ts';
import type { HostStageOptions } from '../../src/stages/host/types.ts';
import { readHostSettings } from '../../src/settings/host.ts';

// The deploy orchestration on fake hosts: no dockerd, no sshd. A fake host keeps what a real one keeps (releases with
// their manifest, current, history, the lock) and answers host.sh's steps; a test makes chosen steps fail.

const manifest = (primary: string, created: string, sha = primary.slice(1).repeat(40)): Manifest =>
  createManifest({
    source: { repository: 'a/b', ref: 'refs/heads/main', sha, created },
    tags: [primary],
    primary,
    channel: 'main',
    images: [
      {
        id: 'web',
        services: ['web'],
        name: 'r.test/web',
        tags: [primary],
        digest: `sha256:${'a'.repeat(64)}`,
        ref: `r.test/web@sha256:${'a'.repeat(64)}`,
        transport: { kind: 'registry', registry: 'r.test', provider: 'generic' },
      },
    ],
    compose: { project: 'shop', files: [composeFile('docker-compose.yml', 'services:\n  web: {image: x}\n')], env: {} },
  });

type Fail = (step: string, env: Record<string, string>) => string | undefined;

class FakeHost implements HostSession {
  readonly releases = new Map<string, Manifest>();
  readonly history: Array<Record<string, unknown>> = [];
  readonly steps: string[] = [];
  current?: string;
  lock?: string;
  closed = 0;
  fail: Fail = () => undefined;
  /** Swarm: what the update of a release ends in (swarm_state after swarm_deploy). */
  update: (release: string) => 'completed' | 'rollback_completed' = () => 'completed';
  private deployed = '';

  constructor(readonly label: string) {}

  /** A release already on the host (and current). */
  has(release: string, m: Manifest): this {
    this.releases.set(release, m);
    this.current = release;
    return this;
  }

  async exec(script: string, opts: { env?: Record<string, string> }) {
    const env = opts.env ?? {};
    const call = [...script.matchAll(/^lading_(?:step|swarm|ops) ([a-z_ ]+)$/gm)].at(-1);
    assert.ok(call, 'a step call');
    const then = script.slice(call.index! + call[0].length);
    let stdout = '';
    for (const name of call[1]!.trim().split(' ')) {
      this.steps.push(name);
      const why = this.fail(name, env);
      if (why) return { code: 1, stdout, stderr: why };
      const out = this.step(name, env, then);
      if (typeof out === 'object') return { code: 1, stdout, stderr: out.error };
      stdout += out;
    }
    return { code: 0, stdout, stderr: '' };
  }

  private step(name: string, env: Record<string, string>, then: string): string | { error: string } {
    const release = env.LADING_RELEASE ?? '';
    switch (name) {
      case 'lock':
        if (this.lock && this.lock !== env.LADING_OWNER)
          return { error: `another deploy holds the lock: ${this.lock}, until 9 (epoch); waited 0s` };
        this.lock = env.LADING_OWNER;
        return `lock taken by ${env.LADING_OWNER}\n`;
      case 'unlock':
        if (this.lock === env.LADING_OWNER) this.lock = undefined;
        return '';
      case 'facts':
      case 'swarm_facts':
        return [
          `compose=${name === 'facts' ? 'docker compose' : ''}`,
          `current=${this.current ?? ''}`,
          ...[...this.releases.keys()].map((r) => `release=${r}`),
          '',
        ].join('\n');
      case 'history_read':
        return this.history.map((h) => `${JSON.stringify(h)}\n`).join('');
      case 'release_manifest': {
        const m = this.releases.get(release);
        return m ? JSON.stringify(m) : { error: `release ${release} has no manifest.json` };
      }
      case 'mkrelease': {
        for (const f of then.matchAll(/LADING_FILE_NAME='([^']*)'[\s\S]*?<<'LADING_EOF'\n([\s\S]*?)LADING_EOF/g)) {
          if (f[1] === 'manifest.json') this.releases.set(release, JSON.parse(Buffer.from(f[2]!, 'base64').toString()));
        }
        return '';
      }
      case 'switch':
        this.current = release;
        return '';
      case 'history':
        this.history.push(JSON.parse(env.LADING_HISTORY_LINE!));
        return '';
      case 'swarm_deploy':
        this.deployed = release;
        return '';
      case 'swarm_state': {
        const image = `r.test/web@sha256:${'a'.repeat(64)}`;
        const service = {
          ID: 's1',
          Version: { Index: 2 },
          Spec: {
            Name: 'shop_web',
            Mode: { Replicated: { Replicas: 1 } },
            TaskTemplate: { ContainerSpec: { Image: image } },
          },
          UpdateStatus: { State: this.update(this.deployed), Message: 'update rolled back' },
        };
        const task = {
          ID: 't1',
          Name: 'shop_web.1',
          Image: image,
          Node: 'n1',
          DesiredState: 'Running',
          CurrentState: 'Running 1 second ago',
          Error: '',
        };
        return `${JSON.stringify([service])}\n---\n${JSON.stringify(task)}\n`;
      }
      case 'swarm_nodes':
        return 'n1\n';
      default: // pull, up, health, prune, rolling_undrain, proxy_forget, check_paths, hooks: nothing to keep
        return '';
    }
  }

  async upload(): Promise<void> {}
  async uploadFile(): Promise<void> {}
  close(): void {
    this.closed++;
  }
}

/** Hosts by label, a connector over them, and the order in which hosts were connected. */
function fleet(...hosts: FakeHost[]) {
  const byLabel = new Map(hosts.map((h) => [h.label, h]));
  const order: string[] = [];
  const connector: Connector = async (spec) => {
    order.push(spec.label);
    const h = byLabel.get(spec.label);
    if (!h) throw new Error(`${spec.label}: connection refused`);
    return h;
  };
  return { hosts, connector, order };
}

const quiet: Reporter = { info: () => {}, warning: () => {}, group: (_n, fn) => fn(), secret: () => {} };

const NOW = new Date('2026-03-01T12:00:00Z');

/** A stage's options as the edge gives them: the inputs parsed into typed settings (src/settings/host.ts). */
async function stage(connector: Connector, inputs: Record<string, string>): Promise<HostStageOptions> {
  const all: Record<string, string> = {
    'ssh-key': 'a key',
    'known-hosts': 'a host key',
    root: '/srv',
    'run-id': 'run-1',
    ...inputs,
  };
  return {
    settings: await readHostSettings((n) => all[n] || undefined, {}),
    reporter: quiet,
    // fakes for every adapter: no registry is asked for logins, no store or timer is touched
    deps: hostDeps(connector, {
      now: () => NOW,
      logins: async () => ({ LADING_LOGIN_COUNT: '0' }),
      shipper: () => assert.fail('no registry-less image here'),
      sleep: async () => {},
    }),
  };
}

const labels = (n: number) => Array.from({ length: n }, (_, i) => new FakeHost(`h${i + 1}`));
const failHealth: Fail = (step) => (step === 'health' ? 'web is unhealthy' : undefined);

describe('deploy orchestration on fake hosts', () => {
  const v2 = manifest('v2', '2026-02-02T00:00:00Z');
  const v1 = manifest('v1', '2026-01-01T00:00:00Z');

  it('deploys every host in host order: lock + facts in one round trip, switch/history/prune/unlock in one', async () => {
    const f = fleet(...labels(3));
    const res = await runDeployStage({ ...(await stage(f.connector, { hosts: 'h1,h2,h3' })), manifest: v2 });
    assert.equal(res.ok, true);
    assert.deepEqual(f.order, ['h1', 'h2', 'h3']);
    for (const h of f.hosts) {
      assert.equal(h.current, res.release);
      assert.equal(h.lock, undefined, 'unlocked');
      assert.equal(h.closed, 1, 'closed once');
      assert.deepEqual(
        h.history.map((e) => [e.action, e.result, e.run]),
        [['deploy', 'success', 'run-1']],
      );
      assert.deepEqual(h.steps.slice(0, 2), ['lock', 'facts']);
      assert.deepEqual(h.steps.slice(-4), ['switch', 'history', 'prune', 'unlock']);
    }
  });

  it('the canary goes first and alone; then the rest in batches of max-parallel', async () => {
    const f = fleet(...labels(5));
    const res = await runDeployStage({
      ...(await stage(f.connector, { hosts: 'h1,h2,h3,h4,h5', canary: '1', 'max-parallel': '2' })),
      manifest: v2,
    });
    assert.equal(res.ok, true);
    assert.deepEqual(f.order, ['h1', 'h2', 'h3', 'h4', 'h5']);
    assert.deepEqual(
      res.hosts.map((h) => h.host),
      ['h1', 'h2', 'h3', 'h4', 'h5'],
      'results in host order',
    );
  });

  it('a failed canary stops the rollout: no other host is touched', async () => {
    const [h1, ...rest] = labels(4);
    h1!.fail = (step) => (step === 'pull' ? 'pull access denied' : undefined);
    const f = fleet(h1!, ...rest);
    const res = await runDeployStage({
      ...(await stage(f.connector, { hosts: 'h1,h2,h3,h4', canary: '1', 'fail-fast': 'false' })),
      manifest: v2,
    });
    assert.equal(res.ok, false);
    assert.deepEqual(f.order, ['h1']);
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['failed', 'skipped', 'skipped', 'skipped'],
    );
    assert.match(res.hosts[1]!.error!, /a canary host failed/);
    assert.match(res.hosts[0]!.error!, /step pull failed: pull access denied/);
    assert.equal(h1!.lock, undefined, 'the failed host is unlocked');
  });

  it('fail-fast: a failed batch stops the next one', async () => {
    const hosts = labels(4);
    hosts[1]!.fail = failHealth;
    const f = fleet(...hosts);
    const res = await runDeployStage({
      ...(await stage(f.connector, {
        hosts: 'h1,h2,h3,h4',
        'max-parallel': '2',
        'fail-fast': 'true',
        rollback: 'false',
      })),
      manifest: v2,
    });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['deployed', 'failed', 'skipped', 'skipped'],
    );
    assert.deepEqual(f.order.sort(), ['h1', 'h2']);
    assert.match(res.hosts[2]!.error!, /over the error budget of 0/);
  });

  it('without fail-fast every batch runs', async () => {
    const hosts = labels(3);
    hosts[0]!.fail = failHealth;
    const f = fleet(...hosts);
    const res = await runDeployStage({
      ...(await stage(f.connector, { hosts: 'h1,h2,h3', 'fail-fast': 'false', rollback: 'false' })),
      manifest: v2,
    });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['failed', 'deployed', 'deployed'],
    );
    assert.equal(res.ok, false);
  });

  it('max-failures: the rollout goes on until the error budget is spent, then stops', async () => {
    const hosts = labels(5);
    hosts[0]!.fail = failHealth;
    hosts[1]!.fail = failHealth;
    const f = fleet(...hosts);
    const res = await runDeployStage({
      ...(await stage(f.connector, { hosts: 'h1,h2,h3,h4,h5', 'max-failures': '1', rollback: 'false' })),
      manifest: v2,
    });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['failed', 'failed', 'skipped', 'skipped', 'skipped'],
    );
    assert.match(res.hosts[2]!.error!, /2 host\(s\) failed, over the error budget of 1/);
  });

  it('a failed health gate rolls the host back to its previous release and records both', async () => {
    const h = new FakeHost('h1').has('20260101-000000-v1', v1);
    let gates = 0;
    h.fail = (step) => (step === 'health' && gates++ === 0 ? 'web is unhealthy' : undefined);
    const f = fleet(h);
    const res = await runDeployStage({ ...(await stage(f.connector, { hosts: 'h1' })), manifest: v2 });
    assert.equal(res.ok, false);
    assert.equal(res.hosts[0]!.status, 'rolled-back');
    assert.match(res.hosts[0]!.error!, /web is unhealthy/);
    assert.equal(h.current, '20260101-000000-v1', 'current never switched');
    assert.deepEqual(
      h.history.map((e) => [e.action, e.result, e.release, e.previous]),
      [
        ['deploy', 'failure', res.release, '20260101-000000-v1'],
        ['auto-rollback', 'success', '20260101-000000-v1', res.release],
      ],
    );
    assert.equal(h.lock, undefined);
  });

  it('rollback: false leaves the failed release where it failed (no auto-rollback)', async () => {
    const h = new FakeHost('h1').has('20260101-000000-v1', v1);
    h.fail = failHealth;
    const res = await runDeployStage({
      ...(await stage(fleet(h).connector, { hosts: 'h1', rollback: 'false' })),
      manifest: v2,
    });
    assert.equal(res.hosts[0]!.status, 'failed');
    assert.deepEqual(
      h.history.map((e) => e.action),
      ['deploy'],
    );
  });

  it('refuses to deploy an older build of the same channel over a newer one, and changes nothing', async () => {
    const h = new FakeHost('h1').has('20260202-000000-v2', v2);
    const res = await runDeployStage({ ...(await stage(fleet(h).connector, { hosts: 'h1' })), manifest: v1 });
    assert.equal(res.hosts[0]!.status, 'failed');
    assert.match(res.hosts[0]!.error!, /refusing to downgrade: v1 .* is older than v2/);
    assert.ok(!h.steps.includes('mkrelease'), 'no release dir made');
    assert.equal(h.current, '20260202-000000-v2');
    assert.equal(h.lock, undefined);
  });

  it('allow-downgrade deploys the older build', async () => {
    const h = new FakeHost('h1').has('20260202-000000-v2', v2);
    const res = await runDeployStage({
      ...(await stage(fleet(h).connector, { hosts: 'h1', 'allow-downgrade': 'true' })),
      manifest: v1,
    });
    assert.equal(res.hosts[0]!.status, 'deployed');
  });

  it('a host locked by another deploy fails with the holder named, and its lock is left alone', async () => {
    const h = new FakeHost('h1');
    h.lock = 'gh-99.1-other';
    const res = await runDeployStage({ ...(await stage(fleet(h).connector, { hosts: 'h1' })), manifest: v2 });
    assert.equal(res.hosts[0]!.status, 'failed');
    assert.match(res.hosts[0]!.error!, /another deploy holds the lock: gh-99.1-other/);
    assert.equal(h.lock, 'gh-99.1-other', "the other deploy's lock stays");
    assert.ok(!h.steps.includes('mkrelease'));
    assert.equal(h.closed, 1);
  });

  it('an unreachable host fails alone; the others deploy', async () => {
    const f = fleet(new FakeHost('h1'), new FakeHost('h3'));
    const res = await runDeployStage({
      ...(await stage(f.connector, { hosts: 'h1,h2,h3', 'fail-fast': 'false' })),
      manifest: v2,
    });
    assert.deepEqual(
      res.hosts.map((h) => h.status),
      ['deployed', 'failed', 'deployed'],
    );
    assert.match(res.hosts[1]!.error!, /connection refused/);
  });
});

describe('rollback orchestration on fake hosts', () => {
  const v1 = manifest('v1', '2026-01-01T00:00:00Z');
  const v2 = manifest('v2', '2026-02-02T00:00:00Z');
  const twoReleases = () => {
    const h = new FakeHost('h1').has('20260101-000000-v1', v1).has('20260202-000000-v2', v2);
    for (const release of h.releases.keys()) h.history.push({ action: 'deploy', result: 'success', release });
    return h;
  };

  it('goes back to the previous release: switch and history in one round trip, unlocked after', async () => {
    const h = twoReleases();
    const res = await runRollbackStage(await stage(fleet(h).connector, { hosts: 'h1', project: 'shop' }));
    assert.equal(res.ok, true, res.hosts[0]!.error);
    assert.equal(res.release, '20260101-000000-v1');
    assert.equal(h.current, '20260101-000000-v1');
    assert.deepEqual(
      h.history.slice(2).map((e) => [e.action, e.result, e.previous]),
      [['rollback', 'success', '20260202-000000-v2']],
    );
    assert.equal(h.lock, undefined);
  });

  it('a rollback whose health gate fails brings the current release back up and records the failure', async () => {
    const h = twoReleases();
    let gates = 0;
    h.fail = (step) => (step === 'health' && gates++ === 0 ? 'web is unhealthy' : undefined);
    const res = await runRollbackStage(await stage(fleet(h).connector, { hosts: 'h1', project: 'shop' }));
    assert.equal(res.ok, false);
    assert.equal(h.current, '20260202-000000-v2');
    assert.deepEqual(
      h.history.slice(2).map((e) => [e.action, e.result]),
      [['rollback', 'failure']],
    );
    assert.deepEqual(
      h.steps.slice(-6),
      ['release_manifest', 'rolling_undrain', 'up', 'proxy_forget', 'health', 'unlock'],
      'the current release is brought back up the way a deploy brings it up (bringUp: here a recreate release)',
    );
  });

  it('a host with nothing to go back to fails and says so', async () => {
    const h = new FakeHost('h1').has('20260202-000000-v2', v2);
    const res = await runRollbackStage(await stage(fleet(h).connector, { hosts: 'h1', project: 'shop' }));
    assert.equal(res.hosts[0]!.status, 'failed');
    assert.ok(res.hosts[0]!.error);
    assert.equal(h.lock, undefined);
  });
});

describe('swarm deploy on a fake manager: the same flow, the swarm driver', () => {
  const v1 = manifest('v1', '2026-01-01T00:00:00Z');
  const v2 = manifest('v2', '2026-02-02T00:00:00Z');

  it('refuses a downgrade after facts + lock in one round trip, and unlocks', async () => {
    const m = new FakeHost('m1').has('20260202-000000-v2', v2);
    const res = await runSwarmDeployStage({
      ...(await stage(fleet(m).connector, { target: 'swarm', hosts: 'm1', 'health-timeout': '1' })),
      manifest: v1,
    });
    assert.equal(res.ok, false);
    assert.match(res.hosts[0]!.error!, /refusing to downgrade/);
    assert.deepEqual(m.steps.slice(0, 2), ['swarm_facts', 'lock']);
    assert.equal(m.lock, undefined);
    assert.ok(!m.steps.includes('swarm_deploy'));
  });

  it('a failing pre-deploy hook runs on the manager in the new image, before docker stack deploy, which never runs; recorded, unlocked', async () => {
    const m = new FakeHost('m1').has('20260101-000000-v1', v1);
    let hook: Record<string, string> | undefined;
    m.fail = (step, env) => {
      if (step !== 'ops_swarm_hook') return undefined;
      hook = env;
      return 'migrating…\nlading: hook pre-deploy exited with status 3';
    };
    const res = await runSwarmDeployStage({
      ...(await stage(fleet(m).connector, { target: 'swarm', hosts: 'm1', 'pre-deploy': 'migrate --all' })),
      manifest: v2,
    });
    assert.equal(res.ok, false);
    assert.match(res.hosts[0]!.error!, /hook pre-deploy failed on m1: hook pre-deploy exited with status 3/);
    assert.deepEqual(
      res.hooks?.map((h) => [h.hook, h.ok]),
      [['pre-deploy', false]],
    );
    assert.ok(m.steps.indexOf('mkrelease') < m.steps.indexOf('pull'), m.steps.join(' '));
    assert.ok(m.steps.indexOf('pull') < m.steps.indexOf('ops_swarm_hook'), m.steps.join(' '));
    assert.ok(!m.steps.includes('swarm_deploy') && !m.steps.includes('switch'), m.steps.join(' '));
    assert.equal(m.current, '20260101-000000-v1');
    assert.equal(m.lock, undefined);
    assert.deepEqual(
      [hook?.LADING_HOOK, hook?.LADING_SERVICE, hook?.LADING_HOOK_IMAGE, hook?.LADING_HOOK_NETWORKS],
      ['pre-deploy', 'web', v2.images[0]!.ref, 'shop_default'],
    );
    assert.deepEqual([hook?.LADING_ARGC, hook?.LADING_ARG_1, hook?.LADING_ARG_2], ['2', 'migrate', '--all']);
    const last = m.history.at(-1)!;
    assert.deepEqual([last.action, last.hook, last.result], ['hook', 'pre-deploy', 'failure']);
  });

  it('deploys: the stack converges, then switch, history and prune in one round trip; unlocked', async () => {
    const m = new FakeHost('m1').has('20260101-000000-v1', v1);
    const res = await runSwarmDeployStage({
      ...(await stage(fleet(m).connector, { target: 'swarm', hosts: 'm1', 'health-timeout': '1' })),
      manifest: v2,
    });
    assert.equal(res.ok, true, res.hosts[0]!.error);
    assert.equal(m.current, res.release);
    assert.deepEqual(m.steps.slice(-4), ['switch', 'history', 'prune', 'unlock']);
    assert.deepEqual(
      m.history.map((e) => [e.action, e.result]),
      [['deploy', 'success']],
    );
  });

  it('an update swarm rolled back: the previous release is redeployed and recorded, the step fails', async () => {
    const m = new FakeHost('m1').has('20260101-000000-v1', v1);
    m.update = (release) => (release === '20260101-000000-v1' ? 'completed' : 'rollback_completed');
    const res = await runSwarmDeployStage({
      ...(await stage(fleet(m).connector, { target: 'swarm', hosts: 'm1', 'health-timeout': '1' })),
      manifest: v2,
    });
    assert.equal(res.ok, false);
    assert.equal(res.hosts[0]!.status, 'rolled-back');
    assert.match(res.hosts[0]!.error!, /swarm rolled the update back/);
    assert.equal(m.current, '20260101-000000-v1');
    assert.deepEqual(
      m.history.map((e) => [e.action, e.result, e.release]),
      [
        ['deploy', 'failure', res.release],
        ['auto-rollback', 'success', '20260101-000000-v1'],
      ],
    );
    assert.equal(m.lock, undefined);
  });

  it('a stack locked by another deploy is left alone and the step fails naming the holder', async () => {
    const m = new FakeHost('m1');
    m.lock = 'gh-7.1-other';
    const res = await runSwarmDeployStage({
      ...(await stage(fleet(m).connector, { target: 'swarm', hosts: 'm1', 'health-timeout': '1' })),
      manifest: v2,
    });
    assert.match(res.hosts[0]!.error!, /another deploy holds the lock: gh-7.1-other/);
    assert.equal(m.lock, 'gh-7.1-other');
  });
});

describe('the step names', () => {
  /** The names a dispatcher function's case arms run as step_<name>. */
  const arms = (script: string, fn: string): string[] => {
    const body = new RegExp(`^${fn}\\(\\) \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(script)?.[1] ?? '';
    return [...body.matchAll(/^\s+([a-z_][a-z_ |]*)\)/gm)].flatMap((m) => m[1]!.split('|').map((n) => n.trim()));
  };

  it("are host.sh's lading_one, swarm.sh's lading_swarm and ops.sh's lading_ops arms, no more, no fewer", () => {
    assert.deepEqual([...HOST_STEPS].sort(), arms(HOST_SCRIPT, 'lading_one').sort());
    assert.deepEqual([...SWARM_STEPS].sort(), arms(SWARM_SCRIPT, 'lading_swarm').sort());
    assert.deepEqual([...OPS_STEPS].sort(), arms(OPS_SCRIPT, 'lading_ops').sort());
  });

  it('a call naming a step the script does not have fails before anything is sent', async () => {
    const h = new FakeHost('h1');
    await assert.rejects(
      step(h, 'lock swarm_state', {}, { host: 'h1', reporter: quiet, timeoutMs: 1000 }),
      /h1: no host step named swarm_state \(lading_step\)/,
    );
    assert.deepEqual(h.steps, []);
  });
});

describe('the step outputs, parsed in src/lib', () => {
  it('facts: compose flavour, current release, releases (sorted); the fact lines are not log material', () => {
    const out = 'lock taken by x\ncompose=docker compose\ncurrent=r2\nrelease=r2\nrelease=r1\n';
    assert.deepEqual(parseFacts(out), { compose: 'docker compose', current: 'r2', releases: ['r1', 'r2'] });
    assert.deepEqual(
      out.split('\n').filter((l) => l && !isFactLine(l)),
      ['lock taken by x'],
    );
  });
  it('image_facts: present images, zstd, containerd, layer chains', () => {
    const f = parseImageFacts('present sha256:aa\nzstd yes\ncontainerd no\nchain ["sha256:1"]\nnoise\n');
    assert.deepEqual([...f.present], ['sha256:aa']);
    assert.equal(f.zstd, true);
    assert.equal(f.containerd, false);
    assert.equal(f.chains.size, 1);
  });
});
