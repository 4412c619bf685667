// Fleet scale: the deploy action (its bundle, built from src/ here, run as a runner runs it) against 1, 5, 10 and
// 20 hosts — sshd instances on loopback ports, each host with its own root and compose project on the one test
// dockerd. Measures, in the same run, wall time and the runner process's peak RSS and CPU time per fleet size,
// and prints ratios vs 1 host. Asserts nothing. Start the test environment first (bash scripts/testenv.sh up):
//   npx tsx bench/fleet.bench.ts [sizes=1,5,10,20] [rounds=2] [max-parallel=size, or -] [real|stub|both]
// Every "host" runs on this machine's cores, so the hosts' own work (docker-compose, dockerd creating
// containers) competes with the runner: the runner's CPU time is printed apart to show its own growth.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { fleetApp } from '../test/helpers/fleet-fixture.ts';
import { startSshdFleet } from '../test/helpers/sshd-fleet.ts';
import { testEnv } from '../test/helpers/testenv.ts';

const sizes = (process.argv[2] ?? '1,5,10,20').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 2);
const parallelArg = process.argv[4] && process.argv[4] !== '-' ? process.argv[4] : undefined;
const modes = process.argv[5] ?? 'both'; // real | stub | both
const env = testEnv();
const work = mkdtempSync(join(tmpdir(), 'lading-fleet-bench-'));
const repo = join(import.meta.dirname, '..');

// The deploy action's bundle as scripts/build.mjs makes it, built from the current source.
const bundle = join(work, 'deploy', 'index.mjs');
await build({
  entryPoints: [join(repo, 'src/actions/deploy/main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['cpu-features', '*.node'],
  logLevel: 'warning',
  banner: {
    js: [
      "import { createRequire as __ladingCreateRequire } from 'node:module';",
      'const require = __ladingCreateRequire(import.meta.url);',
      "import { fileURLToPath as __ladingFileURLToPath } from 'node:url';",
      "import { dirname as __ladingDirname } from 'node:path';",
      'const __filename = __ladingFileURLToPath(import.meta.url);',
      'const __dirname = __ladingDirname(__filename);',
    ].join('\n'),
  },
});
// Loaded before the bundle: writes the process's peak RSS and CPU time when it exits.
const preload = join(work, 'usage.mjs');
writeFileSync(
  preload,
  `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(process.env.LADING_BENCH_USAGE, JSON.stringify({ maxRssKb: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }));
});
`,
);

interface Sample {
  wall: number;
  rssMb: number;
  cpu: number;
}

function runAction(inputs: Record<string, string>): Promise<Sample> {
  const usage = join(work, `usage-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const out = join(work, 'output');
  writeFileSync(out, '');
  writeFileSync(join(work, 'summary'), '');
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_OUTPUT: out,
    GITHUB_STEP_SUMMARY: join(work, 'summary'),
    GITHUB_RUN_ID: String(process.pid),
    LADING_BENCH_USAGE: usage,
  };
  for (const [k, v] of Object.entries(inputs)) childEnv[`INPUT_${k.toUpperCase()}`] = v;
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', preload, bundle], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - t) / 1e9;
      if (code !== 0) return reject(new Error(`the deploy failed (${code}):\n${log.slice(-3000)}`));
      const u = JSON.parse(readFileSync(usage, 'utf8')) as { maxRssKb: number; cpuUs: number };
      resolve({ wall, rssMb: u.maxRssKb / 1024, cpu: u.cpuUs / 1e6 });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU seconds the whole machine spent (all processes, this bench's hosts and anything else running). */
function machineCpu(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100; // user nice system irq softirq steal (USER_HZ 100)
}

// Stand-ins for docker and docker-compose on the "engine stubbed" hosts: answers the host script understands
// (image present, one container running, compose up succeeds) at the cost of a /bin/sh, so what is left is lading
// itself: the runner, SSH, the host script and the file system work of a release.
const stubs = join(work, 'stub-bin');
mkdirSync(stubs);
writeFileSync(
  join(stubs, 'docker'),
  `#!/bin/sh
case "$1" in
  compose) exit 1 ;;
  ps) echo 0123456789ab ;;
  inspect) echo "idle running none 0" ;;
esac
exit 0
`,
  { mode: 0o755 },
);
writeFileSync(join(stubs, 'docker-compose'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });

const app = fleetApp();
const key = readFileSync(env.ssh.privateKey, 'utf8');
const manifest = app.version(1);

async function measure(label: string, fleetOpts: { path?: string }): Promise<void> {
  const fleet = await startSshdFleet(Math.max(...sizes), fleetOpts);
  try {
    const results: Array<{ n: number; wall: number; rssMb: number; cpu: number; machine: number }> = [];
    for (const n of sizes) {
      const samples: Array<Sample & { machine: number }> = [];
      for (let r = 0; r < rounds; r++) {
        // a fresh inventory each time (own roots and projects): every round is a first deploy to every host
        const inventory = app.inventory(fleet.hosts.slice(0, n));
        const cpu0 = machineCpu();
        const s = await runAction({
          manifest: JSON.stringify(manifest),
          inventory,
          'ssh-key': key,
          'known-hosts': fleet.knownHosts,
          'max-parallel': parallelArg ?? String(n),
          'health-stable': '0',
          'health-timeout': '120',
        });
        samples.push({ ...s, machine: machineCpu() - cpu0 });
        app.cleanup();
      }
      results.push({
        n,
        wall: median(samples.map((s) => s.wall)),
        rssMb: median(samples.map((s) => s.rssMb)),
        cpu: median(samples.map((s) => s.cpu)),
        machine: median(samples.map((s) => s.machine)),
      });
      console.error(
        `${label}, ${n} host(s): ${samples.map((s) => `${s.wall.toFixed(2)} s / ${s.rssMb.toFixed(0)} MB`).join(', ')}`,
      );
    }
    const one = results[0]!;
    console.log(
      `\n${label}: ${cpus().length} CPU(s), max-parallel ${parallelArg ?? '= hosts'}, median of ${rounds} round(s)`,
    );
    console.log('| hosts | wall | × 1 host | runner peak RSS | × 1 host | runner CPU | machine CPU (all processes) |');
    console.log('| ----- | ---- | -------- | --------------- | -------- | ---------- | --------------------------- |');
    for (const r of results) {
      console.log(
        `| ${r.n} | ${r.wall.toFixed(2)} s | ${(r.wall / one.wall).toFixed(2)}× | ${r.rssMb.toFixed(0)} MB | ${(r.rssMb / one.rssMb).toFixed(2)}× | ${r.cpu.toFixed(2)} s | ${r.machine.toFixed(1)} s |`,
      );
    }
    const ten = results.find((r) => r.n === 10);
    if (ten) console.log(`10 hosts / 1 host wall time: ${(ten.wall / one.wall).toFixed(2)}× (goal <= 1.5×)`);
  } finally {
    await fleet.stop();
  }
}

try {
  if (modes !== 'stub') await measure('real engine (docker-compose v1 + the test dockerd on every host)', {});
  if (modes !== 'real') {
    await measure('engine stubbed (docker, docker-compose stand-ins on every host)', {
      path: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin`,
    });
  }
} finally {
  app.cleanup();
  rmSync(work, { recursive: true, force: true });
}
