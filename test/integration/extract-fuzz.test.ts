import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { LadingError } from '../../src/lib/errors.ts';
import { extractFromInputs } from '../helpers/extract.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { climbingChain, type LayerEntry, writeSaveArchive } from '../helpers/hostile-archive.ts';
import { filesWithMarker, plantSentinel, snapshot } from '../helpers/sentinel.ts';

// A property fuzzer for extract: random images (files, directories, relative/absolute/chained symlinks, hard links,
// whiteouts, opaque dirs, a directory replaced by a link and back, in one layer or across layers) are extracted
// beside a sentinel tree; after each, nothing outside the destination changed (content, mode, mtime) and no output
// file holds content from outside. Malformed images may be refused (LadingError); anything else is a bug.
//
// CI runs a bounded, seeded number of cases. A long campaign (see SECURITY.md):
//   LADING_FUZZ_RUNS=20000 LADING_FUZZ_SEED=$RANDOM node scripts/run-tests.mjs test/integration/extract-fuzz.test.ts
// A failure prints the seed and the shrunk counterexample; rerun with that seed (and LADING_FUZZ_PATH) to replay.

const RUNS = Number(process.env.LADING_FUZZ_RUNS || 200);
const SEED = Number(process.env.LADING_FUZZ_SEED || 0x1ad1e6);
const PATH = process.env.LADING_FUZZ_PATH;

const work = mkdtempSync(join(tmpdir(), 'lading-extract-fuzz-'));
after(() => rmSync(work, { recursive: true, force: true }));
const reporter: Reporter = { info: () => {}, warning: () => {}, group: (_n, fn) => fn(), secret: () => {} };
const CHAIN = work.split('/').length + 4;

function arbitraryImage(outside: string): fc.Arbitrary<{ layers: LayerEntry[][]; request: string }> {
  const seg = fc.constantFrom('a', 'b', 'c', 'd');
  const path = fc.array(seg, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));
  const mode = fc.constantFrom(0o644, 0o755, 0o777, 0o600, 0o000, 0o4755);
  const mtime = fc.option(fc.date({ min: new Date('1990-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }), {
    nil: undefined,
  });
  const linkTarget = fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('.', '..', '../..', 'a/..', 'a/../..', '/', '/etc', '/etc/passwd') },
    { weight: 1, arbitrary: fc.constantFrom(outside, `${outside}/a`, `${outside}/c`, `${outside}/b`) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(`u${CHAIN}${outside}`, `u${CHAIN}${outside}/a`, `u${CHAIN}${outside}/c`, `u${CHAIN}`),
    },
    { weight: 1, arbitrary: fc.nat({ max: 12 }).map((n) => `${'../'.repeat(n)}outside`) },
    { weight: 1, arbitrary: path },
    { weight: 1, arbitrary: path.map((p) => `/${p}`) },
  );
  const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
  const entry: fc.Arbitrary<LayerEntry> = fc.oneof(
    w(3, fc.record({ name: path.map((p) => `${p}/`), type: fc.constant('directory' as const), mode, mtime })),
    w(
      4,
      fc.record({ name: path, type: fc.constant('file' as const), body: fc.constantFrom('x', 'yy', ''), mode, mtime }),
    ),
    w(2, fc.record({ name: path, type: fc.constant('symlink' as const), linkname: linkTarget, mtime })),
    w(1, fc.record({ name: path, type: fc.constant('link' as const), linkname: path, mode })),
    w(
      1,
      path.map((p) => {
        const parts = p.split('/');
        parts[parts.length - 1] = `.wh.${parts[parts.length - 1]}`;
        return { name: parts.join('/') };
      }),
    ),
    w(
      1,
      path.map((p) => ({ name: `${p}/.wh..wh..opq` })),
    ),
  );
  // A directory with something below it replaced by a link (often one that escapes), then entries that name the
  // paths below it again: what the stale records of a replaced directory would act on.
  const replacement: fc.Arbitrary<LayerEntry[]> = fc
    .tuple(seg, seg, path, linkTarget, fc.nat({ max: 3 }), fc.nat({ max: 4 }), mode)
    .map(([p, q, x, target, below, after, m]) => {
      const under: LayerEntry[] = [
        { name: `${p}/${q}`, body: 'decoy', mode: m },
        { name: `${p}/${q}/`, type: 'directory', mode: 0o777, mtime: new Date('2030-01-01') },
        { name: `${p}/${q}`, type: 'link', linkname: x },
        { name: `${p}/${q}`, type: 'symlink', linkname: target },
      ];
      const then: LayerEntry[] = [
        { name: x, body: 'payload', mode: 0o755 },
        { name: x, type: 'link', linkname: `${p}/${q}` },
        { name: `${p}/`, type: 'directory' },
        { name: `${p}/${q}/z`, body: 'through' },
        { name: `${p}/${q}/`, type: 'directory', mode: 0o777 },
      ];
      return [
        { name: `${p}/`, type: 'directory' as const },
        under[below]!,
        { name: p, type: 'symlink' as const, linkname: target },
        then[after]!,
      ];
    });
  // Some layers start with the climbing chain, so links through it can reach the sentinel by an absolute path.
  const layer = fc
    .tuple(
      fc.boolean(),
      fc.array(
        fc.oneof(
          entry.map((e) => [e]),
          replacement,
        ),
        { minLength: 1, maxLength: 6 },
      ),
    )
    .map(([chain, chunks]) => (chain ? [...climbingChain(CHAIN), ...chunks.flat()] : chunks.flat()));
  const request = fc.oneof(
    fc.constant('/'),
    path.map((p) => `/${p}`),
    fc.constant(`/u${CHAIN}`),
  );
  return fc.record({ layers: fc.array(layer, { minLength: 1, maxLength: 4 }), request });
}

let n = 0;
const outcomes = { extracted: 0, refused: 0 };
async function check(image: { layers: LayerEntry[][]; request: string }, outside: string): Promise<void> {
  const root = join(work, `case-${n++}`);
  const dest = join(root, 'dest');
  mkdirSync(root);
  const file = await writeSaveArchive(join(root, 'image.tar'), image.layers);
  const before = snapshot(outside);
  const inputs: Record<string, string> = {
    source: file,
    paths: image.request,
    destination: dest,
    'cache-dir': join(root, 'cache'),
  };
  try {
    await extractFromInputs({ read: (k) => inputs[k], reporter, env: {}, cwd: root });
    outcomes.extracted++;
  } catch (e) {
    if (!(e instanceof LadingError)) throw e;
    outcomes.refused++;
  }
  assert.deepEqual(snapshot(outside), before, 'something outside the destination changed');
  if (existsSync(dest)) assert.deepEqual(filesWithMarker(dest), [], 'an output file holds content from outside');
  rmSync(root, { recursive: true, force: true });
}

describe('extract: property fuzzer over hostile layer sequences', () => {
  it(`leaves everything outside the destination untouched (${RUNS} seeded cases)`, async (t) => {
    const outside = join(work, 'outside');
    mkdirSync(outside);
    plantSentinel(outside);
    await fc.assert(
      fc.asyncProperty(arbitraryImage(outside), (image) => check(image, outside)),
      { numRuns: RUNS, seed: SEED, ...(PATH && { path: PATH }), endOnFailure: true },
    );
    t.diagnostic(`seed ${SEED}: ${outcomes.extracted} extracted, ${outcomes.refused} refused as malformed`);
  });
});
