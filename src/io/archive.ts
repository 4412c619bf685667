import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { LadingError } from '../lib/errors.ts';

/** Counts bytes and computes sha256 of what flows through. */
export class Digester extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  private hex?: string;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  /** The sha256 (hex) once the stream has ended. */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}

/**
 * `docker save` as a stream that ends only when docker exited 0: a failing save (missing image, daemon gone) errors
 * the stream instead of ending it, so an upload fed by it aborts and leaves no object behind.
 */
export function dockerSave(refs: string[], env: NodeJS.ProcessEnv = process.env, bin = 'docker'): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const child = spawn(bin, ['save', ...refs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdoutEnded = false;
  let exit: number | null | undefined;
  const finish = () => {
    if (!stdoutEnded || exit === undefined) return;
    if (exit === 0) out.end();
    else
      out.destroy(
        new LadingError(
          `docker save ${refs.join(' ')} failed (exit ${exit}): ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`,
          'check that the images exist on this runner (run the build step first) and that dockerd is up',
        ),
      );
  };
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  child.stdout.pipe(out, { end: false });
  child.stdout.on('end', () => {
    stdoutEnded = true;
    finish();
  });
  child.on('error', (e) =>
    out.destroy(new LadingError(`could not run docker: ${e.message}`, 'install docker on the runner')),
  );
  child.on('close', (code) => {
    exit = code ?? 1;
    finish();
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}

/** Logs transfer progress (bytes, rate) at most every `everyMs`. */
export function progressLogger(label: string, log: (line: string) => void, everyMs = 5000): (bytes: number) => void {
  const start = Date.now();
  let last = start;
  return (bytes: number) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    log(`${label}: ${formatBytes(bytes)} (${formatBytes((bytes * 1000) / Math.max(1, now - start))}/s)`);
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/**
 * `docker save | <compressor>` as two processes joined by an OS pipe, so the uncompressed archive never passes through
 * node: only the compressed bytes come out. Like dockerSave, the stream ends only when both exited 0.
 */
export function dockerSaveCompressed(
  refs: string[],
  compressor: [string, string[]],
  env: NodeJS.ProcessEnv = process.env,
  bin = 'docker',
): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const save = spawn(bin, ['save', ...refs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const comp = spawn(compressor[0], compressor[1], { stdio: [save.stdout, 'pipe', 'pipe'] });
  save.stdout.destroy(); // the compressor holds its own copy of the pipe; ours would only keep it open
  const err = { save: '', comp: '' };
  save.stderr.on('data', (c: Buffer) => (err.save = (err.save + c.toString('utf8')).slice(-4000)));
  comp.stderr.on('data', (c: Buffer) => (err.comp = (err.comp + c.toString('utf8')).slice(-4000)));
  const exits: { save?: number; comp?: number; ended?: boolean } = {};
  const finish = () => {
    if (exits.save === undefined || exits.comp === undefined || !exits.ended) return;
    if (exits.save !== 0) {
      out.destroy(
        new LadingError(
          `docker save ${refs.join(' ')} failed (exit ${exits.save}): ${err.save.trim().split('\n').slice(-3).join(' ') || 'no message'}`,
          'check that the images exist on this runner (run the build step first) and that dockerd is up',
        ),
      );
    } else if (exits.comp !== 0) {
      out.destroy(
        new LadingError(`${compressor[0]} failed (exit ${exits.comp}): ${err.comp.trim()}`, `check ${compressor[0]}`),
      );
    } else out.end();
  };
  comp.stdout.pipe(out, { end: false });
  comp.stdout.on('end', () => {
    exits.ended = true;
    finish();
  });
  const fail = (what: string) => (e: Error) =>
    out.destroy(new LadingError(`could not run ${what}: ${e.message}`, `install ${what}`));
  save.on('error', fail(bin));
  comp.on('error', fail(compressor[0]));
  save.on('exit', (code) => {
    exits.save = code ?? 1;
    finish();
  });
  comp.on('close', (code) => {
    exits.comp = code ?? 1;
    finish();
  });
  out.on('close', () => {
    if (save.exitCode === null) save.kill('SIGKILL');
    if (comp.exitCode === null) comp.kill('SIGKILL');
  });
  return out;
}
