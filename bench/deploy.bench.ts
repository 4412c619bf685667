// Deploy wall time, lading vs the usual `ssh host 'docker-compose pull && docker-compose up -d'`, measured in the
// same run against the test environment (bash scripts/testenv.sh up first). Prints ratios, asserts nothing:
//   node --import tsx bench/deploy.bench.ts [rounds]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDeployStage } from '../src/stages/deploy.ts';
import { stderrReporter } from '../src/stages/reporter.ts';
import { sshConnector } from '../src/stages/ssh-connector.ts';
import { webApp } from '../test/helpers/deploy-fixture.ts';
import { docker, testEnv } from '../test/helpers/testenv.ts';

const rounds = Number(process.argv[2] ?? 3);
const env = testEnv();
const app = webApp();
const manifests = [app.version(1), app.version(2)];
const root = mkdtempSync(join(tmpdir(), 'lading-bench-'));
const raw = join(root, 'raw');
execFileSync('mkdir', ['-p', raw]);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = async (fn: () => Promise<unknown> | unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

async function lading(i: number) {
  const inputs: Record<string, string> = {
    manifest: JSON.stringify(manifests[i % 2]),
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    project: `${app.project}-l`,
    'health-stable': '0',
  };
  const res = await runDeployStage({
    read: (n) => inputs[n] || undefined,
    env: {},
    reporter: stderrReporter(true),
    connector: sshConnector,
  });
  if (!res.ok) throw new Error(JSON.stringify(res.hosts));
}

function baseline(i: number) {
  const m = manifests[i % 2]!;
  writeFileSync(join(raw, 'docker-compose.yml'), m.compose!.files[0]!.content);
  writeFileSync(join(raw, '.env'), `DOCKER_TAG=${m.primary}\n`);
  execFileSync(
    'ssh',
    [
      '-F',
      env.ssh.config,
      env.ssh.alias,
      `cd ${raw} && docker-compose -p ${app.project}-r pull -q && docker-compose -p ${app.project}-r up -d`,
    ],
    { stdio: 'ignore' },
  );
}

try {
  const l: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    b.push(await time(() => baseline(i)));
    docker([
      'rm',
      '-f',
      ...docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${app.project}-r`])
        .split('\n')
        .filter(Boolean),
    ]);
    l.push(await time(() => lading(i)));
    docker([
      'rm',
      '-f',
      ...docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${app.project}-l`])
        .split('\n')
        .filter(Boolean),
    ]);
  }
  console.log(
    `baseline ssh+docker-compose pull&&up: median ${median(b).toFixed(2)} s (${b.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `lading deploy (lock, release, pull, up, health gate, switch, history): median ${median(l).toFixed(2)} s`,
  );
  console.log(`ratio lading/baseline: ${(median(l) / median(b)).toFixed(2)}x (goal <= 1.2x)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
