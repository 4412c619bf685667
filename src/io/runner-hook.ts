import { spawn } from 'node:child_process';

/**
 * Runs a runner hook: a local script (notifications: chat, paging, a status page) with lading's facts in its env.
 * Its output lines go to `log`; the result is its exit status (-1: it could not start or timed out).
 */
export function runRunnerHook(
  script: string,
  env: Record<string, string>,
  opts: { timeoutMs: number; log: (line: string) => void },
): Promise<{ code: number; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(script, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const lines = (chunk: Buffer) => {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) opts.log(l);
    };
    child.stdout.on('data', lines);
    child.stderr.on('data', lines);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, error: `cannot run ${script}: ${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) resolve({ code: -1, error: `${script} timed out after ${Math.round(opts.timeoutMs / 1000)}s` });
      else resolve(code === 0 ? { code: 0 } : { code: code ?? -1, error: `${script} exited with status ${code}` });
    });
  });
}
