import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import pkg from '../../package.json' with { type: 'json' };
import { bundle, NODE24, runActionBundle } from '../helpers/bundles.ts';

describe('runtime: the CLI on Node ≥ 22, the actions on node24, each saying its version', () => {
  it('lading --version prints the package version on Node 24', () => {
    const res = spawnSync(NODE24, [bundle('cli'), '--version'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, `lading ${pkg.version}\n`);
  });

  it('on an older Node (the machine’s Node 20 where it has one) the CLI refuses with what to do', () => {
    // The Debian Node this machine and CI carry is 20; where none older than 22 is found, the check is the unit test's.
    const old = ['/usr/bin/node', '/usr/local/bin/node']
      .map((bin) => ({ bin, v: spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '' }))
      .find((n) => /^v(1\d|2[01])\./.test(n.v));
    assert.ok(old || Number(process.versions.node.split('.')[0]) >= 22, 'a Node to try');
    if (!old) return;
    const res = spawnSync(old.bin, [bundle('cli'), 'tags'], { encoding: 'utf8' });
    assert.equal(res.status, 1);
    assert.match(res.stderr, new RegExp(`lading needs Node 22 or newer; this is Node ${old.v}`));
  });

  it('an action logs its version (and Node) as its first line', () => {
    const run = runActionBundle('tags', { inputs: {}, env: { GITHUB_SHA: 'a'.repeat(40) }, node: NODE24 });
    assert.equal(
      run.stdout.split('\n')[0],
      `lading ${pkg.version} (node ${spawnSync(NODE24, ['--version'], { encoding: 'utf8' }).stdout.trim()})`,
    );
  });
});
