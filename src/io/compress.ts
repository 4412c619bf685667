import { spawn, spawnSync } from 'node:child_process';
import { Duplex, PassThrough, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { InputError, LadingError } from '../lib/errors.ts';
import type { ArchiveCompression } from '../lib/store-location.ts';

/**
 * Compression for image archives and layer blobs. zstd comes from node's zlib where it has it (Node ≥ 22.15, the
 * Actions node24 runtime), else from the `zstd` program; gzip from zlib everywhere.
 */
type ZstdZlib = {
  createZstdCompress?: (o?: { params?: Record<number, number> }) => Transform;
  createZstdDecompress?: () => Transform;
  constants: Record<string, number>;
};
const z = zlib as unknown as ZstdZlib;

let zstdProgram: boolean | undefined;
export function hasZstdProgram(): boolean {
  if (zstdProgram === undefined) {
    try {
      zstdProgram = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
    } catch {
      zstdProgram = false;
    }
  }
  return zstdProgram;
}

/** True when zstd can be produced and read here. */
export function zstdAvailable(): boolean {
  return typeof z.createZstdCompress === 'function' || hasZstdProgram();
}

/** The compression an export uses for a requested one: zstd falls back to gzip where zstd is unavailable. */
export function effectiveCompression(requested: ArchiveCompression): ArchiveCompression {
  return requested === 'zstd' && !zstdAvailable() ? 'gzip' : requested;
}

/** Default levels: fast enough to keep up with `docker save` on one core, close to xz in size. */
export const DEFAULT_LEVEL: Record<ArchiveCompression, number> = { zstd: 3, gzip: 6, none: 0 };

/** A child process as a Duplex: what is written goes to its stdin, what it prints comes out. */
function programStream(cmd: string, args: string[], what: string): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-2000);
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e) =>
    duplex.destroy(new LadingError(`${what}: could not run ${cmd}: ${e.message}`, `install ${cmd}`)),
  );
  child.on('close', (code, signal) => {
    if (code !== 0 && !duplex.destroyed) {
      duplex.destroy(
        new LadingError(
          `${what} failed (${cmd} exited ${code ?? signal}): ${stderr.trim() || 'no message'}`,
          'the data is not a valid archive; re-export it',
        ),
      );
    }
  });
  duplex.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return duplex;
}

export function compressStream(c: ArchiveCompression, level = DEFAULT_LEVEL[c]): Duplex {
  switch (c) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return zlib.createGzip({ level });
    case 'zstd': {
      // The zstd program first: it compresses on every core in its own process; zlib's zstd is single-threaded.
      const program = compressorProgram(c, level);
      if (program) return programStream(program[0], program[1], 'zstd compression');
      if (typeof z.createZstdCompress === 'function') {
        return z.createZstdCompress({
          params: { [z.constants.ZSTD_c_compressionLevel!]: level, [z.constants.ZSTD_c_nbWorkers!]: 0 },
        });
      }
      throw new LadingError(
        'zstd is not available on this machine',
        'set compression: gzip, or install zstd (apt-get install zstd)',
      );
    }
  }
}

export function decompressStream(c: ArchiveCompression): Duplex {
  switch (c) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return zlib.createGunzip();
    case 'zstd':
      if (typeof z.createZstdDecompress === 'function') return z.createZstdDecompress();
      if (hasZstdProgram()) return programStream('zstd', ['-d', '-q', '-c'], 'zstd decompression');
      throw new LadingError(
        'this object is zstd-compressed and zstd is not available here',
        'install zstd (apt-get install zstd) or run on Node ≥ 22.15',
      );
  }
}

/** Recognises the compression of a stream from its first bytes. */
export function sniffCompression(head: Buffer): ArchiveCompression {
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return 'none';
}

export function parseCompression(input: string, raw: string | undefined): ArchiveCompression {
  const v = (raw ?? '').trim().toLowerCase() || 'zstd';
  if (v === 'zstd' || v === 'gzip' || v === 'none') return v;
  throw new InputError(input, `'${raw}' is not a compression`, 'use zstd (default), gzip or none');
}

/** The program that compresses `c` in its own process (reading stdin, writing stdout), when there is one. */
export function compressorProgram(c: ArchiveCompression, level = DEFAULT_LEVEL[c]): [string, string[]] | undefined {
  if (c === 'zstd' && hasZstdProgram()) return ['zstd', [`-${level}`, '-q', '-c', '-T0']];
  return undefined;
}
