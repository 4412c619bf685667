import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandArgs } from '../../src/cli/args.ts';
import { InputError } from '../../src/lib/errors.ts';
import { parseInventory } from '../../src/lib/deploy-plan.ts';

describe('secrets stay out of process arguments', () => {
  it('a secret given as a flag works but warns, naming the env var to use instead', () => {
    const args = parseCommandArgs('deploy', ['--password', 'hunter2', '--username', 'u'], {});
    assert.equal(args.read('password'), 'hunter2');
    assert.equal(args.warnings.length, 1);
    assert.match(args.warnings[0]!, /--password puts a secret in the process arguments.*set LADING_PASSWORD instead/);
    assert.ok(!args.warnings[0]!.includes('hunter2'), 'the warning does not repeat the secret');
  });

  it("a NAME=VALUE for the manifest's compose-env warns too (its value may be a secret); names alone do not", () => {
    const pair = parseCommandArgs('manifest', ['--compose-env', 'API_TOKEN=tok-123456789'], {});
    assert.equal(pair.read('compose-env'), 'API_TOKEN=tok-123456789');
    assert.equal(pair.warnings.length, 1);
    assert.match(pair.warnings[0]!, /--compose-env puts a secret in the process arguments.*set LADING_COMPOSE_ENV/);
    assert.ok(!pair.warnings[0]!.includes('tok-123456789'), 'the warning does not repeat the value');
    assert.deepEqual(
      parseCommandArgs('manifest', ['--compose-env', 'API_TOKEN', '--compose-env', 'REGION'], {}).warnings,
      [],
    );
  });

  it('the same secret from the env var gives no warning', () => {
    const args = parseCommandArgs('deploy', ['--username', 'u'], { LADING_PASSWORD: 'hunter2' });
    assert.equal(args.read('password'), 'hunter2');
    assert.deepEqual(args.warnings, []);
  });
});

describe('inventory probe-url is validated like the input', () => {
  for (const bad of ['file:///etc/passwd', '-o/tmp/x http://x/', 'http://a b/', '42']) {
    it(`refuses probe-url ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseInventory(`- { host: web1, probe-url: ${JSON.stringify(bad)} }`, { user: 'r', port: 22 }),
        (e: InputError) => /probe-url must be an http\(s\) URL/.test(e.message),
      );
    });
  }
});
