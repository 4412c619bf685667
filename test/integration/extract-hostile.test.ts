import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LadingError } from '../../src/lib/errors.ts';
import { extractFromInputs } from '../helpers/extract.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { climbingChain, type LayerEntry, writeSaveArchive } from '../helpers/hostile-archive.ts';
import { filesWithMarker, plantSentinel, snapshot } from '../helpers/sentinel.ts';

// The attacks of the security review on extract, each as a hand-made image: a chain of relative links that passes
// a lexical `..` count yet resolves to `/`, and a directory replaced by a link later in the same layer while records
// (a deferred hard link, a file a hard link copies, a directory mode) still name paths below it.

const work = mkdtempSync(join(tmpdir(), 'lading-extract-hostile-'));
const reporter: Reporter = { info: () => {}, warning: () => {}, group: (_n, fn) => fn(), secret: () => {} };
after(() => rmSync(work, { recursive: true, force: true }));
/** Enough links to climb from the staging directory to `/` (the kernel follows at most 40 links per lookup). */
const CHAIN = work.split('/').length + 4;

let n = 0;
/** Extracts `/` of an image made of `layers` into a fresh destination beside a sentinel tree; returns both. */
async function attack(layers: (outside: string) => LayerEntry[][]) {
  const root = join(work, `case-${n++}`);
  const outside = join(root, 'outside');
  const dest = join(root, 'dest');
  mkdirSync(outside, { recursive: true });
  plantSentinel(outside);
  const before = snapshot(outside);
  const file = await writeSaveArchive(join(root, 'image.tar'), layers(outside));
  let error: unknown;
  await extractFromInputs({
    read: (k) => ({ source: file, paths: '/', destination: dest, 'cache-dir': join(root, 'cache') })[k],
    reporter,
    env: {},
    cwd: root,
  }).catch((e: unknown) => (error = e));
  if (error !== undefined && !(error instanceof LadingError)) throw error;
  return { outside, dest, before, error };
}

/** `d` (a directory with things below it), then `d` replaced by a link to the sentinel through the chain. */
const replaceByEscape = (outside: string): LayerEntry => ({
  name: 'd',
  type: 'symlink',
  linkname: `u${CHAIN}${outside}`,
});

describe('extract: hostile layers never touch anything outside the destination', () => {
  it('a deferred hard link below a directory replaced by an escaping link is not written outside', async () => {
    const r = await attack((outside) => [
      [
        ...climbingChain(CHAIN),
        { name: 'd/', type: 'directory' },
        { name: 'd/pwned', type: 'link', linkname: 'x' },
        replaceByEscape(outside),
        { name: 'x', body: '#!/bin/sh\necho owned\n', mode: 0o755 },
      ],
    ]);
    assert.ok(!existsSync(join(r.outside, 'pwned')), 'a file was written outside the destination');
    assert.deepEqual(snapshot(r.outside), r.before);
  });

  it('a hard link to a file below a replaced directory copies nothing from outside', async () => {
    const r = await attack((outside) => [
      [
        ...climbingChain(CHAIN),
        { name: 'd/', type: 'directory' },
        { name: 'd/secret.txt', body: 'decoy' },
        replaceByEscape(outside),
        { name: 'leak', type: 'link', linkname: 'd/secret.txt' },
      ],
    ]);
    if (existsSync(r.dest)) assert.deepEqual(filesWithMarker(r.dest), [], 'a file from outside was copied in');
    if (existsSync(join(r.dest, 'leak'))) assert.equal(readFileSync(join(r.dest, 'leak'), 'utf8'), 'decoy');
    assert.deepEqual(snapshot(r.outside), r.before);
  });

  it('the mode and time of a directory below a replaced directory are not applied outside', async () => {
    const r = await attack((outside) => [
      [
        ...climbingChain(CHAIN),
        { name: 'd/', type: 'directory' },
        { name: 'd/sub/', type: 'directory', mode: 0o777, mtime: new Date('2030-01-01T00:00:00Z') },
        replaceByEscape(outside),
      ],
    ]);
    assert.deepEqual(snapshot(r.outside), r.before, 'a directory outside changed mode or time');
  });

  it('a file below a replaced directory in a lower layer is not written through the link', async () => {
    const r = await attack((outside) => [
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/sub/', type: 'directory' },
        { name: 'd/sub/f', body: 'low' },
      ],
      [...climbingChain(CHAIN), replaceByEscape(outside), { name: 'd/sub/g', body: 'up' }],
    ]);
    assert.deepEqual(snapshot(r.outside), r.before);
  });

  it('the chain itself is extracted as links, never followed', async () => {
    const r = await attack(() => [[...climbingChain(3), { name: 'u3/escaped.txt', body: 'x' }]]);
    assert.deepEqual(snapshot(r.outside), r.before);
    assert.ok(!existsSync(join(r.outside, '..', '..', 'escaped.txt')));
  });
});
