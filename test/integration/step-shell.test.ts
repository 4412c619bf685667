import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalSession } from '../../src/io/local-host.ts';
import { StepShell } from '../../src/io/step-shell.ts';

const PREAMBLE = `set -eu
greet() { printf 'hello %s\\n' "$WHO"; }
fails_midway() { echo before; false; echo never; }
`;

describe('one long-lived shell runs many steps (a local /bin/sh, as over SSH)', () => {
  const open = async () => {
    const session = new LocalSession();
    return { session, shell: StepShell.start(await session.shell(), PREAMBLE, 'local') };
  };

  it('steps see their own env, keep exit statuses apart, and a failing step does not end the shell', async () => {
    const { session, shell } = await open();
    try {
      assert.deepEqual(await shell.run('greet', { env: { WHO: 'a' } }), { code: 0, stdout: 'hello a\n', stderr: '' });
      const failed = await shell.run('fails_midway; echo oops >&2', {});
      assert.equal(failed.code, 1, 'errexit is on inside a step');
      assert.equal(failed.stdout, 'before\n');
      const exit = await shell.run('echo partial; echo why >&2; exit 7', {});
      assert.deepEqual(exit, { code: 7, stdout: 'partial\n', stderr: 'why\n' });
      // the env of an earlier step is gone; the shell is still the same one
      const next = await shell.run('printf %s "${WHO:-unset}"; printf %s "$$" >&2', {});
      assert.equal(next.stdout, 'unset');
      assert.equal(shell.alive, true);
    } finally {
      session.close();
    }
  });

  it('hostile values are data; output without a final newline and stderr arrive whole, stderr live', async () => {
    const { session, shell } = await open();
    try {
      const hostile = `'; exit 3; echo "$(id)" \`id\` \n__lading_end_x 0\n`;
      const live: string[] = [];
      const res = await shell.run('printf %s "$V"; printf %s "$V" >&2', {
        env: { V: hostile },
        onStderr: (c) => live.push(c),
      });
      assert.equal(res.code, 0);
      assert.equal(res.stdout, hostile);
      assert.equal(res.stderr, hostile);
      assert.equal(live.join(''), hostile);
      const heredoc = await shell.run("cat <<'EOF'\nline 1\nline 2\nEOF", {});
      assert.equal(heredoc.stdout, 'line 1\nline 2\n');
      assert.equal((await shell.run('cat', {})).stdout, '', 'a step reads /dev/null, never the script stream');
    } finally {
      session.close();
    }
  });

  it('a step that times out kills the shell and fails; a shell that dies mid-step has no exit status', async () => {
    const { session, shell } = await open();
    try {
      await assert.rejects(shell.run('sleep 5', { timeoutMs: 300 }), /local: remote step timed out after 0s/);
      assert.equal(shell.alive, false);
      const other = StepShell.start(await session.shell(), PREAMBLE, 'local');
      const died = await other.run('echo going; kill -9 $$', {});
      assert.equal(died.code, -1);
      assert.match(died.stderr, /ended without an exit status/);
      assert.equal(other.alive, false);
    } finally {
      session.close();
    }
  });
});
