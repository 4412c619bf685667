import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect, type SshTarget, withSsh } from '../../src/io/ssh.ts';
import { checkHostKey, fingerprint, parseKnownHosts } from '../../src/lib/known-hosts.ts';
import { testEnv } from '../helpers/testenv.ts';

const env = testEnv();
const target = (extra: Partial<SshTarget> = {}): SshTarget => ({
  host: env.ssh.host,
  port: env.ssh.port,
  user: env.ssh.user,
  privateKey: readFileSync(env.ssh.privateKey, 'utf8'),
  knownHosts: readFileSync(env.ssh.knownHosts, 'utf8'),
  connectTimeoutMs: 5000,
  ...extra,
});
const quiet = { log: () => {}, warn: () => {} };

describe('SSH with pinned host keys (real sshd)', () => {
  it('runs a script with exit status, stdout and stderr; the remote docker is the test dockerd', async () => {
    await withSsh(target(), quiet, async (s) => {
      const ok = await s.exec('echo out; echo err >&2; docker version --format "{{.Server.Version}}"');
      assert.equal(ok.code, 0);
      assert.match(ok.stdout, /^out\n\d+\.\d+/);
      assert.equal(ok.stderr, 'err\n');
      const bad = await s.exec('echo failing >&2; exit 3');
      assert.equal(bad.code, 3);
      assert.match(bad.stderr, /failing/);
    });
  });

  it('hostile values travel as data: nothing in them is executed', async () => {
    const marker = join(tmpdir(), `lading-ssh-pwned-${process.pid}`);
    rmSync(marker, { force: true });
    const hostile = `$(touch ${marker})\`touch ${marker}\`'; touch ${marker}; '"\n$HOME ü`;
    await withSsh(target(), quiet, async (s) => {
      const res = await s.exec('printf %s "$VALUE"', { env: { VALUE: hostile } });
      assert.equal(res.stdout, hostile);
    });
    assert.equal(existsSync(marker), false);
  });

  it('refuses a host whose key does not match known_hosts, before authenticating', async () => {
    const other = mkdtempSync(join(tmpdir(), 'lading-otherkey-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(other, 'k')]);
    const wrong = `[${env.ssh.host}]:${env.ssh.port} ${readFileSync(join(other, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`;
    rmSync(other, { recursive: true, force: true });
    await assert.rejects(
      connect(target({ knownHosts: wrong, privateKey: 'not even a key is read' }), quiet),
      /the private key cannot be read/,
    );
    await assert.rejects(
      connect(target({ knownHosts: wrong }), quiet),
      new RegExp(
        `host key of \\[127\\.0\\.0\\.1\\]:${env.ssh.port} does not match known_hosts \\(got ssh-ed25519 SHA256:.*expected ssh-ed25519 SHA256:`,
      ),
    );
  });

  it('refuses a host with no known_hosts entry; the explicit opt-out connects and warns with the fingerprint', async () => {
    await assert.rejects(
      connect(target({ knownHosts: '' }), quiet),
      new RegExp(`no known_hosts entry for \\[127\\.0\\.0\\.1\\]:${env.ssh.port}`),
    );
    const warnings: string[] = [];
    await withSsh(
      target({ knownHosts: '', insecureIgnoreHostKey: true }),
      { log: () => {}, warn: (w) => warnings.push(w) },
      async (s) => {
        assert.equal((await s.exec('true')).code, 0);
      },
    );
    assert.match(
      warnings.join(),
      new RegExp(`HOST KEY NOT CHECKED for \\[127\\.0\\.0\\.1\\]:${env.ssh.port}.*SHA256:`),
    );
  });

  it('accepts hashed known_hosts entries and either pinned key type', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-hashed-'));
    const file = join(dir, 'known_hosts');
    writeFileSync(file, readFileSync(env.ssh.knownHosts, 'utf8'));
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    rmSync(dir, { recursive: true, force: true });
    assert.match(hashed, /^\|1\|/m);
    await withSsh(target({ knownHosts: hashed }), quiet, async (s) => assert.equal((await s.exec('true')).code, 0));
    const ecdsaOnly = readFileSync(env.ssh.knownHosts, 'utf8')
      .split('\n')
      .filter((l) => l.includes('ecdsa'))
      .join('\n');
    await withSsh(target({ knownHosts: ecdsaOnly }), quiet, async (s) => assert.equal((await s.exec('true')).code, 0));
  });

  it('a wrong key is an authentication error naming user@host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-wrongkey-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
    const key = readFileSync(join(dir, 'k'), 'utf8');
    rmSync(dir, { recursive: true, force: true });
    await assert.rejects(
      connect(target({ privateKey: key }), quiet),
      new RegExp(`root@\\[127\\.0\\.0\\.1\\]:${env.ssh.port} refused the key`),
    );
  });

  it('uploads atomically with the mode asked, downloads back; a timeout and a killed command fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lading-upload-'));
    await withSsh(target(), quiet, async (s) => {
      await s.upload(join(dir, 'secret.env'), 'A=1\n', 0o600);
      await s.upload(join(dir, 'secret.env'), 'A=2\n', 0o600); // replaces
      assert.equal((await s.download(join(dir, 'secret.env'))).toString(), 'A=2\n');
      assert.equal((await s.exec(`stat -c %a ${dir}/secret.env`)).stdout.trim(), '600');
      await s.uploadViaShell(join(dir, 'plain.yml'), "x: '$(y)'\n", 0o644); // hosts without SFTP
      assert.equal((await s.download(join(dir, 'plain.yml'))).toString(), "x: '$(y)'\n");
      assert.equal((await s.exec(`stat -c %a ${dir}/plain.yml`)).stdout.trim(), '644');
      await assert.rejects(s.exec('sleep 5', { timeoutMs: 500 }), /remote step timed out after 1s|timed out/);
      const killed = await s.exec('kill -9 $$');
      assert.notEqual(killed.code, 0);
    });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('known_hosts', () => {
  const key = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOp2m5x1', 'base64');
  const other = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOp2m5x2', 'base64');
  const k = key.toString('base64');
  it('matches host, [host]:port, patterns, negation, revoked', () => {
    const entries = parseKnownHosts(
      `# comment\nweb1,10.0.0.1 ssh-ed25519 ${k}\n[web2]:2222 ssh-ed25519 ${k}\n*.example.com,!bad.example.com ssh-ed25519 ${k}\n@revoked old ssh-ed25519 ${k}\n@cert-authority * ssh-ed25519 ${k}\n`,
    );
    assert.deepEqual(checkHostKey(entries, 'web1', 22, key), { ok: true });
    assert.deepEqual(checkHostKey(entries, '10.0.0.1', 22, key), { ok: true });
    assert.equal(checkHostKey(entries, 'web2', 22, key).ok, false, 'web2 is pinned on port 2222 only');
    assert.deepEqual(checkHostKey(entries, 'web2', 2222, key), { ok: true });
    assert.deepEqual(checkHostKey(entries, 'a.example.com', 22, key), { ok: true });
    assert.deepEqual(checkHostKey(entries, 'bad.example.com', 22, key), {
      ok: false,
      reason: 'unknown-host',
      expected: [],
    });
    assert.deepEqual(checkHostKey(entries, 'old', 22, key), { ok: false, reason: 'revoked', expected: [] });
    const mismatch = checkHostKey(entries, 'web1', 22, other);
    assert.equal(mismatch.ok, false);
    assert.deepEqual(mismatch.ok ? [] : mismatch.expected, [`ssh-ed25519 ${fingerprint(key)}`]);
  });
});
