import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { envAssignments } from '../lib/shell.ts';
import type { HostSession } from './host-session.ts';
import { PassThrough } from 'node:stream';
import { type PtyRequest, type RemoteProcess, SCRIPT_PATH_RE } from './remote-process.ts';
import type { ShellProcess } from './step-shell.ts';

/**
 * This machine as a deploy host: the same host steps, run by a local /bin/sh (the pull-mode agent deploys this
 * way, and tests use it to exercise the host script without SSH). Data reaches the shell on stdin, as over SSH.
 */
export class LocalSession implements HostSession {
  constructor(private readonly baseEnv: NodeJS.ProcessEnv = process.env) {}

  exec(
    script: string,
    opts: {
      env?: Record<string, string>;
      timeoutMs?: number;
      onStdout?: (s: string) => void;
      onStderr?: (s: string) => void;
    } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-s'], { env: this.baseEnv, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs)
        : undefined;
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
        opts.onStdout?.(c.toString('utf8'));
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        opts.onStderr?.(c.toString('utf8'));
      });
      child.on('error', reject);
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        if (timedOut) stderr += `\nthe step timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)}s`;
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(`${envAssignments(opts.env ?? {})}\n${script}`);
    });
  }

  async upload(remotePath: string, content: string | Buffer, mode: number): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true });
    const tmp = `${remotePath}.tmp-${process.pid}-${Date.now()}`;
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, remotePath);
  }

  async uploadFile(remotePath: string, localPath: string, mode: number): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true });
    const tmp = `${remotePath}.tmp-${process.pid}-${Date.now()}`;
    await copyFile(localPath, tmp);
    await chmod(tmp, mode);
    await rename(tmp, remotePath);
  }

  /**
   * Runs a script file with live streams. With `pty` this process's own terminal is handed over (stdio inherited);
   * otherwise the script runs in a process group of its own, so ending it never reaches this process.
   */
  async spawn(path: string, opts: { pty?: PtyRequest } = {}): Promise<RemoteProcess> {
    if (!SCRIPT_PATH_RE.test(path)) throw new Error(`refusing to run '${path}'`);
    const child = opts.pty
      ? spawn('/bin/sh', [path], { env: this.baseEnv, stdio: 'inherit' })
      : spawn('/bin/sh', [path], { env: this.baseEnv, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const exit = new Promise<number>((done) => {
      child.once('close', (code) => done(code ?? -1));
      child.once('error', () => done(-1));
    });
    const stdin = child.stdin ?? new PassThrough();
    stdin.on('error', () => {});
    return {
      stdin,
      stdout: child.stdout ?? new PassThrough().end(),
      stderr: child.stderr ?? new PassThrough().end(),
      exit,
      resize: () => {},
      endInput: () => stdin.end(),
      kill: () => child.kill('SIGKILL'),
    };
  }

  private readonly shells = new Set<ChildProcessWithoutNullStreams>();

  /** A long-lived local /bin/sh -s for many steps (src/io/step-shell.ts); close() ends it. */
  async shell(): Promise<ShellProcess> {
    const child = spawn('/bin/sh', ['-s'], { env: this.baseEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    this.shells.add(child);
    const closed = new Promise<void>((done) =>
      child.once('close', () => {
        this.shells.delete(child);
        done();
      }),
    );
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      kill: () => child.kill('SIGKILL'),
      closed,
    };
  }

  close(): void {
    for (const child of this.shells) child.stdin.end();
  }
}
