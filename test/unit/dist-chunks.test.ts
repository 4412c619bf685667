import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/bundles.ts';

// The bundles load what a run may not need (SDKs, ssh2) from chunks with import() (scripts/build.mjs). A chunk that
// stands for a CommonJS package must give that package's named exports, as node's import() of it does.
const dist = join(REPO_ROOT, 'dist');
const chunks = readdirSync(dist)
  .filter((n) => existsSync(join(dist, n, 'chunks')))
  .flatMap((n) => readdirSync(join(dist, n, 'chunks')).map((c) => join(dist, n, 'chunks', c)));

describe('dist/*/chunks (code splitting)', () => {
  it('has chunks: every bundle leaves its SDKs out of its start-up', () => {
    assert.ok(chunks.length > 0, 'no dist/*/chunks: run npm run build');
  });

  it('no chunk gives a CommonJS package as a default export alone (named exports would be undefined)', () => {
    const defaultOnly = chunks.filter((c) => /^export default require_\w+\(\);$/m.test(readFileSync(c, 'utf8')));
    assert.deepEqual(defaultOnly, []);
  });

  it('every name read from an import() of a chunk is exported by it (packages’ own imports and ours)', async () => {
    const files = [
      ...readdirSync(dist)
        .map((n) => join(dist, n, 'index.mjs'))
        .filter(existsSync),
      ...chunks,
    ];
    const wanted = new Map<string, Set<string>>(); // chunk file → names read from it
    const want = (from: string, spec: string, names: string[]) => {
      const target = join(dirname(from), spec);
      const set = wanted.get(target) ?? new Set<string>();
      for (const n of names) set.add(n);
      wanted.set(target, set);
    };
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      // (await import("./x.mjs")).Name — gaxios reading HttpsProxyAgent from https-proxy-agent (CommonJS)
      for (const m of text.matchAll(/\(await import\("(\.[^"]+\.mjs)"\)\)\.(\w+)/g)) want(f, m[1]!, [m[2]!]);
      // const { A, B: b } = await import("./x.mjs") — the SDKs and stores lading loads when a run needs them
      for (const m of text.matchAll(/const \{([^}]+)\} = await import\("(\.[^"]+\.mjs)"\)/g)) {
        want(
          f,
          m[2]!,
          m[1]!.split(',').map((n) => n.split(':')[0]!.trim()),
        );
      }
    }
    assert.ok(
      [...wanted.values()].some((s) => s.has('HttpsProxyAgent')),
      'the https-proxy-agent import was found',
    );
    const seen = new Set<string>(); // a chunk's name carries its content hash: the same chunk in two bundles is one
    for (const [file, names] of wanted) {
      const key = `${file.split('/').pop()} ${[...names].sort().join(',')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const m = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const n of names) assert.notEqual(m[n], undefined, `${file} exports no ${n}`);
    }
  });
});
