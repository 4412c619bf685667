import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inputReader } from '../../src/actions/run.ts';

const readInput = inputReader('deploy');

/** The ::add-mask:: lines written while `body` runs. */
function masks(body: () => void): string[] {
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    body();
  } finally {
    process.stdout.write = write;
  }
  return out
    .join('')
    .split(/\r?\n/)
    .filter((l) => l.startsWith('::add-mask::'));
}

function withInputs(env: Record<string, string>, body: () => void): void {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    body();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('action inputs the table marks secret are masked as they are read', () => {
  it('masks a secret input once, and never a plain one', () => {
    withInputs({ INPUT_PASSWORD: 'pw-4f1c9a', INPUT_ENVIRONMENT: 'staging' }, () => {
      const lines = masks(() => {
        assert.equal(readInput('password'), 'pw-4f1c9a');
        assert.equal(readInput('password'), 'pw-4f1c9a');
        assert.equal(readInput('environment'), 'staging');
      });
      assert.deepEqual(lines, ['::add-mask::pw-4f1c9a']);
    });
  });

  it('masks a multi-line secret line by line as well, leaving lines too short to be secret', () => {
    const key = ['-----BEGIN KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE', '}', '-----END KEY-----'].join('\n');
    withInputs({ 'INPUT_SSH-KEY': key }, () => {
      const lines = masks(() => void readInput('ssh-key'));
      assert.ok(lines.includes('::add-mask::b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE'), lines.join('\n'));
      assert.ok(!lines.includes('::add-mask::}'), lines.join('\n'));
    });
  });

  it("is secret per action: compose-env's values in deploy are masked, its names in manifest are not", () => {
    // masking API_TOKEN_NAME would hide the name from every later line of the job (the deploy's "needs a value for")
    withInputs({ 'INPUT_COMPOSE-ENV': 'API_TOKEN_NAME\nREGION_NAME_X' }, () => {
      assert.deepEqual(
        masks(() => void inputReader('manifest')('compose-env')),
        [],
      );
      assert.deepEqual(
        masks(() => void inputReader('lading')('compose-env')),
        [],
      );
    });
    withInputs({ 'INPUT_COMPOSE-ENV': 'API_TOKEN=tok-98ab76cd54ef' }, () => {
      assert.deepEqual(
        masks(() => void inputReader('deploy')('compose-env')),
        ['::add-mask::API_TOKEN=tok-98ab76cd54ef'],
      );
    });
  });
});
