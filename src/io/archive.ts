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
 * `docker save` as a stream that ends only when docker (and the compressor, when given) exited 0: a failing save
 * (missing image, daemon gone) errors the stream instead of ending it, so an upload fed by it aborts and leaves no
 * object behind. With a compressor program, `docker save | <compressor>` are two processes joined by an OS pipe:
 * the uncompressed archive never passes through node, only the compressed bytes come out.
 */
export function dockerSave(
  refs: string[],
  opts: { env?: NodeJS.ProcessEnv; compressor?: [string, string[]]; bin?: string } = {},
): Readable {
  const bin = opts.bin ?? 'docker';
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const save = spawn(bin, ['save', ...refs], { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const procs = [{ name: bin, child: save, stderr: '', exit: undefined as number | undefined }];
  let source = save.stdout;
  if (opts.compressor) {
    const comp = spawn(opts.compressor[0], opts.compressor[1], { stdio: [save.stdout, 'pipe', 'pipe'] });
    save.stdout.destroy(); // the compressor holds its own copy of the pipe; ours would only keep it open
    procs.push({ name: opts.compressor[0], child: comp, stderr: '', exit: undefined });
    source = comp.stdout;
  }
  let ended = false;
  const finish = () => {
    if (!ended || procs.some((p) => p.exit === undefined)) return;
    const [s, c] = procs;
    if (s!.exit !== 0) {
      out.destroy(
        new LadingError(
          `docker save ${refs.join(' ')} failed (exit ${s!.exit}): ${s!.stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`,
          'check that the images exist on this runner (run the build step first) and that dockerd is up',
        ),
      );
    } else if (c && c.exit !== 0) {
      out.destroy(new LadingError(`${c.name} failed (exit ${c.exit}): ${c.stderr.trim()}`, `check ${c.name}`));
    } else out.end();
  };
  for (const p of procs) {
    p.child.stderr!.on('data', (chunk: Buffer) => (p.stderr = (p.stderr + chunk.toString('utf8')).slice(-4000)));
    p.child.on('error', (e) =>
      out.destroy(new LadingError(`could not run ${p.name}: ${e.message}`, `install ${p.name} on the runner`)),
    );
    // 'exit', not 'close': a piped-away stdout is never read here, so 'close' may never come
    p.child.on('exit', (code) => {
      p.exit = code ?? 1;
      finish();
    });
  }
  source.pipe(out, { end: false });
  source.on('end', () => {
    ended = true;
    finish();
  });
  out.on('close', () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  return out;
}
