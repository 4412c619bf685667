import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/io/registry-client.ts';
import { openStore } from '../../src/io/store.ts';
import { LadingError } from '../../src/lib/errors.ts';
import { createManifest } from '../../src/lib/manifest.ts';
import type { ExtractResult } from '../../src/stages/extract.ts';
import { extractFromInputs } from '../helpers/extract.ts';
import type { Reporter } from '../../src/io/reporter.ts';
import { type LayerEntry, layerTar, saveArchive as saveArchiveBytes } from '../helpers/hostile-archive.ts';
import { startStandin } from '../helpers/standin-server.ts';
import { authPassword, busyboxContext, docker, testEnv, unique } from '../helpers/testenv.ts';

const env = testEnv();
const work = mkdtempSync(join(tmpdir(), 'lading-extract-it-'));
const logs: string[] = [];
const reporter: Reporter = {
  info: (l) => logs.push(l),
  warning: (l) => logs.push(`warning: ${l}`),
  group: (_n, fn) => fn(),
  secret: () => {},
};

let dirs = 0;
const fresh = (name: string) => {
  const d = join(work, `${name}-${dirs++}`);
  return d;
};

function extract(inputs: Record<string, string>): Promise<ExtractResult> {
  return extractFromInputs({ read: (n) => inputs[n] || undefined, reporter, env: {}, cwd: work });
}

/** A tree as comparable lines: path, type, mode, and content hash or link target (absolute targets made relative). */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const full = join(root, rel);
    const s = lstatSync(full);
    const mode = (s.mode & 0o777).toString(8);
    if (s.isSymbolicLink()) {
      let t = readlinkSync(full);
      if (t.startsWith('/')) t = posix.relative(posix.dirname(`/srv/${rel}`), t) || '.';
      out.push(`${rel} -> ${t}`);
    } else if (s.isDirectory()) {
      if (rel) out.push(`${rel}/ ${mode}`);
      for (const n of readdirSync(full).sort()) walk(rel ? `${rel}/${n}` : n);
    } else {
      out.push(`${rel} ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 12)}`);
    }
  };
  walk('');
  return out;
}

const repo = unique('lading-it/extract');
const plainRef = `${env.registry.host}/${repo}:v1`;
const authRef = `${env.authRegistry.host}/${repo}:v1`;
let reference: string[] = [];
let archive = '';
let archiveSha = '';
const dockerConfig = mkdtempSync(join(tmpdir(), 'lading-extract-docker-'));

before(() => {
  const ctx = busyboxContext(join(work, 'ctx'), {
    files: { 'app.txt': 'v1\n', 'gone.txt': 'deleted later\n' },
    extra: [
      'COPY data /srv/data',
      `RUN ["/bin/busybox", "sh", "-c", "B=/bin/busybox; $B ln -s app.txt /srv/link && $B ln -s /srv/data /srv/abs-link && $B rm /srv/gone.txt && $B rm -r /srv/data/sub && $B chmod 0750 /srv/data/run.sh && $B ln /srv/data/a.txt /srv/data/hard.txt"]`,
      'RUN ["/bin/busybox", "sh", "-c", "echo v2 > /srv/app.txt"]',
    ],
  });
  mkdirSync(join(ctx, 'data', 'sub'), { recursive: true });
  writeFileSync(join(ctx, 'data', 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'data', 'run.sh'), '#!/bin/sh\necho hi\n');
  writeFileSync(join(ctx, 'data', 'sub', 'b.txt'), 'b\n');
  docker(['build', '-q', '-t', plainRef, ctx]);
  docker(['tag', plainRef, authRef]);
  docker(['push', '-q', plainRef]);
  docker(['--config', dockerConfig, 'login', env.authRegistry.host, '-u', 'lading', '--password-stdin'], {
    input: authPassword('lading'),
  });
  docker(['--config', dockerConfig, 'push', '-q', authRef]);
  // The reference: what docker itself sees in a container of the image.
  const ctr = docker(['create', plainRef]);
  try {
    docker(['cp', `${ctr}:/srv`, join(work, 'reference')]);
  } finally {
    docker(['rm', ctr]);
  }
  reference = tree(join(work, 'reference'));
  // docker save | zstd into a local file.
  archive = join(work, 'image.tar.zst');
  const saved = spawnSync('sh', ['-c', 'docker save "$1" | zstd -q -3 -c > "$2"', 'sh', plainRef, archive], {
    env: { ...process.env, DOCKER_HOST: env.dockerHost },
  });
  assert.equal(saved.status, 0, String(saved.stderr));
  archiveSha = createHash('sha256').update(readFileSync(archive)).digest('hex');
});

after(() => {
  for (const ref of [plainRef, authRef])
    spawnSync('docker', ['rmi', '--no-prune', ref], { env: { ...process.env, DOCKER_HOST: env.dockerHost } });
  rmSync(work, { recursive: true, force: true });
  rmSync(dockerConfig, { recursive: true, force: true });
});

describe('extract from a registry', () => {
  it('copies files, a directory, symlinks and hard links as docker sees them, with the deleted file gone', async () => {
    const dest = fresh('plain');
    const r = await extract({ image: plainRef, paths: '/srv', destination: dest, 'cache-dir': fresh('cache') });
    assert.ok(
      reference.some((l) => l.startsWith('data/run.sh 750 ')),
      'the reference has the chmod',
    );
    assert.ok(!reference.some((l) => l.startsWith('gone.txt')) && !reference.some((l) => l.startsWith('data/sub')));
    assert.deepEqual(tree(join(dest, 'srv')), reference);
    assert.equal(readFileSync(join(dest, 'srv', 'app.txt'), 'utf8'), 'v2\n');
    assert.equal(
      readlinkSync(join(dest, 'srv', 'abs-link')),
      'data',
      'an absolute link is made relative to stay inside',
    );
    assert.match(r.digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(r.digest, docker(['inspect', '--format', '{{index .RepoDigests 0}}', plainRef]).split('@')[1]);
    assert.equal(r.imageId, docker(['inspect', '--format', '{{.Id}}', plainRef]));
    const app = r.files.find((f) => f.path === '/srv/app.txt')!;
    assert.equal(app.sha256, createHash('sha256').update('v2\n').digest('hex'));
    assert.deepEqual(
      r.files.find((f) => f.path === '/srv/link'),
      { path: '/srv/link', type: 'symlink', mode: '0777', target: 'app.txt' },
    );
    assert.ok(!existsSync(join(dest, 'bin')), 'only the requested paths');
    assert.ok(!readdirSync(dest).some((n) => n.startsWith('.lading-extract')), 'no staging dir left behind');
    assert.equal(r.layers.read, r.layers.total);
  });

  it('a second extract of the same image downloads no blob', async () => {
    const cache = fresh('cache');
    const first = await extract({ image: plainRef, paths: '/srv', destination: fresh('c1'), 'cache-dir': cache });
    assert.ok(first.layers.downloaded > 0);
    const second = await extract({ image: plainRef, paths: '/srv', destination: fresh('c2'), 'cache-dir': cache });
    assert.equal(second.layers.downloaded, 0);
    assert.equal(second.layers.bytesDownloaded, 0);
    assert.deepEqual(second.files, first.files);
  });

  it('stops reading layers once every requested file is settled', async () => {
    const r = await extract({
      image: plainRef,
      paths: '/srv/app.txt',
      destination: fresh('one'),
      'cache-dir': fresh('cache'),
    });
    assert.equal(r.layers.read, 1);
    assert.ok(r.layers.total >= 4);
    assert.equal(r.layers.downloaded, 2, 'the config and the top layer only');
  });

  it('reads the htpasswd registry with credentials, and says a login is needed without them', async () => {
    const dest = fresh('auth');
    const r = await extract({
      image: authRef,
      paths: '/srv/data\n/srv/link',
      destination: dest,
      'cache-dir': fresh('cache'),
      username: 'lading',
      password: authPassword('lading'),
    });
    assert.deepEqual(
      tree(join(dest, 'srv')),
      reference.filter((l) => l.startsWith('data') || l.startsWith('link')),
    );
    assert.ok(r.files.every((f) => f.path.startsWith('/srv/data') || f.path === '/srv/link'));
    await assert.rejects(
      extract({ image: authRef, paths: '/srv', destination: fresh('noauth'), 'cache-dir': fresh('cache') }),
      (e: LadingError) => /needs a login/.test(e.message),
    );
  });

  it('picks the platform from a manifest list (linux/amd64 by default, or the one asked for)', async () => {
    const mp = `${env.registry.host}/${unique('lading-it/extract-mp')}`;
    const config = mkdtempSync(join(tmpdir(), 'lading-extract-manifest-'));
    try {
      for (const arch of ['amd64', 'arm64']) {
        const ctx = join(work, `mp-${arch}`);
        mkdirSync(ctx);
        writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY arch /arch\n');
        writeFileSync(join(ctx, 'arch'), `${arch}\n`);
        docker(['build', '-q', '-t', `${mp}:${arch}`, ctx]);
        docker(['push', '-q', `${mp}:${arch}`]);
      }
      const cfg = ['--config', config];
      docker([...cfg, 'manifest', 'create', '--insecure', `${mp}:multi`, `${mp}:amd64`, `${mp}:arm64`]);
      docker([...cfg, 'manifest', 'annotate', '--arch', 'arm64', '--variant', 'v8', `${mp}:multi`, `${mp}:arm64`]);
      const listDigest = docker([...cfg, 'manifest', 'push', '--insecure', '--purge', `${mp}:multi`]).trim();
      const cache = fresh('cache');
      for (const [platform, want] of [
        ['', 'amd64'],
        ['linux/arm64', 'arm64'],
      ] as const) {
        const dest = fresh(`mp-${want}`);
        const r = await extract({
          image: `${mp}:multi`,
          paths: '/arch',
          destination: dest,
          platform,
          'cache-dir': cache,
        });
        assert.equal(readFileSync(join(dest, 'arch'), 'utf8'), `${want}\n`);
        assert.equal(r.digest, listDigest, 'the digest output is the list the tag names');
        assert.match(r.platform ?? '', new RegExp(`^linux/${want}`));
      }
      await assert.rejects(
        extract({
          image: `${mp}:multi`,
          paths: '/arch',
          destination: fresh('mp-x'),
          platform: 'linux/s390x',
          'cache-dir': fresh('cache'),
        }),
        (e: LadingError) => /no manifest for linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8\)/.test(e.message),
      );
    } finally {
      spawnSync('docker', ['rmi', '--no-prune', `${mp}:amd64`, `${mp}:arm64`], {
        env: { ...process.env, DOCKER_HOST: env.dockerHost },
      });
      rmSync(config, { recursive: true, force: true });
    }
  });

  it('names a missing path and why, and writes nothing', async () => {
    const dest = fresh('missing');
    await assert.rejects(
      extract({
        image: plainRef,
        paths: '/srv/app.txt\n/srv/gone.txt\n/nope',
        destination: dest,
        'cache-dir': fresh('cache'),
      }),
      (e: LadingError) =>
        /\/srv\/gone\.txt \(it was deleted by a later layer\)/.test(e.message) &&
        /\/nope \(no layer has it\)/.test(e.message) &&
        /nothing was written/.test(e.hint ?? ''),
    );
    assert.deepEqual(readdirSync(dest), []);
  });
});

describe('extract from an exported object', () => {
  it('reads a docker save | zstd archive in a local file: the same tree, then only the cache', async () => {
    const cache = fresh('cache');
    const dest = fresh('archive');
    const r = await extract({ source: archive, paths: '/srv', destination: dest, 'cache-dir': cache });
    assert.deepEqual(tree(join(dest, 'srv')), reference);
    assert.equal(r.imageId, docker(['inspect', '--format', '{{.Id}}', plainRef]));
    assert.equal(r.layers.downloaded, 1, 'the archive is read once');
    const again = await extract({ source: archive, paths: '/srv', destination: fresh('archive2'), 'cache-dir': cache });
    assert.equal(again.layers.downloaded, 0);
    assert.deepEqual(again.files, r.files);
  });

  it('refuses an archive whose sha256 is not the expected one', async () => {
    await assert.rejects(
      extract({
        source: archive,
        sha256: 'f'.repeat(64),
        paths: '/srv',
        destination: fresh('badsha'),
        'cache-dir': fresh('cache'),
      }),
      (e: LadingError) => /has sha256 .* expected f{64}/.test(e.message),
    );
  });

  it('reads the archive from S3 (s3rver)', async () => {
    process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
    const key = `${unique('extract')}/image.tar.zst`;
    const storeOpts = { endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true };
    const store = await openStore({ kind: 's3', bucket: env.s3.bucket, prefix: '' }, storeOpts);
    await store.put(key, readFileSync(archive));
    try {
      const cache = fresh('cache');
      const inputs = {
        source: `s3://${env.s3.bucket}/${key}`,
        paths: '/srv',
        'cache-dir': cache,
        's3-endpoint': env.s3.endpoint,
        's3-region': env.s3.region,
        's3-path-style': 'true',
      };
      const dest = fresh('s3');
      await extract({ ...inputs, destination: dest });
      assert.deepEqual(tree(join(dest, 'srv')), reference);
      const again = await extract({ ...inputs, destination: fresh('s3b') });
      assert.equal(again.layers.downloaded, 0);
    } finally {
      await store.delete(key);
    }
  });

  it('follows a manifest entry: a registry image by digest, a file archive by sha256', async () => {
    const digest = docker(['inspect', '--format', '{{index .RepoDigests 0}}', plainRef]).split('@')[1]!;
    const name = `${env.registry.host}/${repo}`;
    const imageId = docker(['inspect', '--format', '{{.Id}}', plainRef]);
    const manifest = createManifest({
      source: { repository: 'acme/x', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: new Date().toISOString() },
      tags: ['v1'],
      primary: 'v1',
      images: [
        {
          id: 'web',
          services: ['web'],
          name,
          tags: ['v1'],
          digest,
          ref: `${name}@${digest}`,
          transport: { kind: 'registry', registry: env.registry.host, provider: 'generic' },
        },
        {
          id: 'files',
          services: [],
          name: 'files',
          tags: ['v1'],
          digest: imageId,
          ref: imageId,
          transport: {
            kind: 'file',
            path: archive,
            sha256: archiveSha,
            size: statSync(archive).size,
            compression: 'zstd',
            mode: 'archive',
          },
        },
      ],
    });
    const file = join(work, 'lading-manifest.json');
    writeFileSync(file, JSON.stringify(manifest));
    for (const id of ['web', 'files']) {
      const dest = fresh(`manifest-${id}`);
      const r = await extract({
        manifest: file,
        image: id,
        paths: '/srv',
        destination: dest,
        'cache-dir': fresh('cache'),
      });
      assert.deepEqual(tree(join(dest, 'srv')), reference, id);
      assert.equal(r.digest, id === 'web' ? digest : imageId);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-made images: what no docker build produces (opaque whiteouts from overlayfs, hostile entries).

/** A docker-save archive (classic layout, gzip) of the given layers, bottom → top. */
async function saveArchive(layers: LayerEntry[][]): Promise<string> {
  const file = join(work, `${unique('crafted')}.tar.gz`);
  writeFileSync(file, gzipSync(await saveArchiveBytes(layers)));
  return file;
}

describe('extract: whiteouts and hostile layers (hand-made archives)', () => {
  it('an opaque directory hides what lower layers had in it', async () => {
    const file = await saveArchive([
      [
        { name: 'out/', type: 'directory' },
        { name: 'out/old.txt', body: 'old' },
        { name: 'out/keep/', type: 'directory' },
        { name: 'out/keep/k', body: 'k' },
      ],
      [{ name: 'out/', type: 'directory' }, { name: 'out/.wh..wh..opq' }, { name: 'out/new.txt', body: 'new' }],
    ]);
    const dest = fresh('opaque');
    await extract({ source: file, paths: '/out', destination: dest, 'cache-dir': fresh('cache') });
    assert.deepEqual(readdirSync(join(dest, 'out')), ['new.txt']);
  });

  it('refuses a symlink that climbs out of the destination, and writes nothing', async () => {
    const file = await saveArchive([
      [
        { name: 'srv/', type: 'directory' },
        { name: 'srv/evil', type: 'symlink', linkname: '../../../../etc' },
      ],
    ]);
    const dest = fresh('evil-link');
    await assert.rejects(
      extract({ source: file, paths: '/srv', destination: dest, 'cache-dir': fresh('cache') }),
      (e: LadingError) => /symlink \/srv\/evil points to '..\/..\/..\/..\/etc', outside the image root/.test(e.message),
    );
    assert.deepEqual(readdirSync(dest), []);
  });

  it('refuses a layer entry with ..', async () => {
    const file = await saveArchive([
      [
        { name: 'srv/', type: 'directory' },
        { name: 'srv/../../escape.txt', body: 'x' },
      ],
    ]);
    const dest = fresh('evil-entry');
    await assert.rejects(
      extract({ source: file, paths: '/srv', destination: dest, 'cache-dir': fresh('cache') }),
      (e: LadingError) => /points outside the image root/.test(e.message),
    );
    assert.ok(!existsSync(join(dirname(dest), 'escape.txt')));
  });

  it('never writes through a symlink of the image (a later entry under it is hidden)', async () => {
    const outside = fresh('outside');
    mkdirSync(outside);
    const file = await saveArchive([
      [
        { name: 'srv/', type: 'directory' },
        { name: 'srv/l', type: 'symlink', linkname: outside },
        { name: 'srv/l/pwned', body: 'x' },
      ],
    ]);
    const dest = fresh('through-link');
    await extract({ source: file, paths: '/srv', destination: dest, 'cache-dir': fresh('cache') });
    assert.deepEqual(readdirSync(outside), []);
    assert.ok(lstatSync(join(dest, 'srv', 'l')).isSymbolicLink());
  });

  it('reads a layers-mode index (blobs by stored sha256) from a file store', async () => {
    const root = fresh('layers-store');
    mkdirSync(join(root, 'blobs'), { recursive: true });
    const layers = [
      await layerTar([
        { name: 'a/', type: 'directory' },
        { name: 'a/x', body: 'x1' },
        { name: 'a/y', body: 'y' },
      ]),
      await layerTar([{ name: 'a/.wh.y' }, { name: 'a/x', body: 'x2', mode: 0o600 }]),
    ];
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const blob = (b: Buffer) => {
      const p = join(root, 'blobs', sha(b));
      writeFileSync(p, b);
      return p.slice(1);
    };
    const config = Buffer.from(
      JSON.stringify({
        os: 'linux',
        architecture: 'amd64',
        rootfs: { diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
      }),
    );
    const stored = layers.map((l) => gzipSync(l));
    const index = {
      schema: 'lading.layers/v1',
      imageId: `sha256:${sha(config)}`,
      name: 'crafted',
      repoTags: ['crafted:1'],
      config: { key: blob(config), sha256: sha(config), size: config.length, compression: 'none' },
      layers: stored.map((s, i) => ({
        key: blob(s),
        sha256: sha(s),
        size: s.length,
        compression: 'gzip',
        diffId: `sha256:${sha(layers[i]!)}`,
        uncompressedSize: layers[i]!.length,
      })),
    };
    const indexFile = join(root, 'img.index.json');
    writeFileSync(indexFile, JSON.stringify(index));
    const cache = fresh('cache');
    const dest = fresh('layers');
    const r = await extract({ source: indexFile, paths: '/a', destination: dest, 'cache-dir': cache });
    assert.deepEqual(readdirSync(join(dest, 'a')), ['x']);
    assert.equal(readFileSync(join(dest, 'a', 'x'), 'utf8'), 'x2');
    assert.equal(statSync(join(dest, 'a', 'x')).mode & 0o777, 0o600);
    assert.equal(r.imageId, index.imageId);
    const again = await extract({ source: indexFile, paths: '/a', destination: fresh('layers2'), 'cache-dir': cache });
    assert.equal(again.layers.downloaded, 0);
  });
});

describe('RegistryClient.blob', () => {
  it('follows a redirect to another origin without the Authorization header, and verifies the bytes', async () => {
    const body = 'layer bytes\n';
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const storage = await startStandin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(req.url.startsWith('/good') ? body : 'tampered!!!\n');
    });
    const registry = await startStandin((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        res.end();
        return;
      }
      const bad = req.url.includes('bad');
      res.writeHead(307, { location: `${storage.url}/${bad ? 'bad' : 'good'}?sig=1` });
      res.end();
    });
    try {
      const credential = { host: registry.host, username: 'u', password: 'p', provider: 'generic' as const };
      const client = new RegistryClient(registry.host, { credential });
      const chunks: Buffer[] = [];
      for await (const c of await client.blob('r', digest, { size: body.length })) chunks.push(c as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), body);
      assert.ok(registry.requests.some((r) => r.headers.authorization?.startsWith('Basic ')));
      assert.ok(storage.requests.length > 0 && storage.requests.every((r) => !r.headers.authorization));

      const tampered = new RegistryClient(`${registry.host}`, { credential });
      const stream = await tampered.blob('bad', digest);
      await assert.rejects(
        (async () => {
          for await (const _ of stream) void _;
        })(),
        (e: LadingError) => /arrived with digest sha256:/.test(e.message),
      );
      await assert.rejects(
        (async () => {
          for await (const _ of await client.blob('r', digest, { size: 3 })) void _;
        })(),
        (e: LadingError) => /longer than the 3 bytes/.test(e.message),
      );
    } finally {
      await registry.close();
      await storage.close();
    }
  });
});
