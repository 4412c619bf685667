import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * A stand-in docker for unit tests of the remote shell scripts: `script(dir)` is its text, installed as `dir/bin/docker`
 * in a temporary folder removed after the file's tests. `run(input, env, record)` runs `/bin/sh -s` on `input` with
 * only that PATH (stand-in first) and `env`, and returns the lines of the file `record` the stand-in wrote in `dir`
 * during that run ([] when it wrote none: the file is removed first).
 */
export function stubDocker(prefix: string, script: (dir: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'docker'), script(dir), { mode: 0o755 });
  after(() => rmSync(dir, { recursive: true, force: true }));
  function run(input: string, env: Record<string, string>, record: string) {
    rmSync(join(dir, record), { force: true });
    const res = spawnSync('/bin/sh', ['-s'], {
      input,
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}`, ...env },
    });
    let lines: string[] = [];
    try {
      lines = readFileSync(join(dir, record), 'utf8').trimEnd().split('\n');
    } catch {
      // the stand-in did not write it
    }
    return { code: res.status, out: res.stdout, err: res.stderr, lines };
  }
  return { dir, run };
}
