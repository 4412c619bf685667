// Deploy wall time, lading vs the usual `ssh host 'docker-compose pull && docker-compose up -d'`, measured in the
// same run against the test environment (bash scripts/testenv.sh up first). Prints ratios and where lading's time
// goes (SSH connect and each step), asserts nothing:
//   npx tsx bench/deploy.bench.ts [rounds]
// Two apps: one with a 1 s-interval healthcheck (lading's gate runs the container's check itself, early, every 0.2 s
// until it passes; the baseline waits for no health at all), and one without (the gate only checks that containers
// run and do not restart): the second shows lading's own cost.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../src/lib/manifest.ts';
import { runDeployStage } from '../src/stages/deploy.ts';
import { stderrReporter } from '../src/io/reporter.ts';
import { sshConnector } from '../src/io/ssh-connector.ts';
import { webApp } from '../test/helpers/deploy-fixture.ts';
import { fleetApp } from '../test/helpers/fleet-fixture.ts';
import { removeProject, testEnv } from '../test/helpers/testenv.ts';
import { median, traceSteps } from './step-trace.ts';
import { hostDeps } from '../src/stages/host/deps.ts';
import { readHostSettings } from '../src/settings/host.ts';

const rounds = Number(process.argv[2] ?? 5);
const env = testEnv();
const root = mkdtempSync(join(tmpdir(), 'lading-bench-'));
const raw = join(root, 'raw');
execFileSync('mkdir', ['-p', raw]);

const time = async (fn: () => Promise<unknown> | unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

// Where the time goes: SSH connect, and each step's round trip (recorded per deploy, medians printed).
const trace = traceSteps();

async function lading(m: Manifest, project: string) {
  const inputs: Record<string, string> = {
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    project,
    'health-stable': '0',
  };
  const res = await runDeployStage({
    settings: await readHostSettings((n) => inputs[n] || undefined, {}),
    manifest: m,
    reporter: stderrReporter(true),
    deps: hostDeps(async (host, settings, reporter) => {
      const t = performance.now();
      const s = await sshConnector(host, settings, reporter);
      trace.note('connect', t);
      return s;
    }),
  });
  if (!res.ok) throw new Error(JSON.stringify(res.hosts));
}

function baseline(m: Manifest, project: string) {
  writeFileSync(join(raw, 'docker-compose.yml'), m.compose!.files[0]!.content);
  writeFileSync(join(raw, '.env'), `DOCKER_TAG=${m.primary}\n`);
  execFileSync(
    'ssh',
    [
      '-F',
      env.ssh.config,
      env.ssh.alias,
      `cd ${raw} && docker-compose -p ${project} pull -q && docker-compose -p ${project} up -d`,
    ],
    { stdio: 'ignore' },
  );
}

async function scenario(label: string, manifests: Manifest[], project: string) {
  const l: number[] = [];
  const b: number[] = [];
  const traces: Array<Record<string, number>> = [];
  for (let i = 0; i < rounds; i++) {
    const m = manifests[i % manifests.length]!;
    b.push(await time(() => baseline(m, `${project}-r`)));
    removeProject(`${project}-r`);
    trace.take();
    l.push(await time(() => lading(m, `${project}-l`)));
    traces.push(trace.take());
    removeProject(`${project}-l`);
  }
  const steps = [...new Set(traces.flatMap((t) => Object.keys(t)))];
  console.log(`\n${label}`);
  console.log(
    `  baseline ssh + docker-compose pull && up -d: median ${median(b).toFixed(2)} s (${b.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  lading deploy (lock, release, pull, up, health gate, switch, history): median ${median(l).toFixed(2)} s (${l.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  where lading's time goes (medians): ${steps.map((s) => `${s} ${median(traces.map((t) => t[s] ?? 0)).toFixed(2)} s`).join('; ')}`,
  );
  console.log(`  ratio lading/baseline: ${(median(l) / median(b)).toFixed(2)}x (goal <= 1.2x)`);
}

try {
  const web = webApp();
  await scenario(
    'app with a 1 s-interval healthcheck (test/helpers/deploy-fixture.ts)',
    [web.version(1), web.version(2)],
    web.project,
  );
  const idle = fleetApp();
  await scenario(
    'app without a healthcheck (test/helpers/fleet-fixture.ts)',
    [idle.version(1), idle.version(2)],
    `${web.project}-idle`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
