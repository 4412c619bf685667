import { getExecOutput } from '@actions/exec';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argument array (no shell ever parses the arguments) and captures its output.
 * Never throws for a non-zero exit: callers decide what a failure means.
 */
export async function capture(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: Buffer } = {},
): Promise<ExecResult> {
  const res = await getExecOutput(command, args, {
    cwd: options.cwd,
    env: options.env,
    input: options.input,
    silent: true,
    ignoreReturnCode: true,
  });
  return { code: res.exitCode, stdout: res.stdout, stderr: res.stderr };
}

export interface StreamResult {
  code: number;
  /** The last lines the command wrote to stderr (and stdout), for error messages. */
  tail: string;
  stdout: string;
}

/**
 * Runs a program with an argument array, passing each output line to `onLine` as it arrives (build and push
 * logs), and keeping the last lines for the error message. Stdout is also collected when `collect` is set.
 */
export async function stream(
  command: string,
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    input?: string | Buffer;
    onLine?: (line: string) => void;
    collect?: boolean;
    tailLines?: number;
  } = {},
): Promise<StreamResult> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const max = options.tailLines ?? 30;
    let stdout = '';
    const feed = (buf: { pending: string }, chunk: Buffer, isStdout: boolean) => {
      if (isStdout && options.collect) stdout += chunk.toString('utf8');
      buf.pending += chunk.toString('utf8');
      const lines = buf.pending.split(/\r?\n|\r/);
      buf.pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    };
    const emit = (line: string) => {
      if (line === '') return;
      options.onLine?.(line);
      tail.push(line);
      if (tail.length > max) tail.shift();
    };
    const out = { pending: '' };
    const err = { pending: '' };
    child.stdout.on('data', (c: Buffer) => feed(out, c, true));
    child.stderr.on('data', (c: Buffer) => feed(err, c, false));
    child.on('error', (e) => reject(e));
    child.on('close', (code, signal) => {
      emit(out.pending);
      emit(err.pending);
      resolve({ code: code ?? (signal ? 128 : 1), tail: tail.join('\n'), stdout });
    });
    child.stdin.on('error', () => {}); // the command may exit before reading its input
    child.stdin.end(options.input ?? '');
  });
}
