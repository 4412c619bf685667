import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { argvEnv } from '../../src/lib/ops.ts';
import HOST_SCRIPT from '../../src/lib/remote/host.sh.ts';
import { stubDocker } from '../helpers/stub-docker.ts';
import OPS_SCRIPT from '../../src/lib/remote/ops.sh.ts';

// ops.sh's ops_swarm_hook, the manager side of a swarm deploy hook, with a docker on PATH that answers `network
// inspect` from a table and records `docker run`'s arguments: which network the one-off container joins, what the log
// says when it joins none, and the exit status and timeout handling.

const { dir, run: sh } = stubDocker(
  'lading-swarm-hook-step-',
  (dir) => `#!/bin/sh
case "$1" in
  network)
    case "$5" in
      shop_back) echo true ;;
      shop_front) echo false ;;
      *) echo "Error: No such network: $5" >&2; exit 1 ;;
    esac ;;
  run)
    shift
    for a in "$@"; do printf '%s\\n' "$a"; done >"${dir}/run.args"
    [ -z "\${FAKE_SLEEP:-}" ] || sleep "$FAKE_SLEEP"
    exit "\${FAKE_RC:-0}" ;;
  rm) echo "$@" >"${dir}/rm.args" ;;
esac
`,
);
const rel = join(dir, 'root', 'shop', 'releases', 'R1');
mkdirSync(rel, { recursive: true });
writeFileSync(join(rel, '.lading-files'), '01-docker-compose.yml\nlading.stack.yml\n');
writeFileSync(join(rel, 'hook-web.env'), 'GREETING=hi\n', { mode: 0o600 });

function hook(networks: string, extra: Record<string, string> = {}) {
  const { lines: args, ...res } = sh(
    `${HOST_SCRIPT}\n${OPS_SCRIPT}\nlading_ops ops_swarm_hook\n`,
    {
      LADING_ROOT: join(dir, 'root'),
      LADING_PROJECT: 'shop',
      LADING_RELEASE: 'R1',
      LADING_SERVICE: 'web',
      LADING_HOOK: 'pre-deploy',
      LADING_HOOK_TIMEOUT: '5',
      LADING_HOOK_IMAGE: 'r.test/web@sha256:abc',
      LADING_HOOK_NETWORKS: networks,
      ...argvEnv(['migrate', '--to', 'it has spaces']),
      ...extra,
    },
    'run.args',
  );
  return { ...res, args };
}

describe("ops_swarm_hook: a deploy hook's one-off container on a swarm manager", () => {
  it("runs the service's image with its env file and the command's arguments intact, on the first attachable network", () => {
    const r = hook('shop_gone shop_front shop_back other', {
      LADING_HOOK_USER: '1000:1000',
      LADING_HOOK_WORKDIR: '/a b',
    });
    assert.equal(r.code, 0, r.err);
    const at = r.args.indexOf('--network');
    assert.equal(r.args[at + 1], 'shop_back');
    assert.equal(r.args.filter((a) => a === '--network').length, 1);
    assert.equal(r.args[r.args.indexOf('--env-file') + 1], join(rel, 'hook-web.env'));
    assert.equal(r.args[r.args.indexOf('--user') + 1], '1000:1000');
    assert.equal(r.args[r.args.indexOf('--workdir') + 1], '/a b');
    assert.deepEqual(r.args.slice(-4), ['r.test/web@sha256:abc', 'migrate', '--to', 'it has spaces']);
    assert.ok(r.args.includes('--rm'));
    // the networks it could not join are named, with why
    assert.match(r.out, /network shop_gone does not exist yet .*: the hook runs on docker's default network/);
    assert.match(r.out, /network shop_front is not attachable \(attachable: true .*\)/);
  });

  it("host networking is used as is; with no usable network the container gets docker's default one, said", () => {
    const onHost = hook('host');
    assert.equal(onHost.args[onHost.args.indexOf('--network') + 1], 'host');
    const none = hook('shop_front');
    assert.equal(none.code, 0, none.err);
    assert.ok(!none.args.includes('--network'), none.args.join(' '));
    assert.match(none.out, /shop_front is not attachable/);
  });

  it("fails with the command's exit status, and a hook that runs past its timeout is stopped and its container removed", () => {
    const failed = hook('host', { FAKE_RC: '3' });
    assert.equal(failed.code, 1);
    assert.match(failed.err, /hook pre-deploy exited with status 3/);
    rmSync(join(dir, 'rm.args'), { force: true });
    const slow = hook('host', { FAKE_SLEEP: '5', LADING_HOOK_TIMEOUT: '1' });
    assert.equal(slow.code, 1);
    assert.match(slow.err, /hook pre-deploy timed out after 1s \(its container was removed\)/);
    assert.match(readFileSync(join(dir, 'rm.args'), 'utf8'), /-f shop-pre-deploy-\d+/);
  });

  it('refuses a release without the hook env file (nothing runs)', () => {
    const r = hook('host', { LADING_SERVICE: 'worker' });
    assert.equal(r.code, 1);
    assert.match(r.err, /release R1 has no environment for a worker hook/);
    assert.deepEqual(r.args, []);
  });
});
