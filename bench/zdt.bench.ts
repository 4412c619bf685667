// Zero-downtime, measured side by side in one run against the test environment (bash scripts/testenv.sh up first):
//   npx tsx bench/zdt.bench.ts [rounds]
// The same app (test/helpers/proxy-fixture.ts: busybox httpd web with a 5 s-interval healthcheck + a worker) three
// ways, each under a steady 50 requests/s on loopback (bounded loops that stop by themselves):
//   raw       ssh host 'docker-compose pull && docker-compose up -d', web published on a loopback port
//   recreate  lading deploy (default strategy), web published on a loopback port
//   rolling   lading deploy with x-lading rolling, web behind the shared Caddy proxy
// It counts failed requests during a deploy of the next release, during the automatic rollback of a broken release,
// and during `rollback --to previous`; latency (p50/p99, pooled over the rounds) before the deploy (steady), over the
// whole deploy, and for rolling in its two phases: while the new containers start and pass the gate, and during the
// switch (from the proxy switch until the old containers are removed after their drain); and the deploy wall time
// against the raw baseline. Prints figures; exits non-zero if a rolling deploy, automatic rollback or rollback --to
// previous failed a single request (the goal is 0, resets included).
import { execFile, execFileSync, spawn } from 'node:child_process';
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
 * The times (ms) at which the project's `web` containers are removed, from `docker events`: a rolling deploy's load
 * runs until the drained container is gone, so the switch is measured to its end.
 */
function webRemovals(project: string) {
  const times: number[] = [];
  const watcher = spawn(
    'docker',
    ['events', '--format', '{{.TimeNano}}', '--filter', 'type=container', '--filter', 'event=destroy']
      .concat(['--filter', `label=com.docker.compose.project=${project}`])
      .concat(['--filter', 'label=com.docker.compose.service=web']),
    { env: { ...process.env, DOCKER_HOST: env.dockerHost }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  watcher.stdout.on('data', (c: Buffer) => {
    for (const l of String(c).split('\n').filter(Boolean)) times.push(Number(l) / 1e6);
  });
  return {
    /** the first removal after `after`, waiting up to `ms` for it (undefined if none came) */
    async after(after: number, ms = 20_000): Promise<number | undefined> {
      for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) {
        const t = times.find((x) => x > after);
        if (t !== undefined) return t;
      }
      return undefined;
    },
    stop: () => watcher.kill(),
  };
}

/**
 * Runs `fn` under 50 requests/s from 2.3 s before it: failures, wall time, samples. The first 300 ms warm the load
 * thread up; the 2 s before `fn` are the steady state the deploy is compared with. The measurement ends (`settled`)
 * 1 s after `fn`, or, given `drainedOf` (a rolling project), when its drained web container is removed, so a switch
 * is measured to its end. On a failure the load loop and the events watcher stop too.
 */
async function underLoad(port: number, fn: () => Promise<unknown> | unknown, drainedOf?: string) {
  const load = loadLoop(port, host, { rps: 50, maxMs: 120_000 });
  const removals = drainedOf ? webRemovals(drainedOf) : undefined;
  try {
    await sleep(2300);
    const start = Date.now();
    const t = performance.now();
    await fn();
    const wall = (performance.now() - t) / 1000;
    const end = Date.now();
    let settled = end + 1000;
    if (removals) {
      const gone = await removals.after(start);
      if (gone === undefined) throw new Error(`${drainedOf}: the drained web container was not removed within 20 s`);
      settled = gone;
    }
    await sleep(Math.max(0, settled + 300 - Date.now()));
    return { ...(await load.stop()), wall, start, end, settled };
  } catch (err) {
    await load.stop();
    throw err;
  } finally {
    removals?.stop();
  }
}

/** The latencies (ms) of the requests started within [from, to). */
const within = (samples: LoadSample[], from: number, to: number) =>
  samples.filter((s) => s.epoch >= from && s.epoch < to).map((s) => s.ms);

/** The requests of the ±1 s around the first answer from the new release (the window of earlier runs). */
function aroundFirstAnswer(samples: LoadSample[], newBody: string) {
  const first = samples.filter((s) => s.ok && s.body === newBody).sort((a, b) => a.at - b.at)[0];
  return first ? samples.filter((s) => Math.abs(s.at - first.at) <= 1000) : [];
}

/** The requests of a window slower than `limit`, as "+offset ms from `t0`: latency" (where the time went). */
const slowOnes = (samples: LoadSample[], from: number, to: number, limit: number, t0: number) =>
  samples
    .filter((s) => s.epoch >= from && s.epoch < to && s.ms > limit)
    .map((s) => `+${s.epoch - t0} ms: ${s.ms.toFixed(1)} ms`);

/** Latencies pooled over the rounds, per way and window. */
const pooled: Record<string, number[]> = {};
const pool = (k: string, xs: number[]) => (pooled[k] ??= []).push(...xs);

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
      const deployed = await underLoad(
        w.port,
        async () => {
          if (w.way === 'raw') await raw(next);
          else if (!(await lading(next)).ok) throw new Error(`${w.way}: deploy failed`);
        },
        w.way === 'rolling' ? w.app.project : undefined,
      );
      const marks = trace.marks();
      (traces[w.way] ??= []).push(trace.take());
      add(`${w.way} deploy failed`, deployed.failed);
      add(`${w.way} deploy resets`, deployed.resets);
      add(`${w.way} deploy total`, deployed.total);
      add(`${w.way} deploy wall`, deployed.wall);
      const { samples, start, settled } = deployed;
      pool(`${w.way} steady`, within(samples, start - 2000, start));
      pool(`${w.way} deploy`, within(samples, start, settled));
      pool(
        `${w.way} first answer`,
        aroundFirstAnswer(samples, `v${2 + (r % 2)}`).map((s) => s.ms),
      );
      if (w.way === 'rolling') {
        const sw = marks.find((m) => m.name.startsWith('proxy_switch'));
        if (!sw) throw new Error('rolling: no proxy_switch step in the trace');
        pool('rolling start', within(samples, start, sw.start));
        pool('rolling switch', within(samples, sw.start, settled));
        const limit = 2 * pct(within(samples, start - 2000, start), 99);
        console.error(
          `rolling round ${r + 1} (ms from the deploy's start; switch at +${sw.start - start}, drained container removed at +${Math.round(settled - start)}): ` +
            `slower than twice this round's steady p99 (${limit.toFixed(1)} ms) while starting: ${slowOnes(samples, start, sw.start, limit, start).join(', ') || 'none'}; ` +
            `during the switch: ${slowOnes(samples, sw.start, settled, limit, start).join(', ') || 'none'}`,
        );
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
      const back = await underLoad(
        w.port,
        async () => {
          const res = await runRollbackStage(await opts({ project: w.app.project, to: 'previous' }));
          if (!res.ok) throw new Error(`${w.way}: rollback failed: ${JSON.stringify(res.hosts)}`);
        },
        // rolling: measured until the containers it switched away from are removed after their drain
        w.way === 'rolling' ? w.app.project : undefined,
      );
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
  const fig = (k: string) => {
    const xs = pooled[k] ?? [];
    return { p50: pct(xs, 50), p99: pct(xs, 99), n: xs.length };
  };
  for (const w of ways) {
    const steady = fig(`${w.way} steady`);
    const shown = (k: string, label: string) => {
      const x = fig(`${w.way} ${k}`);
      return `${label} p50 ${f2(x.p50)} p99 ${f2(x.p99)} (${f2(x.p99 / steady.p99)}x steady p99; ${x.n} requests)`;
    };
    const parts = [
      `steady p50 ${f2(steady.p50)} p99 ${f2(steady.p99)} (${steady.n} requests)`,
      shown('deploy', 'whole deploy'),
    ];
    if (w.way === 'rolling') parts.push(shown('start', 'new containers starting'), shown('switch', 'switch and drain'));
    parts.push(shown('first answer', '±1 s around the first new answer'));
    console.log(`${w.way.padEnd(9)} latency ms, pooled over the rounds: ${parts.join('; ')}`);
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
