import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  readdirSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import HOST_SCRIPT from '../../src/lib/remote/host.sh.ts';

// The deploy lock, run as the host runs it (host.sh in /bin/sh): several deploys racing on one host, some killed
// with SIGKILL in the middle, a lease shorter than the work (the heartbeat must keep it), a stale mutex left behind.
// The lease is 6 s (heartbeat every 2 s) and each deploy works 7 s: longer than the lease, with room for a loaded
// 2-core CI machine to stall a shell for a few seconds (the product's minimum lock-ttl is 10 s).

const work = mkdtempSync(join(tmpdir(), 'lading-lock-'));
const script = join(work, 'host.sh');
writeFileSync(script, HOST_SCRIPT);
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function project(): { root: string; dir: string } {
  const root = join(work, `root-${n++}`);
  const dir = join(root, 'app');
  mkdirSync(join(dir, 'releases'), { recursive: true });
  return { root, dir };
}

const env = (root: string, owner: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH!,
  LADING_ROOT: root,
  LADING_PROJECT: 'app',
  LADING_OWNER: owner,
  LADING_LOCK_TTL: '6',
  LADING_LOCK_WAIT: '60',
  ...extra,
});

/** One deploy: lock, then steps that each check the lock (longer in all than the lease), switch, unlock. */
const DEPLOY = `
. "$SCRIPT"
lading_step lock
export LADING_LOCK_HELD=1
log() { printf '%s %s %s\\n' "$1" "$LADING_OWNER" "$$" >>"$LOG"; }
h=$(cat "$HOLDER" 2>/dev/null || true)
if [ -n "$h" ] && kill -0 "\${h##* }" 2>/dev/null; then log VIOLATION; fi
printf '%s %s\\n' "$LADING_OWNER" "$$" >"$HOLDER"
log enter
lading_step mkrelease
for k in 1 2 3 4 5 6 7; do
  lock_check
  [ "$(cat "$HOLDER")" = "$LADING_OWNER $$" ] || log VIOLATION
  sleep 1
done
: >"$(project_dir)/releases/$LADING_RELEASE/complete"
lading_step switch
log leave
rm -f "$HOLDER"
lading_step unlock
`;

function start(root: string, owner: string, files: { log: string; holder: string }): ChildProcess {
  return spawn('sh', ['-c', DEPLOY], {
    env: { ...env(root, owner), SCRIPT: script, LOG: files.log, HOLDER: files.holder, LADING_RELEASE: owner },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

const exited = (p: ChildProcess) =>
  new Promise<number | null>((r) => (p.exitCode !== null || p.signalCode ? r(p.exitCode) : p.on('exit', (c) => r(c))));

function sh(root: string, owner: string, body: string, extra: Record<string, string> = {}) {
  return spawnSync('sh', ['-c', `. "$SCRIPT"; ${body}`], {
    env: { ...env(root, owner, extra), SCRIPT: script },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('the deploy lock serializes deploys on one host', () => {
  it('racing deploys, two of them SIGKILLed mid-step: one holder at a time, the previous release keeps serving', async () => {
    const { root, dir } = project();
    const files = { log: join(root, 'log'), holder: join(root, 'holder') };
    const runners = ['d0', 'd1', 'd2', 'd3', 'd4'].map((o) => ({
      owner: `gh-7.1-${o}`,
      p: start(root, `gh-7.1-${o}`, files),
    }));
    // Kill the first two holders while they work (their leases then run out: nobody renews them).
    const killed = new Set<string>();
    for (let round = 0; round < 2; round++) {
      let holder = '';
      for (let i = 0; i < 100 && !holder; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const h = existsSync(files.holder) ? readFileSync(files.holder, 'utf8').split(' ')[0]! : '';
        if (h && !killed.has(h)) holder = h;
      }
      assert.ok(holder, 'someone took the lock');
      await new Promise((r) => setTimeout(r, 1500));
      runners.find((r) => r.owner === holder)!.p.kill('SIGKILL');
      killed.add(holder);
    }
    const codes = await Promise.all(runners.map((r) => exited(r.p)));
    const log = readFileSync(files.log, 'utf8');
    assert.ok(!log.includes('VIOLATION'), `two deploys held the lock at once:\n${log}`);
    const done = runners.filter((r, i) => !killed.has(r.owner) && codes[i] === 0).map((r) => r.owner);
    assert.equal(done.length, 3, `every deploy that was not killed completed:\n${log}`);
    const current = readlinkSync(join(dir, 'current')).replace('releases/', '');
    assert.ok(done.includes(current), `current is a completed release (${current})`);
    assert.ok(existsSync(join(dir, 'releases', current, 'complete')));
    assert.ok(!existsSync(join(dir, '.lock')), 'the last deploy released the lock');
  });

  it('a deploy whose lease ran out and was broken changes nothing more (switch checks ownership)', () => {
    const { root, dir } = project();
    writeFileSync(join(dir, '.lock'), `${Math.floor(Date.now() / 1000) + 600} gh-8.1-other host\n`);
    const r = sh(root, 'gh-8.1-mine', 'lading_step switch', { LADING_LOCK_HELD: '1', LADING_RELEASE: 'x' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no longer holds the lock/);
    assert.ok(!existsSync(join(dir, 'current')), 'current was not switched');
  });

  it('unlock releases only the lock this deploy owns', () => {
    const { root, dir } = project();
    const lock = `${Math.floor(Date.now() / 1000) + 600} gh-9.1-winner host\n`;
    writeFileSync(join(dir, '.lock'), lock);
    for (const loser of ['gh-9.1', 'gh-9.1-win', 'host']) assert.equal(sh(root, loser, 'lading_step unlock').status, 0);
    assert.equal(readFileSync(join(dir, '.lock'), 'utf8'), lock);
    sh(root, 'gh-9.1-winner', 'lading_step unlock');
    assert.ok(!existsSync(join(dir, '.lock')));
  });

  it('a .lock that exists but is still empty (its holder is writing it) is held, not broken as expired', () => {
    // lading before the hard link created .lock with noclobber, then wrote it: a waiter reading in between saw no
    // expiry, judged it stale and removed it under its new holder (two deploys held the lock in a loaded CI run)
    const { root, dir } = project();
    writeFileSync(join(dir, '.lock'), '');
    const r = sh(root, 'gh-3.1-waiter', 'lading_step lock', { LADING_LOCK_WAIT: '2' });
    assert.notEqual(r.status, 0, 'the waiter must not take a lock that is being written');
    assert.match(r.stderr, /another deploy holds the lock: a deploy taking the lock now/);
    assert.equal(readFileSync(join(dir, '.lock'), 'utf8'), '', 'the lock being written is left alone');
    // one whose writer died a minute ago (empty and old) is broken like any stale lock
    const old = new Date(Date.now() - 5 * 60_000);
    utimesSync(join(dir, '.lock'), old, old);
    const taken = sh(root, 'gh-3.1-waiter', 'lading_step lock; lading_step unlock', { LADING_LOCK_WAIT: '5' });
    assert.equal(taken.status, 0, taken.stderr);
    assert.match(taken.stderr, /broke a stale lock/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('.lock')),
      [],
      'no lock and no temp file of the lock left',
    );
  });

  it('a leftover mutex does not make the wait spin past lock-wait; a minute-old one is cleared', () => {
    const { root, dir } = project();
    writeFileSync(join(dir, '.lock'), `${Math.floor(Date.now() / 1000) - 10} gh-1.1-dead host\n`);
    mkdirSync(join(dir, '.lock.break'));
    const started = Date.now();
    const r = sh(root, 'gh-2.1-new', 'lading_step lock', { LADING_LOCK_WAIT: '2' });
    assert.notEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /another deploy holds the lock/);
    assert.ok(Date.now() - started < 10_000);
    const old = new Date(Date.now() - 5 * 60_000);
    utimesSync(join(dir, '.lock.break'), old, old);
    const taken = sh(root, 'gh-2.1-new', 'lading_step lock; lading_step unlock', { LADING_LOCK_WAIT: '5' });
    assert.equal(taken.status, 0, taken.stderr);
    assert.match(taken.stderr, /removed a leftover lock mutex/);
  });
});

describe('the temporary docker config with registry logins', () => {
  it('one left by a killed step is removed by the next step of a deploy holding the lock', () => {
    const { root, dir } = project();
    writeFileSync(join(dir, '.lock'), `${Math.floor(Date.now() / 1000) + 600} gh-5.1-me host\n`);
    mkdirSync(join(dir, '.docker-config.AbC123'), { mode: 0o700 });
    writeFileSync(join(dir, '.docker-config.AbC123', 'config.json'), '{"auths":{"r":{"auth":"c2VjcmV0"}}}');
    const r = sh(root, 'gh-5.1-me', 'lading_step history', { LADING_LOCK_HELD: '1', LADING_HISTORY_LINE: '{}' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(dir, '.docker-config.AbC123')), 'the leftover credentials are gone');
  });

  it('pull keeps it in the project dir only while it runs', () => {
    const { root, dir } = project();
    const r = sh(root, 'gh-5.1-me', 'lading_step pull', { LADING_IMAGES: '', LADING_LOGIN_COUNT: '0' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('.docker-config')),
      [],
    );
  });
});
