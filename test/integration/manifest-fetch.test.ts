import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeFor } from '../../src/io/image-load.ts';
import { fetchText } from '../../src/io/manifest-fetch.ts';
import { LadingError } from '../../src/lib/errors.ts';
import { createManifest, serializeManifest } from '../../src/lib/manifest.ts';
import { signManifest } from '../../src/lib/manifest-signature.ts';
import { readManifestFrom, storeSignature } from '../../src/io/manifest-source.ts';
import { type ObjectStore, StoreError } from '../../src/io/store.ts';
import { extractFromInputs } from '../helpers/extract.ts';
import { writeSaveArchive } from '../helpers/hostile-archive.ts';

// A manifest decides what runs on the hosts: whoever can change it in transit, or answer in place of its server,
// must not get a deploy. And a manifest must not choose where the runner's signed store requests go.

const D = `sha256:${'a'.repeat(64)}`;
const text = serializeManifest(
  createManifest({
    source: { repository: 'acme/shop', ref: 'refs/heads/main', sha: 'a'.repeat(40), created: '2026-11-24T01:02:03Z' },
    tags: ['main-aaaaaaa'],
    primary: 'main-aaaaaaa',
    images: [
      {
        id: 'web',
        services: ['web'],
        name: '127.0.0.1:5000/shop/web',
        tags: ['main-aaaaaaa'],
        digest: D,
        ref: `127.0.0.1:5000/shop/web@${D}`,
        transport: { kind: 'registry', registry: '127.0.0.1:5000', provider: 'generic' },
      },
    ],
  } as Parameters<typeof createManifest>[0]),
);

const work = mkdtempSync(join(tmpdir(), 'lading-manifest-fetch-'));
const requests: IncomingMessage[] = [];
let routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {};
let server: Server;
let base = '';
before(async () => {
  server = createServer((req, res) => {
    requests.push(req);
    const route = routes[req.url ?? ''];
    if (route) route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(work, { recursive: true, force: true });
});

const refused = (re: RegExp) => (e: Error) => e instanceof LadingError && re.test(e.message);

describe('manifests are fetched over a bounded, https-only path', () => {
  it('refuses plain http to a host that is not loopback', async () => {
    await assert.rejects(readManifestFrom('manifest', 'http://manifests.example.test/m.json'), refused(/is not https/));
  });

  it('refuses a redirect that leaves https (or goes to plain http elsewhere)', async () => {
    routes = { '/m.json': (_q, r) => r.writeHead(302, { location: 'http://evil.example.test/m.json' }).end() };
    await assert.rejects(readManifestFrom('manifest', `${base}/m.json`), refused(/is not https/));
  });

  it('names a signed URL in errors without its query (the signature)', async () => {
    routes = {};
    await assert.rejects(
      readManifestFrom('manifest', `${base}/gone.json?X-Amz-Signature=s3cr3tsig`),
      (e: Error) => /answered HTTP 404/.test(e.message) && !e.message.includes('s3cr3tsig'),
    );
  });

  it('stops following redirects after a few', async () => {
    routes = { '/loop': (_q, r) => r.writeHead(302, { location: '/loop' }).end() };
    await assert.rejects(readManifestFrom('manifest', `${base}/loop`), refused(/redirects more than 5 times/));
  });

  it('refuses a manifest larger than the limit, declared or streamed', async () => {
    const big = `{"x":"${'a'.repeat(2 * 1024 * 1024)}"}`;
    routes = {
      '/declared': (_q, r) => r.writeHead(200, { 'content-length': Buffer.byteLength(big) }).end(big),
      '/chunked': (_q, r) => {
        r.writeHead(200);
        r.write(big.slice(0, 1024 * 1024));
        r.end(big.slice(1024 * 1024));
      },
    };
    for (const path of ['/declared', '/chunked']) {
      await assert.rejects(
        readManifestFrom('manifest', `${base}${path}`, { maxBytes: 1024 * 1024 }),
        refused(/larger than 1048576 bytes/),
      );
    }
  });

  it('refuses a body that is not JSON at its first bytes, without waiting for the rest', async () => {
    routes = {
      '/html': (_q, r) => {
        r.writeHead(200);
        r.write('<html><body>login</body>'); // and never ends
      },
    };
    const started = Date.now();
    await assert.rejects(fetchText(`${base}/html`, { timeoutMs: 20_000 }), refused(/is not a JSON manifest/));
    assert.ok(Date.now() - started < 5000);
  });

  it('gives up on a server that never answers', async () => {
    routes = { '/slow': () => {} };
    await assert.rejects(fetchText(`${base}/slow`, { timeoutMs: 500 }), refused(/did not answer in time/));
  });

  it('with a manifest-secret, accepts only a manifest whose detached signature matches', async () => {
    const path = join(work, 'signed.json');
    writeFileSync(path, text);
    await assert.rejects(readManifestFrom('manifest', path, { secret: 's3cret' }), refused(/has no valid signature/));
    writeFileSync(`${path}.sig`, signManifest(text, 'other'));
    await assert.rejects(readManifestFrom('manifest', path, { secret: 's3cret' }), refused(/does not match/));
    writeFileSync(`${path}.sig`, signManifest(text, 's3cret'));
    assert.equal((await readManifestFrom('manifest', path, { secret: 's3cret' })).primary, 'main-aaaaaaa');
    routes = {
      '/s.json': (_q, r) => r.writeHead(200).end(text.replace('main-aaaaaaa', 'main-aaaaaaa')),
      '/s.json.sig': (_q, r) => r.writeHead(200).end(signManifest(text, 's3cret')),
      '/forged.json': (_q, r) => r.writeHead(200).end(text.replace('acme/shop', 'evil/shop')),
      '/forged.json.sig': (_q, r) => r.writeHead(200).end(signManifest(text, 's3cret')),
    };
    assert.equal((await readManifestFrom('manifest', `${base}/s.json`, { secret: 's3cret' })).primary, 'main-aaaaaaa');
    await assert.rejects(
      readManifestFrom('manifest', `${base}/forged.json`, { secret: 's3cret' }),
      refused(/does not match/),
    );
  });

  it('a signature that exists but cannot be read is said as such, not as an unsigned manifest', async () => {
    // a presigned manifest URL: its query signs that one object, so <url>.sig with the same query is refused (403)
    routes = {
      '/p.json': (_q, r) => r.writeHead(200).end(text),
      '/p.json?X-Amz-Signature=abc123secret': (_q, r) => r.writeHead(200).end(text),
      '/p.json.sig?X-Amz-Signature=abc123secret': (_q, r) => r.writeHead(403).end('denied'),
      '/e.json': (_q, r) => r.writeHead(200).end(text),
      '/e.json.sig': (_q, r) => r.writeHead(500).end('oops'),
    };
    await assert.rejects(
      readManifestFrom('manifest', `${base}/p.json?X-Amz-Signature=abc123secret`, { secret: 's3cret' }),
      (err: Error) =>
        err instanceof LadingError &&
        /signature .*\/p\.json\.sig answered HTTP 403/.test(err.message) &&
        /presigned or signed URL/.test(err.hint ?? '') &&
        !/abc123secret/.test(`${err.message} ${err.hint}`),
    );
    await assert.rejects(
      readManifestFrom('manifest', `${base}/p.json`, { secret: 's3cret' }),
      refused(/p\.json\.sig is missing/),
    );
    await assert.rejects(
      readManifestFrom('manifest', `${base}/e.json`, { secret: 's3cret' }),
      refused(/e\.json\.sig answered HTTP 500/),
    );
    // a file: its .sig a directory (unreadable as a file)
    const path = join(work, 'dir-sig.json');
    writeFileSync(path, text);
    mkdirSync(`${path}.sig`);
    await assert.rejects(
      readManifestFrom('manifest', path, { secret: 's3cret' }),
      refused(/has a signature file .*dir-sig\.json\.sig that cannot be read \(EISDIR\)/),
    );
  });

  it('a store signature: missing is undefined, any other store error is thrown as it is', async () => {
    const store = (err: Error) => ({ getText: () => Promise.reject(err) }) as unknown as ObjectStore;
    assert.equal(await storeSignature(store(new StoreError('gone', undefined, true)), 'm.json'), undefined);
    await assert.rejects(
      storeSignature(store(new StoreError('no permission for reading s3://b/m.json.sig', undefined)), 'm.json'),
      /no permission/,
    );
  });

  it("extract's source: https:// takes the same path: redirects that stay on https are followed, others refused", async () => {
    const archive = readFileSync(await writeSaveArchive(join(work, 'image.tar'), [[{ name: 'a.txt', body: 'a' }]]));
    routes = {
      '/image.tar': (_q, r) => r.writeHead(302, { location: '/moved/image.tar' }).end(),
      '/moved/image.tar': (_q, r) => r.writeHead(200).end(archive),
      '/evil.tar': (_q, r) => r.writeHead(302, { location: 'http://evil.example.test/image.tar' }).end(),
    };
    const extract = (source: string, name: string) =>
      extractFromInputs({
        read: (k) =>
          ({ source, paths: '/a.txt', destination: join(work, name), 'cache-dir': join(work, `${name}-cache`) })[k],
        reporter: { info: () => {}, warning: () => {}, group: (_n, fn) => fn(), secret: () => {} },
        env: {},
        cwd: work,
      });
    await extract(`${base}/image.tar`, 'extracted');
    assert.equal(readFileSync(join(work, 'extracted', 'a.txt'), 'utf8'), 'a');
    await assert.rejects(extract(`${base}/evil.tar`, 'evil'), refused(/is not https/));
  });
});

/** A ustar header for one regular file of `size` bytes (what a hostile server puts before an endless body). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (off: number, len: number, v: string) => h.write(v, off, len, 'ascii');
  field(0, 100, name);
  field(100, 8, '0000644\0');
  field(108, 8, '0000000\0');
  field(116, 8, '0000000\0');
  field(124, 12, `${size.toString(8).padStart(11, '0')}\0`);
  field(136, 12, '00000000000\0');
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  field(148, 8, '        ');
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

describe("extract's source: https:// is bounded in size and time", () => {
  const filesUnder = (dir: string): Array<{ path: string; size: number }> => {
    const out: Array<{ path: string; size: number }> = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else out.push({ path: p, size: statSync(p).size });
      }
    };
    if (existsSync(dir)) walk(dir);
    return out;
  };
  const extract = (source: string, name: string, extra: Record<string, string>) =>
    extractFromInputs({
      read: (k) =>
        ({
          source,
          paths: '/big.bin',
          destination: join(work, name),
          'cache-dir': join(work, `${name}-cache`),
          ...extra,
        })[k],
      reporter: { info: () => {}, warning: () => {}, group: (_n, fn) => fn(), secret: () => {} },
      env: {},
      cwd: work,
    });

  it('refuses a body that streams past source-max-size while it streams, and leaves no partial blob', async () => {
    let sent = 0;
    routes = {
      // a 1 GiB file entry whose bytes never end (until the client goes away, or 256 MiB)
      '/endless.tar': (_q, r) => {
        r.writeHead(200, { 'content-type': 'application/x-tar' });
        const chunk = Buffer.alloc(64 * 1024);
        let first = true;
        const pump = () => {
          while (sent < 256 * 1024 * 1024 && !r.destroyed) {
            const data = first ? Buffer.concat([tarHeader('big.bin', 1024 ** 3), chunk]) : chunk;
            first = false;
            sent += data.length;
            if (!r.write(data)) return void r.once('drain', pump);
          }
          r.end();
        };
        pump();
      },
    };
    await assert.rejects(
      extract(`${base}/endless.tar`, 'endless', { 'source-max-size': '1m' }),
      refused(/larger than source-max-size \(1048576 bytes\)/),
    );
    assert.ok(sent < 32 * 1024 * 1024, `the server got to send ${sent} bytes: the download was not cut off`);
    assert.deepEqual(filesUnder(join(work, 'endless')), [], 'something was extracted');
    const left = filesUnder(join(work, 'endless-cache')).filter((f) => f.size > 1024 * 1024);
    assert.deepEqual(left, [], 'a partial blob larger than the limit stayed in the cache');
  });

  it('refuses a declared length above source-max-size before reading the body', async () => {
    routes = {
      '/declared.tar': (_q, r) => {
        r.writeHead(200, { 'content-length': String(2 * 1024 * 1024) });
        r.end(Buffer.alloc(2 * 1024 * 1024));
      },
    };
    await assert.rejects(
      extract(`${base}/declared.tar`, 'declared', { 'source-max-size': '1m' }),
      refused(/larger than source-max-size/),
    );
  });

  it('abandons a source that stalls longer than source-idle-timeout', async () => {
    routes = {
      '/stall.tar': (_q, r) => {
        r.writeHead(200);
        r.write(tarHeader('big.bin', 1024 * 1024)); // then nothing, ever
      },
    };
    const started = Date.now();
    await assert.rejects(
      extract(`${base}/stall.tar`, 'stall', { 'source-idle-timeout': '1' }),
      refused(/sent nothing for 1s/),
    );
    assert.ok(Date.now() - started < 10_000, 'the stalled download was not abandoned in time');
  });
});

describe('a manifest does not choose where signed store requests go', () => {
  it('refuses an S3 endpoint only the manifest names, and sends it nothing', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_SESSION_TOKEN: 'tok',
    });
    try {
      const seen = requests.length;
      routes = {};
      await assert.rejects(
        (async () => {
          const { store, key } = await storeFor({
            kind: 's3',
            bucket: 'images',
            key: 'web.tar',
            endpoint: base,
            sha256: 'a'.repeat(64),
            size: 1,
          } as never);
          await store.get(key);
        })(),
        refused(/the manifest names the S3 endpoint/),
      );
      assert.equal(requests.length, seen, 'a signed request reached the endpoint the manifest named');
    } finally {
      process.env = saved;
    }
  });
});
