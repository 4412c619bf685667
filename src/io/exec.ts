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
