// Swarm deploy and rollback wall time over SSH, against compose deploy and rollback measured in the same run on the
// same test environment (bash scripts/testenv.sh up first). Prints medians, ratios swarm/compose and where the swarm
// run's time goes (SSH connect, each remote step), asserts nothing:
//   npx tsx bench/swarm.bench.ts [rounds]
// Each round deploys v1, then v2, then `rollback --to previous`, with compose (the test sshd's dockerd) and with
// swarm (the test swarm manager, driven through the same sshd with docker-host). "served" is the time from the
// rollback's start until the app answers with the old content (probed every 100 ms).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostSession } from '../src/io/host-session.ts';
import { stderrReporter } from '../src/io/reporter.ts';
import { sshConnector } from '../src/io/ssh-connector.ts';
import { composeFile, type Manifest } from '../src/lib/manifest.ts';
import { runDeployStage, runRollbackStage } from '../src/stages/deploy.ts';
import type { DeployResult, HostStageOptions } from '../src/stages/host/types.ts';
import { runSwarmDeployStage, runSwarmRollbackStage } from '../src/stages/swarm.ts';
import { webApp } from '../test/helpers/deploy-fixture.ts';
import { removeProject, removeStack, testEnv } from '../test/helpers/testenv.ts';
import { median, traceSteps } from './step-trace.ts';
import { hostDeps } from '../src/stages/host/deps.ts';
import { readHostSettings } from '../src/settings/host.ts';

const rounds = Number(process.argv[2] ?? 3);
const env = testEnv();
const root = mkdtempSync(join(tmpdir(), 'lading-swarm-bench-'));

const fmt = (xs: number[]) => `median ${median(xs).toFixed(2)} s (${xs.map((x) => x.toFixed(2)).join(', ')})`;

// Where the time goes: SSH connect, and each remote step (a fresh exec or a step on the long-lived shell).
const stepName = (script: string) =>
  (/^lading_(?:swarm|step) (.+)$/m.exec(script)?.[1] ?? script.split('\n')[0]!).slice(0, 40);
const trace = traceSteps(stepName);
const note = trace.note;
const traced = (s: HostSession): HostSession => {
  const exec = s.exec.bind(s);
  s.exec = async (script, opts) => {
    const t = performance.now();
    try {
      return await exec(script, opts);
    } finally {
      note(stepName(script), t);
    }
  };
  return s;
};

async function stage(
  fn: (o: HostStageOptions) => Promise<DeployResult>,
  inputs: Record<string, string>,
): Promise<DeployResult> {
  const res = await fn({
    settings: await readHostSettings((n) => inputs[n] || undefined, {}),
    reporter: stderrReporter(true),
    deps: hostDeps(async (host, settings, reporter) => {
      const t = performance.now();
      const s = traced(await sshConnector(host, settings, reporter));
      note('connect', t);
      return s;
    }),
  });
  if (!res.ok) throw new Error(JSON.stringify(res.hosts));
  return res;
}

interface Target {
  label: string;
  deploy: (m: Manifest) => Promise<unknown>;
  rollback: () => Promise<unknown>;
  cleanup: () => void;
}

function target(kind: 'compose' | 'swarm'): { t: Target; versions: Manifest[]; probe: () => Promise<string> } {
  const app = webApp();
  const versions = [app.version(1), app.version(2)];
  const common: Record<string, string> = {
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root: join(root, kind),
    project: app.project,
    'health-stable': '0',
  };
  if (kind === 'swarm') {
    // The fixture's app as a stack (as in test/e2e/swarm.test.ts): host networking is an external network there.
    const stack = `version: "3.8"
services:
  web:
    image: ${app.name}:\${DOCKER_TAG:-latest}
    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${app.port}", "-h", "/srv"]
    networks: [hostnet]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${app.port}/index.html"]
      interval: 1s
      timeout: 2s
      retries: 2
networks:
  hostnet:
    external: true
    name: host
`;
    for (const m of versions) m.compose!.files = [composeFile('docker-compose.yml', stack)];
    Object.assign(common, {
      target: 'swarm',
      'docker-host': env.swarmDockerHost,
      'update-delay': '0',
      'update-monitor': '2',
    });
  }
  const [deployStage, rollbackStage] =
    kind === 'swarm' ? [runSwarmDeployStage, runSwarmRollbackStage] : [runDeployStage, runRollbackStage];
  return {
    versions,
    probe: () => app.probe(),
    t: {
      label: kind,
      deploy: (m) => stage((o) => deployStage({ ...o, manifest: m }), common),
      rollback: () => stage(rollbackStage, { ...common, to: 'previous' }),
      cleanup: () => (kind === 'swarm' ? removeStack(app.project, []) : removeProject(app.project)),
    },
  };
}

async function measure(kind: 'compose' | 'swarm') {
  const { t, versions, probe } = target(kind);
  const deploys: number[] = [];
  const rollbacks: number[] = [];
  const served: number[] = [];
  const traces: Array<Record<string, number>> = [];
  try {
    for (let i = 0; i < rounds; i++) {
      await t.deploy(versions[0]!);
      let at = performance.now();
      await t.deploy(versions[1]!);
      deploys.push((performance.now() - at) / 1000);
      trace.take();
      at = performance.now();
      let seen = 0;
      let polling = true;
      const poll = (async () => {
        while (polling) {
          if ((await probe().catch(() => '')) === 'v1') {
            seen = (performance.now() - at) / 1000;
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await t.rollback();
      rollbacks.push((performance.now() - at) / 1000);
      for (let w = 0; w < 100 && !seen; w++) await new Promise((r) => setTimeout(r, 100));
      polling = false;
      await poll;
      served.push(seen || Number.NaN);
      traces.push(trace.take()); // the next round's deploys are not the rollback's
    }
  } finally {
    t.cleanup();
  }
  const steps = [...new Set(traces.flatMap((x) => Object.keys(x)))];
  console.log(`\n${kind}`);
  console.log(`  deploy (v1 → v2): ${fmt(deploys)}`);
  console.log(`  rollback --to previous: ${fmt(rollbacks)}`);
  console.log(`  old content served after: ${fmt(served)}`);
  console.log(
    `  where the rollback's time goes (medians): ${steps.map((s) => `${s} ${median(traces.map((x) => x[s] ?? 0)).toFixed(2)} s`).join('; ')}`,
  );
  return { deploy: median(deploys), rollback: median(rollbacks), served: median(served) };
}

try {
  const c = await measure('compose');
  const s = await measure('swarm');
  console.log('\nratios swarm/compose (same run)');
  console.log(
    `  deploy ${(s.deploy / c.deploy).toFixed(2)}x; rollback ${(s.rollback / c.rollback).toFixed(2)}x; old content served ${(s.served / c.served).toFixed(2)}x`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
