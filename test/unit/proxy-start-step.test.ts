import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import HOST_SCRIPT from '../../src/lib/remote/host.sh.ts';
import { stubDocker } from '../helpers/stub-docker.ts';

// host.sh's proxy_start and proxy_migrate_missing with a docker on PATH that records every call and, when told to,
// refuses the net.ipv4.tcp_migrate_req sysctl as a sandboxed runtime does (the container is created, not started).

const { dir, run: sh } = stubDocker(
  'lading-proxy-start-',
  (dir) => `#!/bin/sh
printf '%s\\n' "$*" >>"${dir}/calls"
case "$1" in
  run)
    case "$*" in
      *--sysctl*) if [ -n "\${FAKE_REFUSE:-}" ]; then
        echo 'docker: Error response from daemon: OCI runtime create failed: sysctl "net.ipv4.tcp_migrate_req" is not allowed.' >&2
        exit 125
      fi ;;
    esac
    echo 0123456789ab ;;
  inspect) printf '%s\\n' "\${FAKE_INSPECT:-}" ;;
esac
`,
);
const withMigrate = join(dir, 'sys-yes');
mkdirSync(join(withMigrate, 'net', 'ipv4'), { recursive: true });
writeFileSync(join(withMigrate, 'net', 'ipv4', 'tcp_migrate_req'), '0\n');
const withoutMigrate = join(dir, 'sys-no');
mkdirSync(withoutMigrate);

function run(call: string, env: Record<string, string>) {
  const { lines: calls, ...res } = sh(
    `${HOST_SCRIPT}\n${call}\n`,
    {
      LADING_PROXY_CONTAINER: 'lading-proxy',
      LADING_PROXY_NETWORK: 'lading-proxy',
      LADING_PROXY_IMAGE: 'caddy:2',
      LADING_PROXY_PORTS: '127.0.0.1:8080:80',
      ...env,
    },
    'calls',
  );
  return { ...res, calls };
}

describe('proxy_start: the proxy container and the tcp_migrate_req sysctl', () => {
  it('starts the proxy with net.ipv4.tcp_migrate_req=1 where the kernel has it', () => {
    const r = run('proxy_start /srv/proxy', { LADING_SYSCTL_DIR: withMigrate });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.calls.length, 1);
    assert.match(r.calls[0]!, /^run -d --name lading-proxy .*--sysctl net\.ipv4\.tcp_migrate_req=1/);
    assert.equal(r.err, '');
  });

  it('leaves the sysctl out on a kernel without it', () => {
    const r = run('proxy_start /srv/proxy', { LADING_SYSCTL_DIR: withoutMigrate });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.calls.length, 1);
    assert.doesNotMatch(r.calls[0]!, /--sysctl/);
  });

  it('an engine that refuses the sysctl gets the proxy without it, labelled, and the log says why', () => {
    const r = run('proxy_start /srv/proxy', { LADING_SYSCTL_DIR: withMigrate, FAKE_REFUSE: '1' });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      r.calls.map((c) => c.split(' ')[0]),
      ['run', 'rm', 'run'],
    );
    assert.equal(r.calls[1], 'rm -f lading-proxy');
    assert.doesNotMatch(r.calls[2]!, /--sysctl/);
    assert.match(r.calls[2]!, /--label dev\.lading\.proxy\.migrate=refused/);
    assert.match(r.err, /refused net\.ipv4\.tcp_migrate_req=1 \(.*is not allowed.*\); the proxy runs without it/);
  });
});

describe('proxy_migrate_missing: whether a running proxy should be replaced to get the sysctl', () => {
  const missing = (inspect: string, sys = withMigrate) =>
    run('if proxy_migrate_missing lading-proxy; then echo missing; else echo fine; fi', {
      LADING_SYSCTL_DIR: sys,
      FAKE_INSPECT: inspect,
    }).out.trim();

  it('a proxy started with the sysctl is fine', () => assert.equal(missing('1 '), 'fine'));
  it('a proxy started without it, on a kernel that has it, is missing it', () => {
    assert.equal(missing(' '), 'missing');
    assert.equal(missing('<no value> <no value>'), 'missing');
  });
  it('a proxy whose engine refused the sysctl is not offered a replacement', () =>
    assert.equal(missing(' refused'), 'fine'));
  it('on a kernel without the sysctl nothing is missing', () => assert.equal(missing(' ', withoutMigrate), 'fine'));
});
