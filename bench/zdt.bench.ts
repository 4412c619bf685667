// Zero-downtime, measured side by side in one run against the test environment (bash scripts/testenv.sh up first):
//   npx tsx bench/zdt.bench.ts [rounds]
// The same app (test/helpers/proxy-fixture.ts: busybox httpd web with a 5 s-interval healthcheck + a worker) three
// ways, each under a steady 50 requests/s on loopback (bounded loops that stop by themselves):
//   raw       ssh host 'docker-compose pull && docker-compose up -d', web published on a loopback port
//   recreate  lading deploy (default strategy), web published on a loopback port
//   rolling   lading deploy with x-lading rolling, web behind the shared Caddy proxy
// It counts failed requests during a deploy of the next release, during the automatic rollback of a broken release,
// and during `rollback --to previous`; latency (p50/p99) in the ±1 s around the switch vs before the deploy; and the
// deploy wall time against the raw baseline. Prints figures; exits non-zero if a rolling deploy, automatic rollback or
// rollback --to previous failed a single request (the goal is 0, resets included).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../src/lib/manifest.ts';
import { stderrReporter } from '../src/io/reporter.ts';
import { sshConnector } from '../src/io/ssh-connector.ts';
import { runDeployStage, runRollbackStage } from '../src/stages/deploy.ts';
import type { HostStageOptions } from '../src/stages/host/types.ts';
import { type LoadSample, loadLoop, proxiedApp, testProxy } from '../test/helpers/proxy-fixture.ts';
import { docker, freePort, testEnv } from '../test/helpers/testenv.ts';
import { traceSteps } from './step-trace.ts';
import { hostDeps } from '../src/stages/host/deps.ts';
import { readHostSettings } from '../src/settings/host.ts';

const execFileAsync = promisify(execFile);
const rounds = Number(process.argv[2] ?? 2);
const env = testEnv();
const root = mkdtempSync(join(tmpdir(), 'lading-zdt-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const median = (xs: number[]) => pct(xs, 50);
const f2 = (x: number) => x.toFixed(2);

// Where lading's time goes: each step round trip, summed per deploy (medians printed).
const trace = traceSteps();
const traces: Record<string, Array<Record<string, number>>> = {};

const proxy = await testProxy();
const host = 'shop.bench';
const rollingApp = proxiedApp({ host, drain: 2 });
const recreatePort = await freePort();
const recreateApp = proxiedApp({ host, publish: recreatePort });
const rawPort = await freePort();
const rawApp = proxiedApp({ host, publish: rawPort });
const rawDir = join(root, 'raw');
execFileSync('mkdir', ['-p', rawDir]);

const opts = async (extra: Record<string, string>): Promise<HostStageOptions> => {
  const inputs: Record<string, string> = {
    hosts: `root@${env.ssh.host}:${env.ssh.port}`,
    'ssh-key': readFileSync(env.ssh.privateKey, 'utf8'),
    'known-hosts': readFileSync(env.ssh.knownHosts, 'utf8'),
    root,
    'health-stable': '0',
    'health-timeout': '15',
    'allow-downgrade': 'true',
    ...proxy.inputs,
    ...extra,
  };
  return {
    settings: await readHostSettings((n) => inputs[n] || undefined, {}),
    reporter: stderrReporter(true),
    deps: hostDeps(sshConnector),
  };
};
const lading = async (m: Manifest) => runDeployStage({ ...(await opts({})), manifest: m });
/** The raw baseline, run asynchronously (the load loop shares this process's event loop). */
async function raw(m: Manifest) {
  writeFileSync(join(rawDir, 'docker-compose.yml'), m.compose!.files[0]!.content);
  writeFileSync(join(rawDir, '.env'), `DOCKER_TAG=${m.primary}\n`);
  await execFileAsync('ssh', [
    '-F',
    env.ssh.config,
    env.ssh.alias,
    `cd ${rawDir} && docker-compose -p ${rawApp.project} pull -q && docker-compose -p ${rawApp.project} up -d`,
  ]);
}

type Way = 'raw' | 'recreate' | 'rolling';
const ways: Array<{ way: Way; app: ReturnType<typeof proxiedApp>; port: number; versions: Manifest[] }> = [
  { way: 'raw', app: rawApp, port: rawPort, versions: [] },
  { way: 'recreate', app: recreateApp, port: recreatePort, versions: [] },
  { way: 'rolling', app: rollingApp, port: proxy.port, versions: [] },
];

/**
 * Runs `fn` under 50 requests/s (from 1.3 s before to 1 s after it): failures, wall time, samples. The first 300 ms
 * warm the load thread up; 300–1300 ms is the steady state the switch is compared with.
 */
async function underLoad(port: number, fn: () => Promise<unknown> | unknown) {
  const load = loadLoop(port, host, { rps: 50, maxMs: 120_000 });
  await sleep(1300);
  const started = load.samples.length ? Date.now() : Date.now();
  const t = performance.now();
  await fn();
  const wall = (performance.now() - t) / 1000;
  await sleep(1000);
  const stats = await load.stop();
  return { ...stats, wall, started };
}

/** p50/p99 of the requests before the deploy, and of those within ±1 s of the first answer from the new release. */
function aroundSwitch(samples: LoadSample[], newBody: string) {
  const first = samples.filter((s) => s.ok && s.body === newBody).sort((a, b) => a.at - b.at)[0];
  const steady = samples.filter((s) => s.at >= 300 && s.at < 1300).map((s) => s.ms);
  if (!first) return undefined;
  const near = samples.filter((s) => Math.abs(s.at - first.at) <= 1000);
  const around = near.map((s) => s.ms);
  // the requests of the window slower than twice the steady p99, as "offset from the first new answer: ms"
  const slow = near
    .filter((s) => s.ms > 2 * pct(steady, 99))
    .map((s) => `${s.at - first.at >= 0 ? '+' : ''}${s.at - first.at} ms: ${s.ms.toFixed(1)} ms`);
  return { steady: [pct(steady, 50), pct(steady, 99)], around: [pct(around, 50), pct(around, 99)], slow };
}

const results: Record<string, number[]> = {};
const add = (k: string, v: number) => (results[k] ??= []).push(v);

try {
  for (const w of ways) {
    w.versions = [w.app.version(1), w.app.version(2), w.app.version(3), w.app.version(4, { broken: true })];
  }
  for (const w of ways) {
    // the first release, not measured
    if (w.way === 'raw') await raw(w.versions[0]!);
    else if (!(await lading(w.versions[0]!)).ok) throw new Error(`${w.way}: first deploy failed`);
  }
  await sleep(3000);
  for (let r = 0; r < rounds; r++) {
    for (const w of ways) {
      const next = w.versions[1 + (r % 2)]!;
      trace.take();
      const deployed = await underLoad(w.port, async () => {
        if (w.way === 'raw') await raw(next);
        else if (!(await lading(next)).ok) throw new Error(`${w.way}: deploy failed`);
      });
      (traces[w.way] ??= []).push(trace.take());
      add(`${w.way} deploy failed`, deployed.failed);
      add(`${w.way} deploy resets`, deployed.resets);
      add(`${w.way} deploy total`, deployed.total);
      add(`${w.way} deploy wall`, deployed.wall);
      const around = aroundSwitch(deployed.samples, `v${2 + (r % 2)}`);
      if (around) {
        add(`${w.way} steady p50`, around.steady[0]!);
        add(`${w.way} steady p99`, around.steady[1]!);
        add(`${w.way} switch p50`, around.around[0]!);
        add(`${w.way} switch p99`, around.around[1]!);
        if (w.way === 'rolling')
          console.error(`rolling round ${r + 1}: slow around the switch: ${around.slow.join(', ') || 'none'}`);
      }
      await sleep(3000); // the drain (rolling) ends before the next measurement
      if (w.way === 'raw') continue;
      const broken = await underLoad(w.port, async () => {
        const res = await lading(w.versions[3]!);
        if (res.hosts[0]!.status !== 'rolled-back') throw new Error(`${w.way}: broken release not rolled back`);
      });
      add(`${w.way} auto-rollback failed`, broken.failed);
      add(`${w.way} auto-rollback resets`, broken.resets);
      add(`${w.way} auto-rollback total`, broken.total);
      await sleep(3000);
      const back = await underLoad(w.port, async () => {
        const res = await runRollbackStage(await opts({ project: w.app.project, to: 'previous' }));
        if (!res.ok) throw new Error(`${w.way}: rollback failed: ${JSON.stringify(res.hosts)}`);
      });
      add(`${w.way} rollback failed`, back.failed);
      add(`${w.way} rollback resets`, back.resets);
      add(`${w.way} rollback total`, back.total);
      add(`${w.way} rollback wall`, back.wall);
      await sleep(3000);
    }
  }
  const load = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ');
  console.log(`\nzero-downtime bench, ${rounds} round(s), load average ${load}`);
  for (const w of ways) {
    const sum = (k: string) => (results[`${w.way} ${k}`] ?? []).reduce((a, b) => a + b, 0);
    const of = (k: string) => `${sum(`${k} failed`)}/${sum(`${k} total`)} failed (${sum(`${k} resets`)} reset)`;
    const line = [`${w.way.padEnd(9)} deploy: ${of('deploy')}`];
    if (w.way !== 'raw') {
      line.push(`auto-rollback: ${of('auto-rollback')}`);
      line.push(`rollback --to previous: ${of('rollback')}`);
    }
    console.log(line.join('; '));
  }
  for (const w of ways) {
    const g = (k: string) => median(results[`${w.way} ${k}`] ?? []);
    console.log(
      `${w.way.padEnd(9)} latency ms: steady p50 ${f2(g('steady p50'))} p99 ${f2(g('steady p99'))}; ±1 s around the switch p50 ${f2(g('switch p50'))} p99 ${f2(g('switch p99'))} (${f2(g('switch p99') / g('steady p99'))}x steady p99)`,
    );
  }
  const rawWall = median(results['raw deploy wall']!);
  for (const w of ways) {
    const wall = median(results[`${w.way} deploy wall`]!);
    console.log(`${w.way.padEnd(9)} deploy wall time (median): ${f2(wall)} s = ${f2(wall / rawWall)}x raw`);
    const ts = traces[w.way] ?? [];
    const steps = [...new Set(ts.flatMap((t) => Object.keys(t)))];
    if (steps.length) {
      console.log(
        `          steps (medians): ${steps.map((n) => `${n} ${f2(median(ts.map((t) => t[n] ?? 0)))} s`).join('; ')}`,
      );
    }
  }
  const rollingFailed = ['deploy', 'auto-rollback', 'rollback']
    .map((k) => (results[`rolling ${k} failed`] ?? []).reduce((a, b) => a + b, 0))
    .reduce((a, b) => a + b, 0);
  if (rollingFailed > 0) {
    console.error(`FAILED: ${rollingFailed} request(s) failed during rolling deploys or rollbacks (goal: 0)`);
    process.exitCode = 1;
  }
} finally {
  for (const w of ways) w.app.cleanup();
  proxy.cleanup();
  try {
    docker(['network', 'rm', proxy.id]);
  } catch {
    // in use or gone
  }
  rmSync(root, { recursive: true, force: true });
}
