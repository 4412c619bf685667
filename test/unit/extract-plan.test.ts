import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError, LadingError } from '../../src/lib/errors.ts';
import {
  type EntryKind,
  findManifestImage,
  hardLinkTarget,
  type IndexEntry,
  isWithin,
  LayerWalk,
  normalizeEntryPath,
  normalizeRequestPath,
  normalizeRequests,
  parseImageManifest,
  parseImageReference,
  parsePlatform,
  safeJoin,
  safeLinkTarget,
  selectPlatform,
  whiteoutOf,
} from '../../src/lib/extract-plan.ts';

describe('normalizeRequestPath', () => {
  const ok: Array<[string, string]> = [
    ['/srv/app', 'srv/app'],
    ['srv/app/', 'srv/app'],
    ['./srv//app', 'srv/app'],
    ['/', ''],
    [' /etc/passwd ', 'etc/passwd'],
  ];
  for (const [raw, want] of ok)
    it(`${JSON.stringify(raw)} → ${JSON.stringify(want)}`, () => assert.equal(normalizeRequestPath(raw), want));
  for (const bad of ['', '  ', '/srv/../etc', '..', 'a/\0b']) {
    it(`refuses ${JSON.stringify(bad)} as an input error`, () =>
      assert.throws(() => normalizeRequestPath(bad), InputError));
  }
  it('drops paths inside other requested paths and duplicates', () => {
    assert.deepEqual(normalizeRequests(['/srv/a/b', '/srv/a', 'srv/a/', '/etc/x']), ['etc/x', 'srv/a']);
    assert.deepEqual(normalizeRequests(['/srv', '/']), ['']);
  });
  it('refuses an empty list', () => assert.throws(() => normalizeRequests([]), InputError));
});

describe('isWithin', () => {
  const cases: Array<[string, string, boolean]> = [
    ['srv/a', 'srv', true],
    ['srv', 'srv', true],
    ['srvx', 'srv', false],
    ['srv', 'srv/a', false],
    ['anything', '', true],
  ];
  for (const [p, base, want] of cases)
    it(`${p} within ${JSON.stringify(base)}: ${want}`, () => assert.equal(isWithin(p, base), want));
});

describe('normalizeEntryPath', () => {
  const cases: Array<[string, string | undefined]> = [
    ['./srv/a', 'srv/a'],
    ['srv/dir/', 'srv/dir'],
    ['/srv/a', 'srv/a'],
    ['./', undefined],
    ['.', undefined],
  ];
  for (const [name, want] of cases) it(`${name} → ${String(want)}`, () => assert.equal(normalizeEntryPath(name), want));
  for (const bad of ['../etc/passwd', 'srv/../../x', './a/..']) {
    it(`refuses the traversal entry ${bad}`, () =>
      assert.throws(() => normalizeEntryPath(bad), /outside the image root/));
  }
});

describe('safeLinkTarget', () => {
  const ok: Array<[string, string, string]> = [
    ['bin/sh', 'busybox', 'busybox'],
    ['bin/sh', '/bin/busybox', 'busybox'],
    ['srv/link', '/etc/passwd', '../etc/passwd'],
    ['srv/a/link', '../b/file', '../b/file'],
    ['srv/link', '../x', '../x'],
    ['link', '/', '.'],
    ['srv/link', '/srv', '.'],
  ];
  for (const [entry, target, want] of ok) {
    it(`/${entry} -> ${target} is written as ${want}`, () => assert.equal(safeLinkTarget(entry, target), want));
  }
  const bad: Array<[string, string]> = [
    ['link', '../etc/passwd'],
    ['srv/link', '../../etc'],
    ['srv/a/link', 'x/../../../../y'],
    ['srv/link', ''],
  ];
  for (const [entry, target] of bad) {
    it(`refuses /${entry} -> ${JSON.stringify(target)}`, () =>
      assert.throws(() => safeLinkTarget(entry, target), LadingError));
  }
  it('hard link targets are image paths, never outside', () => {
    assert.equal(hardLinkTarget('srv/b', './srv/a'), 'srv/a');
    assert.throws(() => hardLinkTarget('srv/b', '../a'), /outside the image root/);
  });
});

describe('safeJoin', () => {
  it('joins inside the destination', () => assert.equal(safeJoin('/tmp/out', 'srv/a'), '/tmp/out/srv/a'));
  it('refuses a path that resolves outside', () => assert.throws(() => safeJoin('/tmp/out', '../etc'), LadingError));
  it('refuses a sibling with the same prefix', () =>
    assert.throws(() => safeJoin('/tmp/out', '../out2/x'), LadingError));
});

describe('whiteoutOf', () => {
  const cases: Array<[string, ReturnType<typeof whiteoutOf>]> = [
    ['srv/.wh.gone.txt', { kind: 'delete', path: 'srv/gone.txt' }],
    ['.wh.top', { kind: 'delete', path: 'top' }],
    ['srv/dir/.wh..wh..opq', { kind: 'opaque', dir: 'srv/dir' }],
    ['.wh..wh..opq', { kind: 'opaque', dir: '' }],
    ['.wh..wh.plnk', { kind: 'delete', path: '' }],
    ['srv/normal', undefined],
    ['srv/x.wh.y', undefined],
  ];
  for (const [p, want] of cases) it(`${p} → ${JSON.stringify(want)}`, () => assert.deepEqual(whiteoutOf(p), want));
});

type Layer = Array<[string, EntryKind]>;

/** Walks layers given bottom → top, the way the stage does (top-down), and returns what each layer writes. */
function walk(requests: string[], layers: Layer[], stopWhenSettled = true) {
  const w = new LayerWalk(requests);
  const written: string[][] = [];
  let read = 0;
  for (const layer of [...layers].reverse()) {
    if (stopWhenSettled && w.settled()) break;
    read++;
    w.beginLayer();
    written.push(layer.filter(([p, k]) => w.decide(p, k) === 'write').map(([p]) => p));
    w.endLayer();
  }
  return { written: written.flat().sort(), read, missing: w.missing(), settled: w.settled() };
}

describe('LayerWalk (layers bottom → top, read top-down)', () => {
  const base: Layer = [
    ['srv', 'directory'],
    ['srv/a.txt', 'file'],
    ['srv/gone.txt', 'file'],
    ['srv/dir', 'directory'],
    ['srv/dir/old.txt', 'file'],
    ['srv/link', 'symlink'],
    ['etc', 'directory'],
    ['etc/x', 'file'],
  ];
  const cases: Array<{
    name: string;
    requests: string[];
    layers: Layer[];
    written: string[];
    read?: number;
    missing?: string[];
  }> = [
    {
      name: 'a single layer gives what was asked for, nothing else',
      requests: ['srv'],
      layers: [base],
      written: ['srv', 'srv/a.txt', 'srv/dir', 'srv/dir/old.txt', 'srv/gone.txt', 'srv/link'],
    },
    {
      name: 'a .wh. file in a later layer deletes the file',
      requests: ['srv'],
      layers: [base, [['srv/.wh.gone.txt', 'file']]],
      written: ['srv', 'srv/a.txt', 'srv/dir', 'srv/dir/old.txt', 'srv/link'],
    },
    {
      name: 'an opaque directory hides what lower layers had in it, keeps its own files',
      requests: ['srv'],
      layers: [
        base,
        [
          ['srv/dir', 'directory'],
          ['srv/dir/.wh..wh..opq', 'file'],
          ['srv/dir/new.txt', 'file'],
        ],
      ],
      written: ['srv', 'srv/a.txt', 'srv/dir', 'srv/dir/new.txt', 'srv/gone.txt', 'srv/link'],
    },
    {
      name: 'the upper version of a file wins',
      requests: ['srv/a.txt'],
      layers: [base, [['srv/a.txt', 'file']]],
      written: ['srv/a.txt'],
      read: 1,
    },
    {
      name: 'a file replacing a directory hides the lower directory contents',
      requests: ['srv'],
      layers: [base, [['srv/dir', 'file']]],
      written: ['srv', 'srv/a.txt', 'srv/dir', 'srv/gone.txt', 'srv/link'],
    },
    {
      name: 'a directory deleted then re-created in one layer keeps only the new contents',
      requests: ['srv/dir'],
      layers: [
        base,
        [
          ['srv/.wh.dir', 'file'],
          ['srv/dir', 'directory'],
          ['srv/dir/fresh', 'file'],
        ],
      ],
      written: ['srv/dir', 'srv/dir/fresh'],
      read: 1,
    },
    {
      name: 'a whiteout does not hide a file of its own layer',
      requests: ['srv/a.txt'],
      layers: [
        [
          ['srv/a.txt', 'file'],
          ['srv/.wh.a.txt', 'file'],
        ],
      ],
      written: ['srv/a.txt'],
    },
    {
      name: 'a file asked for in the top layer stops the walk there',
      requests: ['srv/new'],
      layers: [base, base, [['srv/new', 'file']]],
      written: ['srv/new'],
      read: 1,
    },
    {
      name: 'a directory asked for needs every layer (lower layers may add files)',
      requests: ['srv/dir'],
      layers: [base, [['srv/dir/more', 'file']]],
      written: ['srv/dir', 'srv/dir/more', 'srv/dir/old.txt'],
      read: 2,
    },
    {
      name: 'a deleted path is reported missing',
      requests: ['srv/gone.txt'],
      layers: [base, [['srv/.wh.gone.txt', 'file']]],
      written: [],
      read: 1,
      missing: ['srv/gone.txt'],
    },
    {
      name: 'a path under a symlink is reported missing (links are not followed)',
      requests: ['srv/link/x'],
      layers: [base],
      written: [],
      missing: ['srv/link/x'],
    },
    {
      name: 'entries under a symlink of the same layer are never written',
      requests: ['srv'],
      layers: [
        [
          ['srv', 'directory'],
          ['srv/l', 'symlink'],
          ['srv/l/passwd', 'file'],
        ],
      ],
      written: ['srv', 'srv/l'],
    },
    {
      name: 'the root asks for everything, whiteouts applied',
      requests: [''],
      layers: [
        [
          ['a', 'file'],
          ['b', 'file'],
        ],
        [['.wh.a', 'file']],
      ],
      written: ['b'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = walk(c.requests, c.layers);
      assert.deepEqual(r.written, [...c.written].sort());
      if (c.read !== undefined) assert.equal(r.read, c.read);
      assert.deepEqual(
        r.missing.map((m) => m.path),
        c.missing ?? [],
      );
    });
  }
  it('says why a path is missing', () => {
    const r = walk(['srv/link/x', 'srv/gone.txt', 'nope'], [base, [['srv/.wh.gone.txt', 'file']]], false);
    assert.deepEqual(Object.fromEntries(r.missing.map((m) => [m.path, m.reason])), {
      'srv/link/x': '/srv/link is a file or symlink in the image, not a directory',
      'srv/gone.txt': 'it was deleted by a later layer',
      nope: 'no layer has it',
    });
  });
});

describe('parsePlatform / selectPlatform', () => {
  it('defaults to linux/amd64', () =>
    assert.deepEqual(parsePlatform(undefined), { os: 'linux', architecture: 'amd64' }));
  it('reads a variant', () =>
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  it('refuses junk', () => assert.throws(() => parsePlatform('amd64'), InputError));
  const d = (n: number) => `sha256:${String(n).repeat(64)}`;
  const index: IndexEntry[] = [
    { digest: d(1), platform: { os: 'linux', architecture: 'amd64' } },
    { digest: d(2), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { digest: d(3), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    {
      digest: d(4),
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    { digest: d(5), platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
  ];
  const cases: Array<[string, string]> = [
    ['linux/amd64', d(1)],
    ['linux/arm64', d(2)],
    ['linux/arm64/v8', d(2)],
    ['linux/arm/v7', d(3)],
    ['linux/arm/v6', d(5)],
    ['linux/arm', d(3)],
  ];
  for (const [p, want] of cases)
    it(`${p} picks ${want.slice(7, 9)}…`, () => assert.equal(selectPlatform(index, parsePlatform(p)).digest, want));
  it('names the platforms there are when none matches', () => {
    assert.throws(
      () => selectPlatform(index, parsePlatform('linux/s390x')),
      /has: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7, linux\/arm\/v6/,
    );
  });
  it('arm64 entries without a variant count as v8', () => {
    assert.equal(
      selectPlatform(
        [{ digest: d(7), platform: { os: 'linux', architecture: 'arm64' } }],
        parsePlatform('linux/arm64/v8'),
      ).digest,
      d(7),
    );
  });
});

describe('parseImageReference', () => {
  const dg = `sha256:${'a'.repeat(64)}`;
  const cases: Array<[string, string, string, string]> = [
    ['127.0.0.1:5000/x/y:v1', '127.0.0.1:5000', 'x/y', 'v1'],
    ['127.0.0.1:5000/x/y', '127.0.0.1:5000', 'x/y', 'latest'],
    [`127.0.0.1:5000/x/y@${dg}`, '127.0.0.1:5000', 'x/y', dg],
    [`ghcr.io/a/b:t@${dg}`, 'ghcr.io', 'a/b', dg],
    ['busybox', 'docker.io', 'library/busybox', 'latest'],
  ];
  for (const [raw, host, repo, ref] of cases) {
    it(`${raw}`, () =>
      assert.deepEqual(
        [parseImageReference(raw).host, parseImageReference(raw).repository, parseImageReference(raw).reference],
        [host, repo, ref],
      ));
  }
  for (const bad of ['', 'a b', 'x@sha256:123'])
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseImageReference(bad), InputError));
});

describe('parseImageManifest', () => {
  const desc = (n: number) => ({ mediaType: 'x', size: n, digest: `sha256:${String(n).repeat(64)}` });
  it('reads config and layers in order', () => {
    const m = parseImageManifest('application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      config: desc(1),
      layers: [desc(2), desc(3)],
    });
    assert.deepEqual(
      m.layers.map((l) => l.size),
      [2, 3],
    );
  });
  it('refuses schema 1 with a hint', () => {
    assert.throws(
      () => parseImageManifest('application/vnd.docker.distribution.manifest.v1+prettyjws', { schemaVersion: 1 }),
      /schema 1/,
    );
  });
  it('refuses a manifest without layers', () =>
    assert.throws(() => parseImageManifest('', { schemaVersion: 2 }), /not an image manifest/));
});

describe('findManifestImage', () => {
  const images = [
    { id: 'web', services: ['web', 'web-2'], name: 'reg/web' },
    { id: 'tools', services: [], name: 'reg/tools' },
  ];
  const cases: Array<[string, string]> = [
    ['web', 'web'],
    ['web-2', 'web'],
    ['reg/tools', 'tools'],
  ];
  for (const [w, id] of cases) it(`${w} → ${id}`, () => assert.equal(findManifestImage(images, w).id, id));
  it('lists the ids when nothing matches', () =>
    assert.throws(
      () => findManifestImage(images, 'api'),
      (e: LadingError) => /no image 'api'/.test(e.message) && /web, tools/.test(e.hint ?? ''),
    ));
  it('takes the only image when none is named', () => assert.equal(findManifestImage([images[0]!], '').id, 'web'));
});
